r"""One prepared GPU run on the device machine: carried data in, a trained bundle and numbers out.

The device machine (docs/SCALING.md, "One prepared GPU run") gets a copy of this checkout, 64 MiB
in all with what `carry` names, runs one command of at most 10 minutes with no network, and
hands back at most 8 files from $OUT (16 MiB each, 64 MiB together). This module is that command
and its two ends here; launch/device_recipe.sh runs it with the right Python.

  launch/device_recipe.sh pack                       # here: data -> .carry/, wheel -> .whl/
  launch/device_recipe.sh run --out "$OUT"           # there: the H200 defaults
  launch/device_recipe.sh unpack FILES_AT runs/gpu_raw   # here, with what came back

`run`, each step a subprocess with its own deadline inside --budget-s:
  1. unpacks the data (`pack` below: the prepared arrays of --corpora, xz-compressed);
  2. times the train step with benchmarks/train_throughput.py (tokens/s, first step, MFU) and
     sizes pretraining to the time left: its steps, warmup and length buckets (plan_pretraining);
  3. pretrains (--pretrain-config, configs/pretrain_gpu.py) for that many steps;
  4. fine-tunes it with the encoder frozen (--finetune-config, configs/finetune.py, given the
     pretraining's model fields);
  5. exports a float16 bundle without a word list (python -m pyhanzi_jax.release --lexicon none:
     the word list and its bigrams come from downloads, added here afterwards);
  6. writes into --out: recipe.json (every measurement and choice, rewritten after each step),
     recipe.log (every command's output), workdirs.tar.gz (both runs' config.json and
     metrics.jsonl) and the bundle as bundle.tar.000, .001, ... (parts of --part-mib).

A step that runs past its deadline gets SIGTERM, on which the trainer saves the step reached
(exit 75); the recipe goes on with that checkpoint, so the bundle and the numbers come back
whatever the GPU's speed. configs/pretrain_gpu.py's model (49.7M parameters) is 95 MiB in
float16, more than the 64 MiB that can come back; above --lossless-mib the bundle travels as
int8 blocks of 64 values with a float32 scale each (51 MiB in 4 parts), and `unpack` turns it
into float16 again; the run decodes validation sentences with both and records their accuracy
(q8_check).

The same path on a CPU with the tiny model, in about a minute (tests/test_launch_recipe.py):

  launch/device_recipe.sh run --tiny --out /tmp/recipe_out
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

import numpy as np

from experiments import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # The repository.
CARRY_DIR = '.carry'  # Ignored through .git/info/exclude; named in the run call's `carry`.
DATA_TARBALL = os.path.join(CARRY_DIR, 'recipe_data.tar.xz')
PACK_FORMAT = 1
BUNDLE_PART = 'bundle.tar.'  # + 000, 001, ...: the names $OUT may hold.
Q8_BLOCK = 64   # Values per int8 block: the error is at most 1/254 of the block's largest value.
Q8_MIN_SIZE = 4096  # Smaller arrays (biases, layer norms) stay float16: a fraction of a percent.
MiB = 2 ** 20

# Device machine limits (/work/.library/device/README.md): what comes back from $OUT.
OUT_MAX_FILES, OUT_MAX_FILE, OUT_MAX_TOTAL = 8, 16 * MiB, 64 * MiB


# --- Data: pack here, unpack there ------------------------------------------------------------

def _array_digest(a: np.ndarray) -> str:
  """sha256 of an array's dtype, shape and bytes (what must survive packing, not its header)."""
  h = hashlib.sha256(f'{a.dtype.str}{a.shape}'.encode())
  h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()


def _npy_bytes(a: np.ndarray) -> bytes:
  buf = io.BytesIO()
  np.save(buf, a)
  return buf.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size, info.mtime = len(data), 0
  tar.addfile(info, io.BytesIO(data))


def src_guess_table(pairs) -> np.ndarray:
  """[max target id + 1] uint16: each character's commonest pinyin id over (src, tgt) pairs.

  A sentence's pinyin is its characters' readings: measured on the general corpus, 99.57% of
  positions hold their character's commonest reading, so the pinyin travels as its difference
  from this guess (mostly zeros: 12.4 MB of xz becomes 0.24 MB) and is rebuilt exactly.
  """
  pairs = list(pairs)
  n_tgt = max(int(t.max(initial=0)) for _, t in pairs) + 1
  n_src = max(int(s.max(initial=0)) for s, _ in pairs) + 1
  counts = np.zeros((n_tgt, n_src), np.int64)
  for s, t in pairs:
    np.add.at(counts, (t.astype(np.int64), s.astype(np.int64)), 1)
  return counts.argmax(axis=1).astype(np.uint16)


def pack_data(data_dir: str, corpora, dest: str, splits=('train', 'valid'), preset: int = 6
              ) -> dict:
  """Writes the prepared arrays of `corpora` x `splits` and the vocabularies of `data_dir` as
  one xz tarball `dest` (pinyin ids as differences from src_guess_table); returns its pack.json.
  """
  arrays = {}
  for corpus in corpora:
    for split in splits:
      base = os.path.join(data_dir, corpus, split)
      if not os.path.exists(f'{base}.tgt.npy'):
        if split == 'train':
          raise FileNotFoundError(f'{base}.tgt.npy: no prepared training split of {corpus!r} '
                                  f'in {data_dir}')
        continue  # The test-only corpora have no validation split.
      arrays[f'{corpus}/{split}'] = {p: np.load(f'{base}.{p}.npy')
                                     for p in ('src', 'tgt', 'offsets')}
  uint16 = all(a['src'].dtype == np.uint16 and a['tgt'].dtype == np.uint16
               for a in arrays.values())
  guess = src_guess_table((a['src'], a['tgt']) for a in arrays.values()) if uint16 else None
  meta = {'format': PACK_FORMAT, 'from': os.path.abspath(data_dir), 'corpora': list(corpora),
          'splits': sorted(arrays), 'src_from_guess': uint16, 'digests': {}}
  os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
  tmp = dest + '.tmp'
  with tarfile.open(tmp, 'w:xz', preset=preset) as tar:
    for name in ('pinyin.txt', 'hanzi.txt'):
      with open(os.path.join(data_dir, 'vocab', name), 'rb') as f:
        _add_bytes(tar, f'vocab/{name}', f.read())
    if guess is not None:
      _add_bytes(tar, 'src_guess.npy', _npy_bytes(guess))
    for key, parts in arrays.items():
      for part, a in parts.items():
        meta['digests'][f'{key}.{part}.npy'] = _array_digest(a)
      src = parts['src']
      if guess is not None:  # Wraps around in uint16 and back: exact.
        src = src - guess[parts['tgt']]
      _add_bytes(tar, f'{key}.src_delta.npy' if guess is not None else f'{key}.src.npy',
                 _npy_bytes(src))
      _add_bytes(tar, f'{key}.tgt.npy', _npy_bytes(parts['tgt']))
      _add_bytes(tar, f'{key}.offsets.npy', _npy_bytes(parts['offsets']))
    _add_bytes(tar, 'pack.json', json.dumps(meta, indent=2).encode())
  os.replace(tmp, dest)
  meta['bytes'] = os.path.getsize(dest)
  return meta


def unpack_data(tarball: str, dest: str) -> dict:
  """Rebuilds the prepared data directory that pack_data packed, every array checked against
  its digest; returns pack.json."""
  tmp = dest.rstrip('/') + '.packed'
  shutil.rmtree(tmp, ignore_errors=True)
  with tarfile.open(tarball, 'r:*') as tar:
    tar.extractall(tmp, filter='data')
  with open(os.path.join(tmp, 'pack.json'), encoding='utf-8') as f:
    meta = json.load(f)
  if meta.get('format') != PACK_FORMAT:
    raise ValueError(f'{tarball}: pack format {meta.get("format")}, this code reads '
                     f'{PACK_FORMAT}; pack the data again')
  os.makedirs(os.path.join(dest, 'vocab'), exist_ok=True)
  for name in ('pinyin.txt', 'hanzi.txt'):
    shutil.copyfile(os.path.join(tmp, 'vocab', name), os.path.join(dest, 'vocab', name))
  guess = np.load(os.path.join(tmp, 'src_guess.npy')) if meta['src_from_guess'] else None
  for key in meta['splits']:
    os.makedirs(os.path.join(dest, os.path.dirname(key)), exist_ok=True)
    tgt = np.load(os.path.join(tmp, f'{key}.tgt.npy'))
    if guess is not None:
      src = np.load(os.path.join(tmp, f'{key}.src_delta.npy')) + guess[tgt]
    else:
      src = np.load(os.path.join(tmp, f'{key}.src.npy'))
    offsets = np.load(os.path.join(tmp, f'{key}.offsets.npy'))
    for part, a in (('src', src), ('tgt', tgt), ('offsets', offsets)):
      name = f'{key}.{part}.npy'
      if _array_digest(a) != meta['digests'][name]:
        raise ValueError(f'{tarball}: {name} does not rebuild to the packed array')
      np.save(os.path.join(dest, name), a)
  shutil.rmtree(tmp)
  return meta


def _ensure_excluded(path: str) -> None:
  """Adds /path/ to the checkout's .git/info/exclude (so it travels only when carried)."""
  try:
    exclude = subprocess.run(['git', 'rev-parse', '--git-path', 'info/exclude'], cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return  # Not a git checkout: nothing travels by git's rules anyway.
  exclude = os.path.join(ROOT, exclude)
  line = f'/{path.strip("/")}/'
  existing = _read(exclude).decode().split('\n') if os.path.exists(exclude) else []
  if line not in existing:
    os.makedirs(os.path.dirname(exclude), exist_ok=True)
    with open(exclude, 'a', encoding='utf-8') as f:
      f.write(line + '\n')


def travelling_bytes(carry=(CARRY_DIR, '.whl')) -> int:
  """What a device call sends: tracked and untracked-not-ignored files, plus `carry`."""
  names = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                         cwd=ROOT, check=True, capture_output=True).stdout.split(b'\0')
  total = sum(os.path.getsize(os.path.join(ROOT, n.decode())) for n in names
              if n and os.path.isfile(os.path.join(ROOT, n.decode())))
  for c in carry:
    for d, _, files in os.walk(os.path.join(ROOT, c)):
      total += sum(os.path.getsize(os.path.join(d, f)) for f in files)
  return total


# --- The bundle: int8 blocks on the way back --------------------------------------------------

def quantize_q8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """x (any shape) -> int8 [n_blocks, Q8_BLOCK] and float32 scales [n_blocks] (zero-padded)."""
  flat = np.asarray(x, np.float32).reshape(-1)
  flat = np.pad(flat, (0, -len(flat) % Q8_BLOCK)).reshape(-1, Q8_BLOCK)
  scale = np.abs(flat).max(axis=1) / 127.0
  q = np.round(flat / np.where(scale > 0, scale, 1.0)[:, None])
  return np.clip(q, -127, 127).astype(np.int8), scale.astype(np.float32)


def dequantize_q8(q: np.ndarray, scale: np.ndarray, shape, dtype='float16') -> np.ndarray:
  flat = (q.astype(np.float32) * scale[:, None]).reshape(-1)
  return flat[:math.prod(shape)].reshape(shape).astype(dtype)


def _tar_bytes(directory: str, arcname: str, skip=(), extra=()) -> bytes:
  """An uncompressed tar of `directory`'s files (but `skip`) under `arcname`/, then `extra`
  (name, bytes) members."""
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w') as tar:
    for name in sorted(os.listdir(directory)):
      if name not in skip:
        tar.add(os.path.join(directory, name), f'{arcname}/{name}')
    for name, data in extra:
      _add_bytes(tar, f'{arcname}/{name}', data)
  return buf.getvalue()


def pack_bundle(bundle_dir: str, out_dir: str, transport: str = 'auto',
                lossless_limit: int = 40 * MiB, part_bytes: int = 15 * MiB) -> dict:
  """Writes `bundle_dir` into `out_dir` as BUNDLE_PART000, ...: a tar of the bundle as it is
  ('lossless'), or with params.npz as int8 blocks ('q8'); 'auto' picks lossless up to
  `lossless_limit` bytes. Returns what it did (with q8, its largest error over all values)."""
  size = sum(os.path.getsize(os.path.join(bundle_dir, f)) for f in os.listdir(bundle_dir))
  if transport == 'auto':
    transport = 'lossless' if size <= lossless_limit else 'q8'
  report = {'bundle_bytes': size, 'transport': transport}
  if transport == 'lossless':
    data = _tar_bytes(bundle_dir, 'bundle')
  elif transport == 'q8':
    arrays, shapes, max_error = {}, {}, 0.0
    with np.load(os.path.join(bundle_dir, 'params.npz')) as z:
      for name in z.files:
        value = z[name]
        if value.size < Q8_MIN_SIZE:
          arrays[name] = value
          continue
        q, scale = quantize_q8(value)
        arrays[f'{name}::q8'], arrays[f'{name}::scale'] = q, scale
        shapes[name] = [list(value.shape), str(value.dtype)]
        back = dequantize_q8(q, scale, value.shape, np.float32)
        max_error = max(max_error, float(np.abs(back - value.astype(np.float32)).max()))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    meta = {'kind': 'q8', 'block': Q8_BLOCK, 'quantized': shapes, 'max_abs_error': max_error}
    data = _tar_bytes(bundle_dir, 'bundle', skip=('params.npz',), extra=(
        ('params.q8.npz', buf.getvalue()),
        ('transport.json', json.dumps(meta, indent=2).encode())))
    report['max_abs_error'] = max_error
  else:
    raise ValueError(f'transport must be auto, lossless or q8, got {transport!r}')
  os.makedirs(out_dir, exist_ok=True)
  parts = []
  for i, start in enumerate(range(0, len(data), part_bytes)):
    parts.append(f'{BUNDLE_PART}{i:03d}')
    with open(os.path.join(out_dir, parts[-1]), 'wb') as f:
      f.write(data[start:start + part_bytes])
  report.update({'tar_bytes': len(data), 'parts': parts})
  return report


def _read(path: str) -> bytes:
  with open(path, 'rb') as f:
    return f.read()


def unpack_bundle(parts_dir: str, dest: str) -> dict:
  """The bundle pack_bundle wrote into `parts_dir`, as a float16 bundle in `dest` (checked by
  loading it); returns its transport.json (empty for a lossless one)."""
  parts = sorted(p for p in os.listdir(parts_dir) if p.startswith(BUNDLE_PART))
  if not parts:
    raise FileNotFoundError(f'no {BUNDLE_PART}NNN files in {parts_dir}')
  data = b''.join(_read(os.path.join(parts_dir, p)) for p in parts)
  tmp = dest.rstrip('/') + '.tmp'
  shutil.rmtree(tmp, ignore_errors=True)
  with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    tar.extractall(tmp, filter='data')
  bundle = os.path.join(tmp, 'bundle')
  transport = {}
  if os.path.exists(os.path.join(bundle, 'transport.json')):
    with open(os.path.join(bundle, 'transport.json'), encoding='utf-8') as f:
      transport = json.load(f)
    flat = {}
    with np.load(os.path.join(bundle, 'params.q8.npz')) as z:
      for name in z.files:
        if '::' not in name:
          flat[name] = z[name]
      for name, (shape, dtype) in transport['quantized'].items():
        flat[name] = dequantize_q8(z[f'{name}::q8'], z[f'{name}::scale'], tuple(shape), dtype)
    np.savez(os.path.join(bundle, 'params.npz'), **flat)
    os.remove(os.path.join(bundle, 'params.q8.npz'))
    os.remove(os.path.join(bundle, 'transport.json'))
    with open(os.path.join(bundle, 'bundle.json'), encoding='utf-8') as f:
      meta = json.load(f)
    meta['files']['params.npz'] = hashlib.sha256(
        _read(os.path.join(bundle, 'params.npz'))).hexdigest()
    meta['provenance']['transport'] = (
        f'int8 blocks of {transport["block"]} with float32 scales on the way back from the '
        f'device machine (largest error {transport["max_abs_error"]:.2g}); '
        'experiments/device_recipe.py')
    with open(os.path.join(bundle, 'bundle.json'), 'w', encoding='utf-8') as f:
      json.dump(meta, f, indent=2, ensure_ascii=False)
  from pyhanzi_jax import bundle as bundle_lib  # pylint: disable=g-import-not-at-top  (jax)
  bundle_lib.load_bundle(bundle)  # Every check a user's load makes.
  if os.path.exists(dest):
    shutil.rmtree(dest)
  os.replace(bundle, dest)
  shutil.rmtree(tmp)
  return transport


def compare_bundles(a: str, b: str, data_dir: str, corpora, sentences: int) -> dict:
  """Constrained greedy decoding of the first `sentences` validation sentences of each corpus
  with bundles a and b (the float16 one and the one rebuilt from int8): their char accuracy."""
  from pyhanzi_jax import bundle as bundle_lib  # pylint: disable=g-import-not-at-top
  from pyhanzi_jax import evaluate as evaluate_lib  # pylint: disable=g-import-not-at-top
  from pyhanzi_jax import model as model_lib  # pylint: disable=g-import-not-at-top
  from pyhanzi_jax.data import pipeline  # pylint: disable=g-import-not-at-top

  loaded = [bundle_lib.load_bundle(p) for p in (a, b)]
  out = {}
  for corpus in corpora:
    split = pipeline.load_split(data_dir, corpus, 'valid')
    scores = [evaluate_lib.decoded_accuracy(
        model_lib.Transformer(x.model_config), x.params, split, x.pinyin_vocab, x.hanzi_vocab,
        max_sentences=sentences, max_len=x.max_len) for x in loaded]
    out[corpus] = {'float16_greedy_char_acc': scores[0]['greedy_char_acc'],
                   'int8_greedy_char_acc': scores[1]['greedy_char_acc'],
                   'sentences': min(sentences, len(split))}
  return out


# --- The run ----------------------------------------------------------------------------------

class Recipe:
  """The steps of `run`, with one clock, one log and one recipe.json."""

  def __init__(self, args):
    self.args, self.t0 = args, time.time()
    self.out, self.work = os.path.abspath(args.out), os.path.abspath(args.work)
    os.makedirs(self.out, exist_ok=True)
    os.makedirs(self.work, exist_ok=True)
    self.log = open(os.path.join(self.out, 'recipe.log'), 'a', encoding='utf-8')
    self.report = {'started': datetime.datetime.now(datetime.timezone.utc).isoformat(),
                   'argv': sys.argv[1:], 'budget_s': args.budget_s, 'phases': {}}
    self.env = dict(os.environ, PYTHONUNBUFFERED='1')

  def left(self) -> float:
    return self.t0 + self.args.budget_s - time.time()

  def say(self, message: str) -> None:
    line = f'[recipe {time.time() - self.t0:6.1f}s] {message}'
    print(line, flush=True)
    self.log.write(line + '\n')
    self.log.flush()

  def save_report(self) -> None:
    self.report['elapsed_s'] = round(time.time() - self.t0, 1)
    tmp = os.path.join(self.out, 'recipe.json.tmp')
    with open(tmp, 'w', encoding='utf-8') as f:
      json.dump(self.report, f, indent=2, ensure_ascii=False)
    os.replace(tmp, os.path.join(self.out, 'recipe.json'))

  def call(self, name: str, cmd: list[str], seconds: float, grace: float = 60.0) -> int:
    """Runs `cmd` (output to the log and stdout); SIGTERM after `seconds`, SIGKILL `grace`
    seconds later (the trainer saves its step in between). Returns the exit status."""
    seconds = max(seconds, 1.0)
    self.say(f'{name}: {" ".join(cmd)}  (deadline {seconds:.0f}s)')
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors='replace')

    def copy():  # Line by line, so that a run killed from outside keeps what it printed.
      for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        self.log.write(line)
        self.log.flush()
    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    cut = False
    try:
      rc = proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
      cut = True
      self.say(f'{name}: deadline reached, SIGTERM')
      proc.send_signal(signal.SIGTERM)
      try:
        rc = proc.wait(timeout=grace)
      except subprocess.TimeoutExpired:
        self.say(f'{name}: still running {grace:.0f}s after SIGTERM, SIGKILL')
        proc.kill()
        rc = proc.wait()
    reader.join(timeout=10)
    took = round(time.time() - start, 1)
    self.report['phases'][name] = {'seconds': took, 'rc': rc, 'cut_at_deadline': cut}
    self.say(f'{name}: exit {rc} after {took}s')
    self.save_report()
    return rc

  def python(self, *args: str) -> list[str]:
    return [sys.executable, *args]


def load_config(spec: str, overrides):
  """The config a `--config=spec ... --config.a.b=v` command line gives (for sizing only; the
  trainer parses the same line itself)."""
  from pyhanzi_jax import config_defaults  # pylint: disable=g-import-not-at-top  (no jax)
  path, _, arg = spec.partition(':')
  path = os.path.join(ROOT, path)
  config = config_defaults.load_sibling(os.path.basename(path)[:-3], path, arg or None)
  for flag in overrides:
    name, _, text = flag[len('--config.'):].partition('=')
    *parents, leaf = name.split('.')
    node = config
    for p in parents:
      node = node[p]
    old = node[leaf]
    node[leaf] = (text.lower() == 'true' if isinstance(old, bool) else type(old)(text))
  return config


def _config_flags(flags) -> list[str]:
  bad = [f for f in flags if not f.startswith('--config.') or '=' not in f]
  if bad:
    raise SystemExit(f'error: {bad[0]!r}: trainer flags are --config.FIELD=VALUE')
  return list(flags)


def batch_shape_stats(config, batches: int = 32) -> dict:
  """The longest sentence (EOS included) of each of the first `batches` training batches, and
  the host's seconds to build one (a step faster than that waits for the data)."""
  from pyhanzi_jax.data import pipeline  # pylint: disable=g-import-not-at-top  (no jax)
  from pyhanzi_jax.data import vocab as vocab_lib  # pylint: disable=g-import-not-at-top
  pinyin_vocab, _ = vocab_lib.load_vocabs(config.data.dir)
  split = pipeline.load_train_mixture(config.data.dir, config.data.train_corpus)
  train_batches = pipeline.TrainBatches(
      split, config.train.batch_size * config.optim.grad_accum_steps,
      pipeline.parse_buckets(config.data.length_buckets, config.data.max_len), seed=config.seed,
      abbrev=pipeline.AbbrevTable.from_vocab(pinyin_vocab), abbrev_prob=config.data.abbrev_prob,
      abbrev_syllable_prob=config.data.abbrev_syllable_prob)
  train_batches.batch(0)
  start = time.perf_counter()
  longest = [int((train_batches.batch(i)['targets'] != vocab_lib.PAD).sum(axis=1).max())
             for i in range(1, batches + 1)]
  return {'longest': longest, 'host_batch_s': (time.perf_counter() - start) / batches,
          'train_sentences': len(split),
          'buckets': list(pipeline.parse_buckets(config.data.length_buckets,
                                                 config.data.max_len))}


def size_pretraining(seconds: float, bench: dict, stats: dict, config, buckets=None) -> dict:
  """Pretraining steps that fit `seconds` with length `buckets` (default: the config's): the
  benchmark's step time scaled to the mean padded length (or the host's batch time, if
  longer), after start-up, one compilation per bucket and the validations."""
  buckets = sorted(buckets or stats['buckets'])
  padded = float(np.mean([min(b for b in buckets if b >= n) for n in stats['longest']]))
  step_s = max(bench['step_s'] * padded / bench['length'], stats['host_batch_s'])
  # Start-up (imports, data, state) and compilations: the train step once per bucket, the
  # eval step and the decoder's loop once; each about as long as the benchmark's first step.
  overhead = 20.0 + (len(buckets) + 2) * bench['first_step_s']
  validation_s = 10.0  # Each validation's decoding and teacher-forced batches, compiled.
  every = config.train.eval_every
  steps = 0
  for evals in range(1, config.train.num_steps // every + 2):  # Steps with `evals` validations
    fit = int(0.9 * (seconds - overhead - evals * validation_s) / step_s)  # (the last one
    if fit < (evals - 1) * every:  # included) lie in [(evals - 1) * every, evals * every).
      break
    steps = max(steps, min(fit, evals * every - 1))
  steps = max(min(steps, config.train.num_steps), 1)
  return {'num_steps': steps, 'buckets': buckets, 'mean_padded_len': padded,
          'est_step_s': step_s, 'est_overhead_s': overhead, 'est_validation_s': validation_s,
          'seconds': seconds, 'warmup_steps': min(config.optim.warmup_steps, max(steps // 5, 1))}


def plan_pretraining(seconds: float, bench: dict, stats: dict, config) -> dict:
  """size_pretraining with the length buckets that allow the most steps: the config's, or
  fewer of them (its smallest dropped), when a compilation costs more than the padding saves.

  Which sentences make each batch does not depend on the buckets, only their padding, which
  the loss masks: the choice changes the speed, not what is learned.
  """
  full = stats['buckets']
  plans = [size_pretraining(seconds, bench, stats, config, full[i:]) for i in range(len(full))]
  best = max(plans, key=lambda p: p['num_steps'])  # The first (most buckets) of equals.
  best['steps_by_buckets'] = {','.join(map(str, p['buckets'])): p['num_steps'] for p in plans}
  return best


def summarize_run(workdir: str, flops_per_token: float | None, peak_tflops: float) -> dict:
  """Last step, last validation, and the median logged training throughput (the first log row,
  which holds the compilations, left out) with its MFU at the benchmark's FLOPs per token."""
  has_rows = os.path.exists(os.path.join(workdir, 'metrics.jsonl'))
  rows = common.read_metrics(workdir) if has_rows else []
  out = {'last_step': max((r['step'] for r in rows), default=0)}
  evals = [r for r in rows if any('/' in k and not k.startswith('train/') for k in r)]
  if evals:
    out['validation'] = {k: round(v, 4) for k, v in evals[-1].items() if '/' in k}
    out['validation_step'] = evals[-1]['step']
  speeds = [r['train/tokens_per_sec'] for r in rows if 'train/tokens_per_sec' in r][1:]
  if speeds:
    out['train_tokens_per_sec'] = statistics.median(speeds)
    if flops_per_token:
      out['train_mfu'] = flops_per_token * out['train_tokens_per_sec'] / (peak_tflops * 1e12)
  return out


def _has_checkpoint(workdir: str) -> bool:
  return any(os.path.isdir(os.path.join(workdir, d)) and os.listdir(os.path.join(workdir, d))
             for d in ('checkpoints', 'best'))


def run(args) -> int:
  """All of `run`; an error on the way is recorded in recipe.json, which comes back with the
  log whatever happened."""
  r = Recipe(args)
  try:
    return _run(r)
  except Exception as e:  # pylint: disable=broad-except
    r.report['error'] = f'{type(e).__name__}: {e}'
    r.say(f'FAILED: {r.report["error"]}')
    r.save_report()
    raise


def _run(r: Recipe) -> int:
  args, report = r.args, r.report
  r.say(f'out {r.out}, work {r.work}, budget {args.budget_s:.0f}s')
  # Reserved for what follows pretraining: it gets the rest of the budget.
  reserve_after_pretrain = args.finetune_s + args.export_s

  # 1. Data.
  data = args.data
  if os.path.isfile(data):
    start = time.time()
    data_dir = os.path.join(r.work, 'data')
    meta = unpack_data(data, data_dir)
    report['data'] = {'tarball': data, 'tarball_bytes': os.path.getsize(data),
                      'splits': meta['splits'], 'unpack_s': round(time.time() - start, 1)}
    r.say(f'data: unpacked {data} ({os.path.getsize(data) / MiB:.1f} MiB) into {data_dir}')
  else:
    data_dir = os.path.abspath(data)
    report['data'] = {'dir': data_dir}
  r.save_report()
  pre_flags = [f'--config.data.dir={data_dir}'] + _config_flags(args.pretrain_flag)
  config = load_config(args.pretrain_config, pre_flags)
  from pyhanzi_jax.data import vocab as vocab_lib  # pylint: disable=g-import-not-at-top
  pinyin_vocab, hanzi_vocab = vocab_lib.load_vocabs(data_dir)

  # 2. The train step alone: tokens/s, MFU, and the step time that sizes pretraining.
  m = config.model
  bench_json = os.path.join(r.work, 'bench.json')
  model_arg = ','.join(f'{k}={m[k]}' for k in ('emb_dim', 'num_heads', 'enc_layers',
                                                  'dec_layers', 'mlp_dim', 'max_len'))
  r.call('benchmark', r.python(
      '-m', 'benchmarks.train_throughput', '--no_torch', '--mfu', '--rounds=1',
      f'--steps={args.bench_steps}', '--warmup=2', f'--batch={config.train.batch_size}',
      f'--length={args.bench_length}', f'--dtype={m.dtype}', f'--model={model_arg}',
      f'--src_vocab={len(pinyin_vocab)}', f'--tgt_vocab={len(hanzi_vocab)}',
      f'--peak_tflops={args.peak_tflops}', f'--json={bench_json}'),
      min(args.bench_s, r.left() - reserve_after_pretrain))
  bench = None
  if os.path.exists(bench_json):
    with open(bench_json, encoding='utf-8') as f:
      bench = json.load(f)
    report['benchmark'] = bench
    r.say(f'benchmark: {bench["tokens_per_sec"]:,.0f} target tokens/s at batch '
          f'{bench["batch"]} x {bench["length"]}, MFU {100 * bench["mfu"]:.1f}% of '
          f'{bench["peak_tflops"]:g} TFLOP/s, first step {bench["first_step_s"]:.1f}s')

  # 3. Pretraining, sized to what is left before the reserve.
  pretrain_dir = os.path.join(r.work, 'pretrain')
  seconds = r.left() - reserve_after_pretrain
  stats = batch_shape_stats(config)
  if args.pretrain_steps:
    sizing = {'num_steps': args.pretrain_steps, 'warmup_steps': min(
        config.optim.warmup_steps, max(args.pretrain_steps // 5, 1)), 'fixed': True}
  elif bench is not None and any('.length_buckets=' in f for f in args.pretrain_flag):
    sizing = size_pretraining(seconds, bench, stats, config)  # The buckets given.
  elif bench is not None:
    sizing = plan_pretraining(seconds, bench, stats, config)
    pre_flags.append('--config.data.length_buckets=' + ','.join(map(str, sizing['buckets'])))
  else:  # No measurement: the config's steps, stopped at the deadline.
    sizing = {'num_steps': config.train.num_steps, 'warmup_steps': config.optim.warmup_steps,
              'unsized': 'the benchmark failed'}
  sizing.update({k: stats[k] for k in ('host_batch_s', 'train_sentences')})
  report['pretrain'] = {'sizing': sizing, 'workdir': pretrain_dir}
  r.say(f'pretrain: {sizing["num_steps"]} steps (warmup {sizing["warmup_steps"]}) in '
        f'{seconds:.0f}s')
  r.call('pretrain', r.python(
      '-m', 'pyhanzi_jax.main', f'--config={args.pretrain_config}', f'--workdir={pretrain_dir}',
      f'--config.train.num_steps={sizing["num_steps"]}',
      f'--config.optim.warmup_steps={sizing["warmup_steps"]}',
      '--config.train.export_at_end=false', *pre_flags), seconds)
  flops = bench['flops_per_token'] if bench else None
  report['pretrain'].update(summarize_run(pretrain_dir, flops, args.peak_tflops))
  r.save_report()
  if not _has_checkpoint(pretrain_dir):
    r.say('pretrain: no checkpoint to go on from')
    return _finish(r, None)

  # 4. Fine-tuning from it, the encoder frozen, with its model fields.
  finetune_dir = os.path.join(r.work, 'finetune')
  with open(os.path.join(pretrain_dir, 'config.json'), encoding='utf-8') as f:
    model_fields = json.load(f)['model']
  ft_flags = ([f'--config.data.dir={data_dir}', f'--config.optim.init_from={pretrain_dir}',
               '--config.train.export_at_end=false']
              + [f'--config.model.{k}={v}' for k, v in sorted(model_fields.items())]
              + ([f'--config.train.num_steps={args.finetune_steps}'] if args.finetune_steps
                 else []) + _config_flags(args.finetune_flag))
  source = pretrain_dir
  if args.finetune_config:
    report['finetune'] = {'workdir': finetune_dir, 'flags': ft_flags}
    r.call('finetune', r.python('-m', 'pyhanzi_jax.main', f'--config={args.finetune_config}',
                                f'--workdir={finetune_dir}', *ft_flags),
           min(args.finetune_s, r.left() - args.export_s))
    report['finetune'].update(summarize_run(finetune_dir, flops, args.peak_tflops))
    if _has_checkpoint(finetune_dir):
      source = finetune_dir
  return _finish(r, source, data_dir)


def _finish(r: Recipe, source: str | None, data_dir: str | None = None) -> int:
  """Export, pack the bundle into OUT, check int8 against float16, write the rest of OUT."""
  args, report = r.args, r.report
  bundle_dir = os.path.join(r.work, 'bundle')
  ok = False
  if source is not None:
    report['bundle'] = {'source': source}
    rc = r.call('export', r.python('-m', 'pyhanzi_jax.release', source, '--dest', bundle_dir,
                                   '--lexicon', 'none', '--bigram-data', 'none',
                                   '--dtype', 'float16'), max(r.left() - 10, 30))
    if rc == 0:
      with open(os.path.join(bundle_dir, 'bundle.json'), encoding='utf-8') as f:
        meta = json.load(f)
      report['bundle'].update({'num_params': meta['num_params'],
                               'provenance': meta['provenance']})
      report['bundle'].update(pack_bundle(
          bundle_dir, r.out, args.transport, int(args.lossless_mib * MiB),
          int(args.part_mib * MiB)))
      ok = True
      r.say(f'bundle: {meta["num_params"]:,} parameters, {report["bundle"]["transport"]}, '
            f'{report["bundle"]["tar_bytes"] / MiB:.1f} MiB in {len(report["bundle"]["parts"])} '
            'part(s)')
      r.save_report()
      if report['bundle']['transport'] == 'q8' and r.left() > args.q8_check_min_s:
        r.call('q8_check', r.python(
            '-m', 'experiments.device_recipe', 'compare', bundle_dir, r.out,
            '--data', data_dir, '--json', os.path.join(r.work, 'q8_check.json'),
            '--sentences', str(args.q8_check_sentences)), r.left() - 5)
        path = os.path.join(r.work, 'q8_check.json')
        if os.path.exists(path):
          with open(path, encoding='utf-8') as f:
            report['q8_check'] = json.load(f)
  with tarfile.open(os.path.join(r.out, 'workdirs.tar.gz'), 'w:gz') as tar:
    for name in ('pretrain', 'finetune'):
      for f in ('config.json', 'metrics.jsonl'):
        path = os.path.join(r.work, name, f)
        if os.path.exists(path):
          tar.add(path, f'{name}/{f}')
    if os.path.exists(os.path.join(r.work, 'bench.json')):
      tar.add(os.path.join(r.work, 'bench.json'), 'bench.json')
  report['ok'] = ok
  r.save_report()
  r.log.close()
  problems = check_out_dir(r.out)
  for p in problems:
    print(f'[recipe] OUT: {p}', flush=True)
  print(f'[recipe] {"done" if ok else "FAILED"} in {time.time() - r.t0:.0f}s: '
        f'{json.dumps(_headline(report))}', flush=True)
  return 0 if ok and not problems else 1


def _headline(report: dict) -> dict:
  """The few numbers the run's last line shows (output_tail keeps the end)."""
  bench, pre, ft = (report.get(k, {}) for k in ('benchmark', 'pretrain', 'finetune'))
  return {'tokens_per_sec': bench.get('tokens_per_sec'), 'mfu': bench.get('mfu'),
          'pretrain_steps': pre.get('last_step'), 'pretrain_tokens_per_sec':
          pre.get('train_tokens_per_sec'), 'finetune_steps': ft.get('last_step'),
          'validation': ft.get('validation') or pre.get('validation'),
          'bundle': {k: report.get('bundle', {}).get(k) for k in ('transport', 'tar_bytes')},
          'q8_check': report.get('q8_check')}


def check_out_dir(out: str) -> list[str]:
  """What in `out` would not come back from the device machine."""
  files = [os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs]
  sizes = [os.path.getsize(f) for f in files]
  problems = [f'{os.path.relpath(f, out)} is {s / MiB:.1f} MiB (> 16)'
              for f, s in zip(files, sizes) if s > OUT_MAX_FILE]
  if len(files) > OUT_MAX_FILES:
    problems.append(f'{len(files)} files (> {OUT_MAX_FILES})')
  if sum(sizes) > OUT_MAX_TOTAL:
    problems.append(f'{sum(sizes) / MiB:.1f} MiB in all (> 64)')
  return problems


# --- Command line -----------------------------------------------------------------------------

# H200 defaults: the run call's timeout_s is 600; the recipe ends by 540 s, leaving time for a
# slow start-up of Python on the machine and for the files to be written.
TINY = dict(pretrain_config='configs/tiny.py', finetune_config='configs/finetune_tiny.py',
            data=os.path.join('tests', 'fixtures', 'tiny_data'), budget_s=300.0,
            pretrain_steps=40, finetune_steps=20, bench_steps=3, bench_length=16,
            finetune_s=120.0, export_s=60.0, bench_s=120.0)


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(prog='python -m experiments.device_recipe',
                               description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = ap.add_subparsers(dest='command', required=True)

  p = sub.add_parser('pack', help='here: the prepared data into one xz tarball for `carry`')
  p.add_argument('--data', default='data', help='prepared data directory')
  # Every training corpus (release.BIGRAM_CORPORA's list): 17.9 MiB, of which general and
  # domain, all that the default configs read, are 14.9; the rest allows a mixture there.
  p.add_argument('--corpora', default='general,domain,tech,ui,dialogue,idiom',
                 help='corpora whose train and valid splits are packed')
  p.add_argument('--dest', default=DATA_TARBALL)

  p = run_parser = sub.add_parser('run',
                                  help='there: unpack, benchmark, pretrain, fine-tune, export')
  p.add_argument('--tiny', action='store_true',
                 help='the tiny model on the fixture corpus, fixed steps: the CPU check')
  p.add_argument('--out', default=os.environ.get('OUT'), help='what comes back (default $OUT)')
  p.add_argument('--work', default=os.path.join(tempfile.gettempdir(), 'pyhanzi_recipe'),
                 help='workdirs and unpacked data (must not hold an earlier run)')
  p.add_argument('--data', default=DATA_TARBALL,
                 help='the packed tarball, or a prepared data directory')
  p.add_argument('--budget-s', type=float, default=540.0, help='the whole run, seconds')
  p.add_argument('--pretrain-config', default='configs/pretrain_gpu.py')
  p.add_argument('--pretrain-flag', action='append', default=[],
                 help='--config.FIELD=VALUE for pretraining (repeat)')
  p.add_argument('--pretrain-steps', type=int, default=0,
                 help='fixed steps (0: as many as the budget allows)')
  p.add_argument('--finetune-config', default='configs/finetune.py', help="'' skips it")
  p.add_argument('--finetune-flag', action='append', default=None,
                 help='--config.FIELD=VALUE for fine-tuning (repeat; default: one length '
                 'bucket, so one compilation of the small-batch step)')
  p.add_argument('--finetune-steps', type=int, default=0, help="0: the config's")
  p.add_argument('--finetune-s', type=float, default=120.0, help='its deadline, seconds')
  p.add_argument('--export-s', type=float, default=75.0,
                 help='kept for export, packing and the q8 check')
  p.add_argument('--bench-s', type=float, default=150.0, help="the benchmark's deadline")
  p.add_argument('--bench-steps', type=int, default=20)
  p.add_argument('--bench-length', type=int, default=32)
  p.add_argument('--peak-tflops', type=float, default=989.0,
                 help='dense bf16 peak for MFU (H200 datasheet; 790 measured on matrices)')
  p.add_argument('--transport', default='auto', choices=('auto', 'lossless', 'q8'))
  p.add_argument('--lossless-mib', type=float, default=40.0,
                 help='bundles up to this size come back as they are')
  p.add_argument('--part-mib', type=float, default=15.0)
  p.add_argument('--q8-check-sentences', type=int, default=500)
  p.add_argument('--q8-check-min-s', type=float, default=30.0,
                 help='skip the check with less time left')

  p = sub.add_parser('unpack', help='here: the bundle parts that came back -> a bundle')
  p.add_argument('parts_dir')
  p.add_argument('dest')

  p = sub.add_parser('compare', help='greedy decoding with a float16 bundle and its int8 parts')
  p.add_argument('bundle')
  p.add_argument('parts_dir')
  p.add_argument('--data', required=True)
  p.add_argument('--corpora', default='domain,general')
  p.add_argument('--sentences', type=int, default=500)
  p.add_argument('--json', required=True)

  args = ap.parse_args(argv)
  if args.command == 'pack':
    _ensure_excluded(CARRY_DIR)
    start = time.time()
    meta = pack_data(args.data, args.corpora.split(','), args.dest)
    print(f'packed {", ".join(meta["splits"])} of {args.data} into {args.dest}: '
          f'{meta["bytes"] / MiB:.1f} MiB in {time.time() - start:.0f}s')
    print(f'a device call now sends {travelling_bytes() / MiB:.1f} MiB of the 64 allowed '
          f'(tracked and untracked files, {CARRY_DIR}/, .whl/)')
    return 0
  if args.command == 'unpack':
    transport = unpack_bundle(args.parts_dir, args.dest)
    print(f'bundle in {args.dest}' + (f' (from int8 blocks, largest error '
                                      f'{transport["max_abs_error"]:.2g})' if transport else ''))
    report = os.path.join(args.parts_dir, 'recipe.json')
    if os.path.exists(report):
      with open(report, encoding='utf-8') as f:
        print(json.dumps(_headline(json.load(f)), indent=2))
    return 0
  if args.command == 'compare':
    dest = os.path.join(os.path.dirname(os.path.abspath(args.bundle)), 'bundle_from_parts')
    unpack_bundle(args.parts_dir, dest)
    out = compare_bundles(args.bundle, dest, args.data, args.corpora.split(','), args.sentences)
    with open(args.json, 'w', encoding='utf-8') as f:
      json.dump(out, f, indent=2)
    print(json.dumps(out))
    return 0
  if args.tiny:  # What the command line leaves at its default.
    for k, v in TINY.items():
      if getattr(args, k) == run_parser.get_default(k):
        setattr(args, k, v)
  if args.finetune_flag is None:
    args.finetune_flag = ['--config.data.length_buckets=64']
  if not args.out:
    ap.error('run: give --out (or set OUT)')
  if os.path.exists(os.path.join(args.work, 'pretrain')):
    ap.error(f'run: {args.work} holds an earlier run (the trainer would resume it); give a '
             'fresh --work')
  return run(args)


if __name__ == '__main__':
  sys.exit(main())
