"""Decoding speed of pyhanzi_jax/decode.py + model.py against an older revision, in one process.

  python -m benchmarks.decode_ab [--old db8c4d7] [--scoring candidates]

Loads `pyhanzi_jax/decode.py` and `model.py` as they were at --old (via `git show`; the old
decode.py imports the old model.py) beside the current ones, checks
that both give the same sequences and scores on the same random batches (default model size,
random parameters, 10 syllables, the inputs of benchmarks/decode_latency.py), then times them
interleaved: medians of 3 passes, wall and process CPU time (the fairer figure on a busy
machine). benchmarks/RESULTS.md "After b20ae68" was measured this way.
"""
import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

from benchmarks import common
from pyhanzi_jax import config_defaults
from pyhanzi_jax import decode
from pyhanzi_jax import model as model_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (batch, beam, batches)
CASES = [(1, 1, 30), (64, 1, 4), (1, 4, 20), (64, 4, 3)]


def _load_old(rev: str, name: str, replace=()):
  source = subprocess.run(['git', 'show', f'{rev}:pyhanzi_jax/{name}.py'], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
  for a, b in replace:
    source = source.replace(a, b)
  path = os.path.join(tempfile.mkdtemp(), f'{name}_old.py')
  with open(path, 'w', encoding='utf-8') as f:
    f.write(source)
  spec = importlib.util.spec_from_file_location(f'{name}_old', path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[f'{name}_old'] = module
  spec.loader.exec_module(module)
  return module


def old_version(rev: str):
  """(decode module, model module) as they were at `rev`, the decode using that model."""
  model = _load_old(rev, 'model')
  decode_old = _load_old(rev, 'decode', [('from pyhanzi_jax.model import', 'from model_old import')])
  return decode_old, model


def searcher(decode_module):
  """A decode module's search that takes `scoring`: `_beam_search`, or in revisions older than
  it, `beam_search` itself."""
  return getattr(decode_module, '_beam_search', decode_module.beam_search)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--old', default='db8c4d7', help='git revision of the decode.py to compare')
  ap.add_argument('--scoring', default='candidates', help='beam_search scoring, for both')
  args = ap.parse_args()
  config = model_lib.ModelConfig.from_config(config_defaults.get_config().model,
                                             common.SRC_VOCAB, common.TGT_VOCAB)
  decode_old, model_old = old_version(args.old)
  old_config = model_old.ModelConfig(**{f: getattr(config, f) for f in
                                        model_old.ModelConfig.__dataclass_fields__})
  versions = {'old': (decode_old, model_old.Transformer(old_config)),
              'new': (decode, model_lib.Transformer(config))}
  params = model_lib.init_params(config, jax.random.key(0))  # The same tree in both.
  scoring = args.scoring
  rng = np.random.default_rng(0)
  print(f'load average {os.getloadavg()[0]:.2f}', flush=True)
  for batch, beam, n in CASES:
    data = common.same_width([common.random_batch(rng, batch, 10, True) for _ in range(n)])
    run = {v: (lambda d, m: lambda x, c: searcher(d)(m, params, x, beam_size=beam,
                                                     constraints=c, scoring=scoring))(d, m)
           for v, (d, m) in versions.items()}
    for x, c in data:  # Same answers (this also compiles both).
      (so, po), (sn, pn) = run['old'](x, c), run['new'](x, c)
      np.testing.assert_array_equal(so, sn)
      np.testing.assert_allclose(po, pn, rtol=1e-5, atol=1e-5)
    cpu, wall = {v: [] for v in run}, {v: [] for v in run}
    for _ in range(3):
      for v, fn in run.items():
        for x, c in data:
          t, tw = time.process_time(), time.perf_counter()
          jax.block_until_ready(fn(x, c))
          cpu[v].append(time.process_time() - t)
          wall[v].append(time.perf_counter() - tw)
    print(f'batch {batch} beam {beam} {scoring}: ' + '  '.join(
        f'{v}: wall {1e3 * np.median(wall[v]):.2f} ms ({batch / np.median(wall[v]):.0f} sent/s) '
        f'cpu {1e3 * np.median(cpu[v]):.2f} ms' for v in run), flush=True)
  print(f'load average {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  main()
