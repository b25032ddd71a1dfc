"""Decoding latency and throughput of pyhanzi_jax/decode.py at the default model size.

Random parameters (latency does not depend on what the model learned), the default config's
shapes (emb 256, 3+3 layers, mlp 1024) with a 7,000-character target vocabulary and a
500-token pinyin vocabulary. For 10- and 20-syllable inputs it measures, through the whole
search (`decode._beam_search`, which `greedy_search` / `beam_search` call; host-side padding
included):
- batch 1: per-sentence latency p50 / p95 over distinct random sentences;
- batch 64: sentences per second (median over batches);
for unconstrained search, constrained search scoring the whole vocabulary then masking
('full'), and constrained search scoring only the candidates' rows of the output projection,
laid out per sentence ('candidates_rows') or packed for the whole batch ('candidates_packed');
'candidates', what `beam_search` does, picks one of the two per call.
Candidate lists are random, ~22 per syllable on average and up to 150, the order of the
release's lists (common.random_batch).

  .venv/bin/python -m benchmarks.decode_latency            # the full table (5-10 minutes)
  .venv/bin/python -m benchmarks.decode_latency --quick    # 10 syllables, fewer repeats

`--floor` adds what bounds batch 1 from below: the decoder's weight matrices read once per
step. It times the step's matrix-vector products alone (a chain through every decoder weight
matrix of the model, in a compiled loop of one iteration per syllable) in XLA and, in the same
run, the same products in numpy (OpenBLAS) and, when PyTorch is installed, in PyTorch with one
and with two threads, and prints each one's GB/s of weights streamed and the implied floor for
a sentence (one step per syllable plus the encoder's matrices read once).

Timings are steady state: every shape bucket is compiled before it is timed (a new bucket
costs one compilation, ~1 s). The machine may be shared, so the load average is printed, and
so is the process CPU time per call (all threads): on an otherwise idle machine the wall time
lies between half of it (both cores busy) and all of it.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

import jax
import numpy as np

from benchmarks import common
from pyhanzi_jax import config_defaults
from pyhanzi_jax import decode
from pyhanzi_jax import model as model_lib


def run(model, params, inputs, constraints, beam, scoring):
  # Beam 1 is what greedy_search runs (it then drops the beam axis).
  search = decode._beam_search  # pylint: disable=protected-access
  return jax.block_until_ready(search(model, params, inputs, beam_size=beam,
                                      constraints=constraints, scoring=scoring))


def measure(model, params, rng, syllables, beam, mode, repeats, batches, big_batch):
  constrained = mode != 'unconstrained'
  scoring = 'full' if mode == 'unconstrained' else mode
  # Batch 1: distinct sentences, all with the same shapes (K padded to the largest).
  singles = common.same_width([common.random_batch(rng, 1, syllables, constrained)
                               for _ in range(repeats)])
  for x, c in singles:  # Compile every shape bucket these sentences fall into.
    run(model, params, x, c, beam, scoring)
  lat, cpu = [], []
  for x, c in singles:
    t, t_cpu = time.perf_counter(), time.process_time()
    run(model, params, x, c, beam, scoring)
    lat.append(time.perf_counter() - t)
    cpu.append(time.process_time() - t_cpu)
  lat = np.array(lat) * 1e3
  # Batch 64.
  big = common.same_width([common.random_batch(rng, big_batch, syllables, constrained)
                           for _ in range(batches)])
  for x, c in big:
    run(model, params, x, c, beam, scoring)
  times, big_cpu = [], []
  for x, c in big:
    t, t_cpu = time.perf_counter(), time.process_time()
    run(model, params, x, c, beam, scoring)
    times.append(time.perf_counter() - t)
    big_cpu.append(time.process_time() - t_cpu)
  return (np.percentile(lat, 50), np.percentile(lat, 95), np.median(cpu) * 1e3,
          big_batch / np.median(times), big_batch / np.median(big_cpu))


def weight_shapes(config):
  """(per decoder step, once per sentence): the [in, out] weight matrices a batch-1 step reads.

  A decoder layer: self-attention query/key/value/out and cross-attention query/out (emb x
  emb each), the MLP's two matrices. Once per sentence: each encoder layer's four attention
  matrices and MLP, and each decoder layer's cross-attention keys and values.
  """
  e, m = config.emb_dim, config.mlp_dim
  step = [(e, e)] * 6 + [(e, m), (m, e)]
  once = ([(e, e)] * 4 + [(e, m), (m, e)]) * config.enc_layers + [(e, e)] * 2 * config.dec_layers
  return step * config.dec_layers, once


def _chain_weights(shapes, seed=0):
  rng = np.random.default_rng(seed)
  return [(rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32) for s in shapes]


def measure_floor(config, syllables, repeats=50):
  """Seconds per decoding step of the step's matrix-vector products alone, per framework."""
  step_shapes, _ = weight_shapes(config)
  weights = _chain_weights(step_shapes)
  x0 = np.ones((1, config.emb_dim), np.float32)

  def chain(x, ws, mm):
    for w in ws:
      x = mm(x, w)
    return x

  @jax.jit
  def xla(x, ws):  # One while-loop iteration per syllable, like the decoder's loop.
    return jax.lax.fori_loop(0, syllables, lambda _, x: chain(x, ws, lambda a, b: a @ b), x)

  ws = [jax.device_put(w) for w in weights]
  x = jax.device_put(x0)
  results = {'xla': common.median_seconds(lambda: jax.block_until_ready(xla(x, ws)), repeats)
             / syllables}
  results['numpy'] = common.median_seconds(
      lambda: [chain(x0, weights, np.matmul) for _ in range(syllables)], repeats) / syllables
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return results
  tw = [torch.from_numpy(w) for w in weights]
  tx = torch.from_numpy(x0)
  threads = torch.get_num_threads()
  with torch.inference_mode():
    for n in (1, 2):
      torch.set_num_threads(n)
      results[f'torch, {n} thread{"s" if n > 1 else ""}'] = common.median_seconds(
          lambda: [chain(tx, tw, torch.matmul) for _ in range(syllables)], repeats) / syllables
  torch.set_num_threads(threads)
  return results


def print_floor(config, syllables):
  step_shapes, once_shapes = weight_shapes(config)
  step_mb = sum(a * b for a, b in step_shapes) * 4 / 1e6
  once_mb = sum(a * b for a, b in once_shapes) * 4 / 1e6
  print(f'\nbatch-1 floor, {syllables} syllables: the decoder step reads {step_mb:.1f} MB of '
        f'float32 weights ({len(step_shapes)} matrices), the encoder and cross-attention '
        f'{once_mb:.1f} MB once per sentence')
  print('| matrix-vector products in | ms per step | GB/s | sentence floor ms |')
  print('|---|---:|---:|---:|')
  for name, seconds in measure_floor(config, syllables).items():
    gbs = step_mb / 1e3 / seconds
    floor = syllables * seconds * 1e3 + once_mb / gbs  # MB / (GB/s) = ms
    print(f'| {name} | {seconds * 1e3:.3f} | {gbs:.1f} | {floor:.2f} |', flush=True)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--syllables', default='10,20', help='comma-separated input lengths')
  parser.add_argument('--beams', default='1,4', help='comma-separated beam sizes (1 = greedy)')
  parser.add_argument('--modes', default='unconstrained,full,candidates_rows,candidates_packed',
                      help="'unconstrained' or a decode._beam_search scoring: 'full', "
                      "'candidates' (layout chosen per call), 'candidates_rows', "
                      "'candidates_packed'")
  parser.add_argument('--repeats', type=int, default=50, help='batch-1 sentences per row')
  parser.add_argument('--batches', type=int, default=5, help='batch-64 batches per row')
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--dtypes', default='float32',
                      help="comma-separated compute dtypes, e.g. 'float32,bfloat16' (parameters "
                      "are cast to it once, as Converter(compute_dtype=...) does)")
  parser.add_argument('--quick', action='store_true', help='10 syllables, 20 repeats, 3 batches')
  parser.add_argument('--floor', action='store_true',
                      help="also time the decoder step's matrix-vector products alone (XLA, "
                      'numpy, PyTorch with 1 and 2 threads when installed)')
  args = parser.parse_args(argv)
  if args.quick:
    args.syllables, args.repeats, args.batches = '10', 20, 3

  config = model_lib.ModelConfig.from_config(config_defaults.get_config().model,
                                             common.SRC_VOCAB, common.TGT_VOCAB)
  params32 = model_lib.init_params(config, jax.random.key(0))
  count = sum(x.size for x in jax.tree.leaves(params32))
  print(f'model: {count / 1e6:.1f}M parameters, emb {config.emb_dim}, '
        f'{config.enc_layers}+{config.dec_layers} layers, '
        f'vocab {common.SRC_VOCAB}->{common.TGT_VOCAB}; '
        f'jax {jax.__version__} on {jax.devices()[0].device_kind} '
        f'({os.cpu_count()} cpus); load average {os.getloadavg()[0]:.2f}')
  header = (f'| dtype    | syllables | search  | constraints / scoring    | b=1 p50 ms | b=1 p95 ms | '
            f'b=1 CPU ms | b={args.batch} sent/s | b={args.batch} sent/CPU-s |')
  print(header)
  print('|' + '|'.join('-' * (len(c)) for c in header.split('|')[1:-1]) + '|')
  names = {'unconstrained': 'none', 'full': 'pinyin / full vocab',
           'candidates': 'pinyin / cand. auto', 'candidates_rows': 'pinyin / cand. per sent.',
           'candidates_packed': 'pinyin / cand. packed'}
  for syllables in [int(s) for s in args.syllables.split(',')]:
    for beam in [int(b) for b in args.beams.split(',')]:
      for mode in args.modes.split(','):
        for dtype in args.dtypes.split(','):
          # The same sentences for every dtype: a fresh generator with the same seed.
          rng = np.random.default_rng(syllables * 100 + beam)
          dconfig = dataclasses.replace(config, dtype=dtype, param_dtype=dtype)
          model = model_lib.Transformer(dconfig)
          params = jax.tree.map(lambda x: x.astype(dconfig.param_dtype), params32)
          p50, p95, cpu, rate, cpu_rate = measure(model, params, rng, syllables, beam, mode,
                                                  args.repeats, args.batches, args.batch)
          search = 'greedy' if beam == 1 else f'beam {beam}'
          wide = len(str(args.batch))
          print(f'| {dtype:8s} | {syllables:9d} | {search:7s} | {names[mode]:24s} | {p50:10.2f} | '
                f'{p95:10.2f} | {cpu:10.2f} | {rate:{wide + 10}.0f} | {cpu_rate:{wide + 14}.0f} |',
                flush=True)
  if args.floor:
    for syllables in [int(s) for s in args.syllables.split(',')]:
      print_floor(config, syllables)
  print(f'load average at the end: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  main()
