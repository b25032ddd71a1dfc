"""Inference bundles: what the converter loads, typed, versioned and checked before use.

A bundle is a directory:

  bundle.json          format number, model config, conversion settings, sha256 of every file,
                       provenance (where the parameters came from, their validation metrics)
  params.npz           parameters in a reduced dtype, keyed by '/'-joined paths
  pinyin.txt hanzi.txt the vocabularies
  ...                  files of extensions: the word list (lexicon.BundleLexicon) writes
                       lexicon.npz (before format 3: lexicon.tsv.gz and bigrams.tsv.gz) and
                       its own section of bundle.json

`export_bundle` writes one atomically (a temporary directory renamed into place) from the
model's parts plus extensions; `load_bundle` reads one back, refusing it with a BundleError
that names the file and what to do when anything does not match (bundle.json's schema, a
checksum, a vocabulary, the model config, a parameter's name, shape, dtype or a non-finite
value: a bundle that loads is one the converter can use); `load_model` also takes a training
workdir. Bundles of an older format are migrated on load (`_MIGRATIONS`), so a
re-export writes the current one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import zipfile
import zlib
from typing import Any, Protocol, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np

from pyhanzi_jax import errors
from pyhanzi_jax import lexicon as lexicon_lib
from pyhanzi_jax import model as model_lib
from pyhanzi_jax.data import sources
from pyhanzi_jax.data import vocab as vocab_lib

# Bump when the layout changes, and add a migration from the one before. 3: the word list's
# section has a version (2: lexicon.npz), which a reader of format 2 would not know to check.
BUNDLE_FORMAT = 3
RELEASE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'release')
PARAMS, PINYIN_VOCAB, HANZI_VOCAB = 'params.npz', 'pinyin.txt', 'hanzi.txt'
# Upper bounds of the conversion settings: beyond them memory, not quality, grows (64 lattice
# paths of a 2,000-character line already score 64 x its pieces; 100,000 asked for 48 GB).
MAX_BEAM, MAX_PROPOSALS = 64, 64


class BundleError(errors.CheckpointError):
  """A bundle that is missing, damaged, of another format or does not match its model."""


@dataclasses.dataclass(frozen=True)
class ConversionSettings:
  """How the converter uses a bundle unless told otherwise (Converter's keyword arguments)."""
  beam_size: int = 4         # Hypotheses the model's beam keeps.
  lm_weight: float = 0.0     # Weight of the word list's log-probability in the ranking.
  lexicon_paths: int = 0     # The word lattice's best sentences added to the beam's.
  lexicon_edits: int = 0     # The word list's one-word rewrites of the beam's best added too.
  user_bonus: float = lexicon_lib.USER_BONUS  # Nats per character of a user word.

  def __post_init__(self):
    for name, top in (('beam_size', MAX_BEAM), ('lexicon_paths', MAX_PROPOSALS),
                      ('lexicon_edits', MAX_PROPOSALS)):
      value = getattr(self, name)
      if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f'{name} must be a whole number >= 0, got {value!r}')
      if value > top:
        raise ValueError(f'{name} must be at most {top}, got {value}')
    if self.beam_size < 1:
      raise ValueError(f'beam_size must be at least 1, got {self.beam_size}')
    for name in ('lm_weight', 'user_bonus'):
      value = getattr(self, name)
      if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(
          value):
        raise ValueError(f'{name} must be a finite number, got {value!r}')

  @classmethod
  def with_lexicon(cls) -> 'ConversionSettings':
    """The release's settings for a bundle with a word list (lexicon.py says how chosen)."""
    return cls(lm_weight=lexicon_lib.DEFAULT_WEIGHT, lexicon_paths=lexicon_lib.DEFAULT_PATHS,
               lexicon_edits=lexicon_lib.DEFAULT_EDITS)


def _from_json(cls, fields: Any, where: str, check=None):
  """A dataclass from its bundle.json object (after check(fields, where), if given);
  BundleError naming a wrong or unknown field."""
  if not isinstance(fields, dict):
    raise BundleError(f'{where}: expected an object, got {type(fields).__name__}')
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(fields) - known)
  if unknown:
    raise BundleError(f'{where}: unknown field(s) {unknown}; known: {sorted(known)}')
  if check is not None:
    check(fields, where)
  try:
    return cls(**fields)
  except (TypeError, ValueError, ArithmeticError) as e:
    raise BundleError(f'{where}: {e}') from None


def _check_model_fields(fields: dict, where: str) -> None:
  """The model config's sizes are whole numbers >= 1 (layers >= 0), its rates in [0, 1)
  (dtypes are ModelConfig's own check)."""
  for name, value in fields.items():
    if name.endswith('dtype'):
      continue
    if name.endswith('rate'):
      ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1
    else:
      ok = (isinstance(value, int) and not isinstance(value, bool)
            and value >= (0 if name.endswith('layers') else 1))
    if not ok:
      raise BundleError(f'{where}: {name}={value!r} is out of range; export the model again')


def model_config_to_json(config: model_lib.ModelConfig) -> dict:
  return {k: (jnp.dtype(v).name if k.endswith('dtype') else v)
          for k, v in dataclasses.asdict(config).items()}


@dataclasses.dataclass
class Bundle:
  model_config: model_lib.ModelConfig
  params: Any                       # {'encoder': ..., 'decoder': ...} of numpy arrays.
  pinyin_vocab: vocab_lib.Vocab
  hanzi_vocab: vocab_lib.Vocab
  settings: ConversionSettings
  max_len: int                      # Tokens per training sentence (EOS included).
  lexicon: lexicon_lib.WordLM | None = None
  meta: dict = dataclasses.field(default_factory=dict)  # bundle.json as read (provenance).


class Extension(Protocol):
  """Extra files a bundle carries for a part of the converter (the word list)."""
  name: str  # Its section of bundle.json.

  def write(self, directory: str) -> tuple[list[str], dict]:
    """Writes its files into `directory`; returns their names and its bundle.json section."""


# Readers of the extensions' sections: name -> (bundle directory, section) -> the loaded part.
_EXTENSION_READERS = {lexicon_lib.BundleLexicon.name: lexicon_lib.BundleLexicon.read}


# --- Writing ----------------------------------------------------------------------------------

def _flatten(params) -> dict[str, np.ndarray]:
  return {'/'.join(k.key for k in path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_leaves_with_path(params)}


def _unflatten(flat: dict[str, np.ndarray]):
  tree: dict = {}
  for name, value in flat.items():
    node = tree
    *parents, leaf = name.split('/')
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return tree


def check_mixable(base: Bundle, other: Bundle, base_name: str, other_name: str) -> None:
  """ValueError unless the two models' parameters have the same names and shapes and their
  vocabularies are the same: what mixing or swapping their parameters needs (their configs may
  differ in what holds no parameter, such as dropout rates)."""
  shapes = lambda tree: jax.tree.map(np.shape, tree)
  if shapes(base.params) != shapes(other.params):
    raise ValueError(f'{base_name} has parameters of other names or shapes than {other_name}: '
                     'only models of one training history can be mixed')
  if (base.hanzi_vocab.fingerprint() != other.hanzi_vocab.fingerprint()
      or base.pinyin_vocab.fingerprint() != other.pinyin_vocab.fingerprint()):
    raise ValueError(f'{base_name} has other vocabularies than {other_name}: only models of one '
                     'training history (one prepared data directory) can be mixed')


def interpolate(base_params, tuned_params, strength: float):
  """base + strength x (tuned - base), leaf by leaf (weight-space interpolation, as WiSE-FT):
  0 gives the base, 1 the tuned parameters, and a leaf equal in both (a frozen encoder) keeps
  its bits. The two must share a training history for the mixture to be a model.
  """
  if strength == 1:
    return tuned_params
  def mix(b, t):
    b, t = np.asarray(b), np.asarray(t)
    wide = np.promote_types(b.dtype, t.dtype)  # A float16 release mixed in float32, once.
    bw, tw = b.astype(wide), t.astype(wide)
    # np.where keeps equal leaves' bits as they are (b + s x 0 would turn -0.0 into +0.0).
    return np.where(bw == tw, bw, bw + np.asarray(strength, wide) * (tw - bw)).astype(b.dtype)
  return jax.tree.map(mix, base_params, tuned_params)


def export_bundle(out_dir: str, params, model_config: model_lib.ModelConfig,
                  pinyin_vocab: vocab_lib.Vocab, hanzi_vocab: vocab_lib.Vocab, *, max_len: int,
                  settings: ConversionSettings = ConversionSettings(), dtype: str = 'float16',
                  extensions: Sequence[Extension] = (), provenance: dict | None = None) -> str:
  """Writes a bundle into `out_dir` (replacing it atomically); returns the path."""
  tmp = out_dir.rstrip('/') + '.tmp'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  flat = {k: v.astype(dtype) if v.dtype.kind == 'f' else v for k, v in _flatten(params).items()}
  np.savez(os.path.join(tmp, PARAMS), **flat)
  pinyin_vocab.save(os.path.join(tmp, PINYIN_VOCAB))
  hanzi_vocab.save(os.path.join(tmp, HANZI_VOCAB))
  files = [PARAMS, PINYIN_VOCAB, HANZI_VOCAB]
  sections = {}
  for ext in extensions:
    written, sections[ext.name] = ext.write(tmp)
    files += written
  meta = {
      'format': BUNDLE_FORMAT,
      'model': model_config_to_json(model_config),
      'settings': dataclasses.asdict(settings),
      'max_len': int(max_len),
      'params_dtype': dtype,
      'num_params': int(sum(v.size for v in flat.values())),
      'files': {f: sources.sha256_of(os.path.join(tmp, f)) for f in files},
      **sections,
      'provenance': dict(provenance or {}),
  }
  with open(os.path.join(tmp, 'bundle.json'), 'w', encoding='utf-8') as f:
    json.dump(meta, f, indent=2, ensure_ascii=False)
  if os.path.exists(out_dir):
    shutil.rmtree(out_dir)
  os.replace(tmp, out_dir)
  return out_dir


# --- Reading ----------------------------------------------------------------------------------

def _migrate_1_to_2(meta: dict) -> dict:
  """Format 1 kept checksums and the converter's settings inside the sections they belonged
  to, no vocabulary checksums (fingerprints only), and provenance at the top level."""
  lex = meta.get('lexicon')
  settings, files = {}, {PARAMS: meta['params_sha256']}
  if lex is not None:
    settings = {'lm_weight': lex.get('lm_weight', 0.0), 'lexicon_paths': lex.get('paths', 0),
                'lexicon_edits': lex.get('edits', 0)}
    files[lexicon_lib.FILENAME] = lex['sha256']
    if 'bigrams_sha256' in lex:
      files[lexicon_lib.BIGRAMS_FILENAME] = lex['bigrams_sha256']
  provenance = {k: meta[k] for k in ('from', 'lexicon_from', 'bigrams_from', 'validation')
                if k in meta}
  # The trainer's greedy-decoding metrics were named char_acc / sent_acc then.
  provenance['validation'] = {k.replace('/char_acc', '/greedy_char_acc').replace(
      '/sent_acc', '/greedy_sent_acc'): v for k, v in provenance.get('validation', {}).items()}
  out = {'format': 2, 'model': meta['model'], 'settings': settings,
         'max_len': meta.get('max_len', 64), 'params_dtype': meta['params_dtype'],
         'num_params': meta['num_params'], 'files': files,
         'vocab_fingerprints': [meta['pinyin_vocab'], meta['hanzi_vocab']],
         'provenance': provenance}
  if lex is not None:
    out['lexicon'] = {'words': lex['words']}
    if 'bigrams_sha256' in lex:
      out['lexicon']['bigrams'] = lex.get('bigrams', 0)
  return out


def _migrate_2_to_3(meta: dict) -> dict:
  """Format 2's word list was always its TSV files: section version 1."""
  out = dict(meta, format=3)
  lex = meta.get(lexicon_lib.BundleLexicon.name)
  if isinstance(lex, dict):
    out[lexicon_lib.BundleLexicon.name] = dict(lex, version=lex.get('version', 1))
  return out


_MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3}  # format -> the next format's meta.


def read_meta(path: str) -> dict:
  """bundle.json of the bundle at `path`, migrated to BUNDLE_FORMAT."""
  meta_path = os.path.join(path, 'bundle.json')
  if not os.path.isfile(meta_path):
    raise BundleError(f'{path} is not a model bundle (no bundle.json). Pass a bundle made by '
                      'training (WORKDIR/export) or a training workdir.')
  try:
    with open(meta_path, encoding='utf-8') as f:
      meta = json.load(f)
  except (OSError, ValueError, RecursionError) as e:
    raise BundleError(f'{meta_path} is unreadable ({e}); export the model again') from e
  if not isinstance(meta, dict):
    raise BundleError(f'{meta_path} holds a {type(meta).__name__}, not an object; export the '
                      'model again')
  try:
    while meta.get('format') in _MIGRATIONS:
      meta = _MIGRATIONS[meta['format']](meta)
  except (KeyError, TypeError, AttributeError) as e:
    raise BundleError(f'{meta_path}: format {meta.get("format")} bundle lacks {e}; export the '
                      'model again') from None
  if meta.get('format') != BUNDLE_FORMAT:
    raise BundleError(f'{meta_path}: bundle format {meta.get("format")!r} is not one this '
                      f'version reads ({BUNDLE_FORMAT} or older); export it again with it')
  missing = [k for k in ('model', 'settings', 'max_len', 'files') if k not in meta]
  if missing:
    raise BundleError(f'{meta_path} lacks {missing}; export the model again')
  max_len = meta['max_len']
  if not isinstance(max_len, int) or isinstance(max_len, bool) or max_len < 2:
    raise BundleError(f'{meta_path}: max_len must be a whole number >= 2, got {max_len!r}; '
                      'export the model again')
  return meta


def _required_files(path: str, meta: dict) -> list[str]:
  """The files a bundle reads, each of which must have a checksum: the parameters, the
  vocabularies (format 1 checked them by fingerprint instead) and the word list's."""
  names = [PARAMS]
  if 'vocab_fingerprints' not in meta:
    names += [PINYIN_VOCAB, HANZI_VOCAB]
  lex = meta.get(lexicon_lib.BundleLexicon.name)
  if isinstance(lex, dict):
    try:
      names += lexicon_lib.BundleLexicon.files(lex)
    except ValueError as e:
      raise BundleError(f'{path}/bundle.json "{lexicon_lib.BundleLexicon.name}": {e}') from None
  return names  # A section that is no object is refused when the extensions are read.


def _require_checksums(path: str, files: dict, required: Sequence[str]) -> None:
  if not isinstance(files, dict):
    raise BundleError(f'{path}/bundle.json: "files" must map each file to its sha256, '
                      f'{", ".join(required)} included; export the model again')
  missing = [name for name in required if name not in files]
  if missing:
    raise BundleError(f'{path}/bundle.json: "files" must map each file to its sha256 and has '
                      f'no sha256 of {", ".join(missing)}; export the model again')
  for name, sha256 in files.items():
    if (not isinstance(name, str) or os.path.basename(name) != name or name in ('', '.', '..')
        or not isinstance(sha256, str)):
      raise BundleError(f'{path}/bundle.json: "files" has {name!r}: {sha256!r}; it maps file '
                        'names in the bundle to sha256 strings; export the model again')
    full = os.path.join(path, name)
    if not os.path.isfile(full) or sources.sha256_of(full) != sha256:
      raise BundleError(f'{full} is missing or does not match its checksum: the bundle is '
                        'damaged or incomplete; export or download it again')


def _load_vocab(path: str) -> vocab_lib.Vocab:
  try:
    return vocab_lib.Vocab.load(path)
  except (OSError, ValueError) as e:
    raise BundleError(f'{path} is not a vocabulary ({e}); export the model again') from None


# Where the parameter shapes of a model config are kept between processes (None: not kept);
# compile_cache.enable puts them beside the compiled programs. Tracing the model's init for them
# is 0.15-0.6 s of a `pyhanzi ni hao` that otherwise loads its programs from disk.
_SHAPE_DIR: dict[str, str | None] = {'path': None}


def set_shape_dir(path: str | None) -> None:
  _SHAPE_DIR['path'] = path


def model_shapes(model_config: model_lib.ModelConfig) -> dict[str, tuple[int, ...]]:
  """{'/'-joined name: shape} of the parameters `model_config` makes: the model's init traced
  (not run), or the file an earlier process left in the shape directory for the same config,
  model source and flax and jax versions (anything unreadable there is traced again)."""
  path = key = None
  if _SHAPE_DIR['path']:
    h = hashlib.sha256()
    with open(model_lib.__file__, 'rb') as f:
      h.update(f.read())
    h.update(repr((dataclasses.asdict(model_config), flax.__version__, jax.__version__)).encode())
    key = h.hexdigest()
    path = os.path.join(_SHAPE_DIR['path'], f'shapes-{key[:40]}.json')
    try:
      with open(path, encoding='utf-8') as f:
        saved = json.load(f)
      if saved['key'] == key:
        return {str(k): tuple(int(d) for d in v) for k, v in saved['shapes'].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
      pass
  expected = jax.eval_shape(lambda: model_lib.init_params(model_config, jax.random.key(0)))
  shapes = {k: tuple(v.shape) for k, v in _flatten_abstract(expected).items()}
  if path:
    try:
      os.makedirs(_SHAPE_DIR['path'], exist_ok=True)
      with open(path + f'.{os.getpid()}.tmp', 'w', encoding='utf-8') as f:
        json.dump({'key': key, 'shapes': shapes}, f)
      os.replace(path + f'.{os.getpid()}.tmp', path)
    except OSError:  # A read-only or full cache only costs the trace next time.
      pass
  return shapes


def _load_params(path: str, model_config: model_lib.ModelConfig):
  """The parameter tree of params.npz, checked against the model config: the same names and
  shapes, float arrays, every value finite."""
  try:
    want = model_shapes(model_config)
  except Exception as e:  # pylint: disable=broad-except  # Any way the config fails to build.
    raise BundleError(f'{os.path.dirname(path)}/bundle.json "model" does not make a model '
                      f'({type(e).__name__}: {e}); export the model again') from None
  flat = {}
  try:
    with np.load(path) as z:
      names = set(z.files)
      if names != set(want):
        missing, extra = sorted(set(want) - names), sorted(names - set(want))
        raise BundleError(f'{path}: parameter names do not match the model config (missing '
                          f'{missing[:3]}, unexpected {extra[:3]}); export the model again')
      for name in sorted(names):
        value = z[name]
        if value.dtype.kind != 'f':
          raise BundleError(f'{path}: parameter {name} is {value.dtype}, not a float array; '
                            'export the model again')
        if value.shape != want[name]:
          raise BundleError(f'{path}: parameter shapes do not match the model config ({name} '
                            f'is {value.shape}, the model needs {want[name]}); export the '
                            'model again')
        if not np.isfinite(value).all():
          raise BundleError(f'{path}: parameter {name} has NaN or infinite values: the model '
                            'diverged or the file was damaged; export a good checkpoint again')
        flat[name] = value.astype(model_config.param_dtype)
  except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
    raise BundleError(f'{path} is unreadable ({type(e).__name__}: {e}): the bundle is damaged; '
                      'export or download it again') from None
  return _unflatten(flat)


def _flatten_abstract(tree) -> dict:
  return {'/'.join(k.key for k in path): leaf
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def load_bundle(path: str) -> Bundle:
  """Loads a bundle after checking every file against bundle.json (checksums, vocabularies,
  the model config, parameter shapes)."""
  meta = read_meta(path)
  _require_checksums(path, meta['files'], _required_files(path, meta))
  pinyin_vocab = _load_vocab(os.path.join(path, PINYIN_VOCAB))
  hanzi_vocab = _load_vocab(os.path.join(path, HANZI_VOCAB))
  if 'vocab_fingerprints' in meta and meta['vocab_fingerprints'] != [
      pinyin_vocab.fingerprint(), hanzi_vocab.fingerprint()]:
    raise BundleError(f'{path}: the vocabulary files do not match bundle.json')
  model_config = _from_json(model_lib.ModelConfig, meta['model'], f'{path}/bundle.json "model"',
                            _check_model_fields)
  if (model_config.src_vocab_size, model_config.tgt_vocab_size) != (len(pinyin_vocab),
                                                                    len(hanzi_vocab)):
    raise BundleError(f'{path}: model vocab sizes do not match the vocabulary files')
  settings = _from_json(ConversionSettings, meta['settings'], f'{path}/bundle.json "settings"')
  params = _load_params(os.path.join(path, PARAMS), model_config)
  parts = {}
  for name, read in _EXTENSION_READERS.items():
    if name in meta:
      if not isinstance(meta[name], dict):
        raise BundleError(f'{path}/bundle.json "{name}": expected an object, got '
                          f'{type(meta[name]).__name__}; export the bundle again')
      try:
        parts[name] = read(path, meta[name])
      except (OSError, ValueError, EOFError, TypeError, KeyError, AttributeError,
              zlib.error) as e:
        raise BundleError(f'{path}: its {name} is unreadable ({e}); export the bundle again'
                          ) from e
  return Bundle(model_config, params, pinyin_vocab, hanzi_vocab, settings, meta['max_len'],
                parts.get(lexicon_lib.BundleLexicon.name), meta)


def load_model(path: str) -> Bundle:
  """A bundle directory, or a training workdir (its export/, else its best or latest checkpoint
  with the config.json the trainer wrote beside it)."""
  if not os.path.exists(path):
    raise BundleError(f'model path {path!r} does not exist; pass a bundle directory '
                      '(WORKDIR/export) or a training workdir')
  for candidate in (path, os.path.join(path, 'export')):
    if os.path.isfile(os.path.join(candidate, 'bundle.json')):
      return load_bundle(candidate)
  config_path = os.path.join(path, 'config.json')
  if not os.path.isfile(config_path):
    raise BundleError(f'{path} is neither a model bundle (bundle.json) nor a training workdir '
                      '(config.json)')
  try:
    with open(config_path, encoding='utf-8') as f:
      config = json.load(f)
    data_dir, max_len, model_fields = (config['data']['dir'], config['data']['max_len'],
                                       config['model'])
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise BundleError(f'{config_path} is damaged or not written by the trainer ({e!r}); pass '
                      'the run\'s export/ bundle instead') from e
  try:
    pinyin_vocab, hanzi_vocab = vocab_lib.load_vocabs(data_dir)
  except FileNotFoundError:
    raise BundleError(f'{path} was trained on {data_dir}, whose vocabularies are gone; export '
                      'the model with its vocabularies instead') from None
  fields = {f.name for f in dataclasses.fields(model_lib.ModelConfig)}
  model_config = model_lib.ModelConfig(
      src_vocab_size=len(pinyin_vocab), tgt_vocab_size=len(hanzi_vocab),
      **{k: v for k, v in model_fields.items() if k in fields})
  abstract = jax.eval_shape(lambda: model_lib.init_params(model_config, jax.random.key(0)))
  # Only a training workdir needs orbax (errors.py): a bundle loads without importing it.
  from pyhanzi_jax import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top
  params, step, sub = ckpt_lib.restore_params_from_workdir(path, abstract)
  return Bundle(model_config, params, pinyin_vocab, hanzi_vocab, ConversionSettings(), max_len,
                meta={'provenance': {'from': f'{path}/{sub} step {step}'}})


def default_model_path() -> str:
  """The release model shipped in the package."""
  if os.path.isfile(os.path.join(RELEASE_DIR, 'bundle.json')):
    return RELEASE_DIR
  raise BundleError('no model given and no release model is installed: pass --model PATH (a '
                    'bundle directory or a training workdir, e.g. runs/demo after `make demo`)')
