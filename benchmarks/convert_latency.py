r"""What the word lexicon costs a typist: `Converter` latency with and without its paths.

  .venv/bin/python -m benchmarks.convert_latency [--model pyhanzi_jax/release] [--syllables 10]

End to end through the public API (parsing, constraint tables, beam search, the lexicon's lattice
and the model's re-scoring of its paths, re-ranking, rendering), on real validation sentences
cut to --syllables syllables, spaced input:
- batch 1: `convert(line)` per sentence, p50 / p95 milliseconds;
- batch 64: `convert_batch(lines)`, sentences per second (median over batches);
for three converters on the same bundle: the beam alone (lm_weight 0), the beam re-ranked by the
lexicon (lexicon_paths 0) and the bundle's default (the lexicon's paths added). The three are
timed in turn, sentence by sentence, so that a change in the machine's load hits all of them;
the ratios to the beam alone are the robust numbers on a shared machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from pyhanzi_jax import convert
from pyhanzi_jax import evaluate


def sentences(data: str, corpus: str, syllables: int, count: int) -> list[str]:
  """The first `count` validation lines with at least `syllables` tokens, cut to that many."""
  rows = evaluate.read_tsv(os.path.join(data, corpus, 'valid.tsv'))
  out = [' '.join(py[:syllables]) for py, _ in rows if len(py) >= syllables]
  return out[:count]


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--model', help='a bundle with a word list (default: the release model)')
  ap.add_argument('--data', default='data', help='prepared data directory')
  ap.add_argument('--corpus', default='general')
  ap.add_argument('--syllables', type=int, default=10)
  ap.add_argument('--repeats', type=int, default=100, help='batch-1 sentences')
  ap.add_argument('--batches', type=int, default=5, help='batches of 64')
  args = ap.parse_args(argv)

  default = convert.Converter(args.model)
  model = args.model or 'the release model'
  if default.lexicon is None:
    ap.error(f'{model} has no lexicon: nothing to compare')
  systems = {'beam alone': convert.Converter(args.model, lm_weight=0, lexicon_paths=0,
                                            lexicon_edits=0),
             'beam + re-rank': convert.Converter(args.model, lexicon_paths=0, lexicon_edits=0),
             f'bundle default ({default.settings.lexicon_paths} paths, '
             f'{default.settings.lexicon_edits} edits)':
                 default}
  lines = sentences(args.data, args.corpus, args.syllables, max(args.repeats, 64 * args.batches))
  print(f'model {model}, {args.syllables}-syllable {args.corpus} validation sentences, '
        f'lm_weight {default.settings.lm_weight}, load {os.getloadavg()[0]:.2f}')
  for conv in systems.values():  # Compile every shape first: steady state only.
    conv.convert_batch(lines[:64])
    for line in lines[:3]:
      conv.convert(line)
  single = {name: [] for name in systems}
  for line in lines[:args.repeats]:
    for name, conv in systems.items():
      t = time.perf_counter()
      conv.convert(line)
      single[name].append(1e3 * (time.perf_counter() - t))
  batched = {name: [] for name in systems}
  for i in range(args.batches):
    chunk = lines[64 * i:64 * (i + 1)]
    for name, conv in systems.items():
      t = time.perf_counter()
      conv.convert_batch(chunk)
      batched[name].append(len(chunk) / (time.perf_counter() - t))
  base = 'beam alone'
  p50_base = statistics.median(single[base])
  rate_base = statistics.median(batched[base])
  print('| converter | batch 1 p50 ms | p95 ms | x beam alone | batch 64 sent/s | x beam alone |')
  print('|---|---:|---:|---:|---:|---:|')
  for name in systems:
    ms = sorted(single[name])
    p50, p95 = statistics.median(ms), ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    rate = statistics.median(batched[name])
    print(f'| {name} | {p50:.2f} | {p95:.2f} | {p50 / p50_base:.2f} | {rate:.0f} | '
          f'{rate / rate_base:.2f} |')
  print(f'load at the end {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  main()
