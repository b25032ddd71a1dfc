"""Checkpoints and inference bundles.

Training checkpoints (orbax): `WORKDIR/checkpoints/` holds the last `keep` periodic saves,
written asynchronously; `WORKDIR/best/` holds the one with the best validation metric. orbax
writes each step into a temporary directory and renames it only when complete, so a run killed
mid-save leaves no half-written checkpoint that could be taken for a good one; on restore a
checkpoint that still fails to read is skipped for the one before it, loudly.

Inference bundles (`export_bundle` / `load_bundle`): a directory with the parameters in a
reduced dtype (`params.npz`, '/'-joined paths), both vocabularies, the model config and
checksums — everything `convert.py` needs, nothing it does not (no optimizer state).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from pyhanzi_jax import lexicon as lexicon_lib
from pyhanzi_jax.data import sources
from pyhanzi_jax.data import vocab as vocab_lib

BUNDLE_FORMAT = 1


class CheckpointError(RuntimeError):
  """A checkpoint or bundle that is missing, incomplete or does not match the model."""


class Checkpointer:
  """Periodic async checkpoints plus the best one by a validation metric, with resume."""

  def __init__(self, workdir: str, keep: int, best_metric: str):
    self.best_metric = best_metric
    # Periodic checkpoints: async, so training goes on while they are written.
    self.periodic = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, 'checkpoints')),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True,
                                             cleanup_tmp_directories=True,
                                             multiprocessing_options=_barriers('periodic')))
    self.best = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, 'best')),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, best_fn=lambda m: m[best_metric], best_mode='max',
            keep_checkpoints_without_metrics=False, enable_async_checkpointing=True,
            cleanup_tmp_directories=True, multiprocessing_options=_barriers('best')))

  def save(self, step: int, state, force: bool = False) -> None:
    self.periodic.save(step, args=ocp.args.StandardSave(state), force=force)

  def save_if_best(self, step: int, state, metrics: dict[str, float]) -> None:
    if self.best_metric not in metrics:
      raise ValueError(f'config.train.best_metric={self.best_metric!r} is not a validation '
                       f'metric; choose one of {sorted(metrics)}')
    self.best.save(step, args=ocp.args.StandardSave(state),
                   metrics={self.best_metric: float(metrics[self.best_metric])})

  def restore_latest(self, abstract_state) -> tuple[Any, int] | None:
    """The newest readable periodic checkpoint as (state, step), or None to start fresh."""
    return _restore_newest(self.periodic, abstract_state)

  def wait(self) -> None:
    self.periodic.wait_until_finished()
    self.best.wait_until_finished()

  def close(self) -> None:
    self.periodic.close()
    self.best.close()


def _barriers(name: str):
  # Both managers may save the same step (eval and checkpoint steps coincide); on several
  # processes their async saves would then meet at the same cross-process barrier names
  # ('Barrier _async_write_complete.<step> is already ongoing') unless each has its own prefix.
  return ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name)


def _restore_newest(manager: ocp.CheckpointManager, abstract_state):
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      state = manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
      return state, step
    except Exception as e:  # pylint: disable=broad-except
      # A damaged checkpoint must not stop a resume while an older good one exists.
      logging.error('checkpoint %d in %s cannot be read (%s: %s); trying an older one',
                    step, manager.directory, type(e).__name__, e)
  if manager.all_steps():
    raise CheckpointError(f'no checkpoint in {manager.directory} could be read; move the '
                          'directory away to start fresh, or restore it from a backup')
  return None


def abstract_like(tree, sharding=None):
  """ShapeDtypeStructs for `tree` (optionally with one sharding for all leaves) for restores."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding),
                      tree)


def restore_params_from_workdir(workdir: str, abstract_params):
  """Parameters of a training workdir: the best checkpoint if there is one, else the latest."""
  for sub in ('best', 'checkpoints'):
    path = os.path.abspath(os.path.join(workdir, sub))
    if not os.path.isdir(path):
      continue
    with ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(read_only=True)) as m:
      if not m.all_steps():
        continue
      step = m.best_step() if sub == 'best' else m.latest_step()
      # Read only the params subtree: no optimizer state is needed (or shaped alike) here.
      restored = m.restore(step, args=ocp.args.PyTreeRestore(
          item={'params': abstract_params},
          restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray),
                                    {'params': abstract_params}),
          partial_restore=True))
      return restored['params'], step, sub
  raise CheckpointError(f'no checkpoint found in {workdir} (looked in best/ and checkpoints/): '
                        'is this the workdir of a training run?')


# --- Inference bundles ------------------------------------------------------------------------

def _flatten(params) -> dict[str, np.ndarray]:
  flat = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    flat['/'.join(k.key for k in path)] = np.asarray(leaf)
  return flat


def _unflatten(flat: dict[str, np.ndarray]):
  tree: dict = {}
  for name, value in flat.items():
    node = tree
    *parents, leaf = name.split('/')
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return tree


def export_bundle(out_dir: str, params, model_config, pinyin_vocab: vocab_lib.Vocab,
                  hanzi_vocab: vocab_lib.Vocab, dtype: str = 'float16',
                  extra: dict | None = None, lexicon_counts: dict[str, int] | None = None,
                  lm_weight: float = lexicon_lib.DEFAULT_WEIGHT,
                  lexicon_paths: int = lexicon_lib.DEFAULT_PATHS,
                  lexicon_edits: int = lexicon_lib.DEFAULT_EDITS,
                  bigrams: lexicon_lib.Bigrams | None = None) -> str:
  """Writes an inference bundle atomically (a temp dir renamed into place); returns its path.

  lexicon_counts: optional word -> count list the converter re-ranks its n-best with
  (lexicon.py), stored as lexicon.tsv.gz (with the words' readings) and its checksum in
  bundle.json, beside the converter's defaults `lm_weight`, `paths` (lexicon_paths) and
  `edits` (lexicon_edits). bigrams: optional word-pair counts for that list
  (lexicon.count_bigrams), stored as bigrams.tsv.gz with its checksum.
  """
  tmp = out_dir.rstrip('/') + '.tmp'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  flat = {k: v.astype(dtype) if v.dtype.kind == 'f' else v for k, v in _flatten(params).items()}
  np.savez(os.path.join(tmp, 'params.npz'), **flat)
  pinyin_vocab.save(os.path.join(tmp, 'pinyin.txt'))
  hanzi_vocab.save(os.path.join(tmp, 'hanzi.txt'))
  lexicon_meta = {}
  if lexicon_counts:
    lexicon_path = os.path.join(tmp, lexicon_lib.FILENAME)
    lexicon_lib.save(lexicon_path, lexicon_counts)
    lexicon_meta = {'lexicon': {'sha256': sources.sha256_of(lexicon_path),
                                'words': len(lexicon_counts), 'lm_weight': float(lm_weight),
                                'paths': int(lexicon_paths), 'edits': int(lexicon_edits)}}
    if bigrams is not None:
      bigrams_path = os.path.join(tmp, lexicon_lib.BIGRAMS_FILENAME)
      lexicon_lib.save_bigrams(bigrams_path, bigrams)
      lexicon_meta['lexicon'].update(bigrams=len(bigrams.pairs),
                                     bigrams_sha256=sources.sha256_of(bigrams_path))
  cfg = {k: (jnp.dtype(v).name if k.endswith('dtype') else v)
         for k, v in dataclasses.asdict(model_config).items()}
  meta = {
      'format': BUNDLE_FORMAT,
      'model': cfg,
      'params_dtype': dtype,
      'params_sha256': sources.sha256_of(os.path.join(tmp, 'params.npz')),
      'num_params': int(sum(v.size for v in flat.values())),
      'pinyin_vocab': pinyin_vocab.fingerprint(),
      'hanzi_vocab': hanzi_vocab.fingerprint(),
      **lexicon_meta,
      **(extra or {}),
  }
  with open(os.path.join(tmp, 'bundle.json'), 'w', encoding='utf-8') as f:
    json.dump(meta, f, indent=2, ensure_ascii=False)
  if os.path.exists(out_dir):
    shutil.rmtree(out_dir)
  os.replace(tmp, out_dir)
  return out_dir


@dataclasses.dataclass
class Bundle:
  model_config: Any
  params: Any
  pinyin_vocab: vocab_lib.Vocab
  hanzi_vocab: vocab_lib.Vocab
  meta: dict
  lexicon: Any = None  # lexicon.WordLM when the bundle has one.


def load_bundle(path: str, compute_dtype: str | None = None) -> Bundle:
  """Loads and checks a bundle (checksum, vocab sizes and fingerprints, parameter shapes)."""
  from pyhanzi_jax import model as model_lib  # pylint: disable=g-import-not-at-top
  meta_path = os.path.join(path, 'bundle.json')
  if not os.path.isfile(meta_path):
    raise CheckpointError(f'{path} is not a model bundle (no bundle.json). Pass a bundle made '
                          'by training (WORKDIR/export) or a training workdir.')
  try:
    with open(meta_path, encoding='utf-8') as f:
      meta = json.load(f)
  except (OSError, ValueError) as e:
    raise CheckpointError(f'{meta_path} is unreadable ({e}); export the model again') from e
  if meta.get('format') != BUNDLE_FORMAT:
    raise CheckpointError(f'{path}: bundle format {meta.get("format")} is not '
                          f'{BUNDLE_FORMAT}; export it again with this version')
  params_path = os.path.join(path, 'params.npz')
  _require_checksum(params_path, meta['params_sha256'])
  pinyin_vocab = vocab_lib.Vocab.load(os.path.join(path, 'pinyin.txt'))
  hanzi_vocab = vocab_lib.Vocab.load(os.path.join(path, 'hanzi.txt'))
  if (pinyin_vocab.fingerprint(), hanzi_vocab.fingerprint()) != (meta['pinyin_vocab'],
                                                                 meta['hanzi_vocab']):
    raise CheckpointError(f'{path}: the vocabulary files do not match bundle.json')
  cfg = dict(meta['model'])
  if compute_dtype:
    cfg['dtype'] = compute_dtype
  cfg = {k: (jnp.dtype(v) if k.endswith('dtype') else v) for k, v in cfg.items()}
  model_config = model_lib.ModelConfig(**cfg)
  if (model_config.src_vocab_size, model_config.tgt_vocab_size) != (len(pinyin_vocab),
                                                                    len(hanzi_vocab)):
    raise CheckpointError(f'{path}: model vocab sizes do not match the vocabulary files')
  with np.load(params_path) as z:
    flat = {k: z[k].astype(model_config.param_dtype) if z[k].dtype.kind == 'f' else z[k]
            for k in z.files}
  params = _unflatten(flat)
  expected = jax.eval_shape(lambda: model_lib.init_params(model_config, jax.random.key(0)))
  got = jax.tree.map(lambda x: x.shape, params)
  want = jax.tree.map(lambda x: x.shape, expected)
  if got != want:
    raise CheckpointError(f'{path}: parameter shapes do not match the model config')
  return Bundle(model_config, params, pinyin_vocab, hanzi_vocab, meta, _load_lexicon(path, meta))


def _require_checksum(path: str, sha256: str | None) -> None:
  """A bundle file that is missing or differs from the checksum bundle.json recorded for it."""
  if not os.path.isfile(path) or sources.sha256_of(path) != sha256:
    raise CheckpointError(f'{path} is missing or does not match its checksum: the bundle is '
                          'damaged or incomplete; export or download it again')


def _load_lexicon(path: str, meta: dict):
  if 'lexicon' not in meta:
    return None
  paths = [os.path.join(path, lexicon_lib.FILENAME)]
  _require_checksum(paths[0], meta['lexicon'].get('sha256'))
  if 'bigrams_sha256' in meta['lexicon']:  # Bundles before the eighth session have none.
    paths.append(os.path.join(path, lexicon_lib.BIGRAMS_FILENAME))
    _require_checksum(paths[1], meta['lexicon']['bigrams_sha256'])
  try:
    return lexicon_lib.load(*paths)
  except (OSError, ValueError, EOFError) as e:
    raise CheckpointError(f'the word list ({", ".join(paths)}) is unreadable ({e}); export the '
                          'bundle again') from e


def load_model(path: str) -> Bundle:
  """A bundle directory, or a training workdir (its export/, else its best or latest checkpoint
  with the config.json the trainer wrote beside it)."""
  from pyhanzi_jax import model as model_lib  # pylint: disable=g-import-not-at-top
  if not os.path.exists(path):
    raise CheckpointError(f'model path {path!r} does not exist; pass a bundle directory '
                          '(WORKDIR/export) or a training workdir')
  if os.path.isfile(os.path.join(path, 'bundle.json')):
    return load_bundle(path)
  if os.path.isfile(os.path.join(path, 'export', 'bundle.json')):
    return load_bundle(os.path.join(path, 'export'))
  config_path = os.path.join(path, 'config.json')
  if not os.path.isfile(config_path):
    raise CheckpointError(f'{path} is neither a model bundle (bundle.json) nor a training '
                          'workdir (config.json)')
  try:
    with open(config_path, encoding='utf-8') as f:
      config = json.load(f)
    data_dir, max_len, model_fields = (config['data']['dir'], config['data']['max_len'],
                                       config['model'])
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise CheckpointError(f'{config_path} is damaged or not written by the trainer ({e!r}); '
                          'pass the run\'s export/ bundle instead') from e
  vocabs = [os.path.join(data_dir, 'vocab', f) for f in ('pinyin.txt', 'hanzi.txt')]
  if not all(os.path.isfile(v) for v in vocabs):
    raise CheckpointError(f'{path} was trained on {data_dir}, whose vocabularies are gone; '
                          'export the model with its vocabularies instead')
  pinyin_vocab, hanzi_vocab = (vocab_lib.Vocab.load(v) for v in vocabs)
  fields = {f.name for f in dataclasses.fields(model_lib.ModelConfig)}
  model_config = model_lib.ModelConfig(
      src_vocab_size=len(pinyin_vocab), tgt_vocab_size=len(hanzi_vocab),
      **{k: v for k, v in model_fields.items() if k in fields})
  abstract = jax.eval_shape(lambda: model_lib.init_params(model_config, jax.random.key(0)))
  params, step, sub = restore_params_from_workdir(path, abstract)
  return Bundle(model_config, params, pinyin_vocab, hanzi_vocab,
                {'from': f'{path}/{sub} step {step}', 'max_len': max_len})
