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

  .venv/bin/python -m benchmarks.convert_latency --versus libime [--lines 300] [--rounds 2]

With --versus, instead: the `pyhanzi` command (standard input, one line at a time, as a user
streams a file) beside a peer engine of ../shared/peers (`run_peer.sh NAME IN OUT`) in one run,
each on the same N and 3N lines (the N lines three times, so both runs compile and load the
same), the engines taking turns; marginal time per sentence = (time for 3N - time for N) / 2N,
which leaves out start-up, loading and compilation. Sentences: --corpus's test lines, syllables
only (the peers take spaced toneless pinyin, no punctuation).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from pyhanzi_jax import convert
from pyhanzi_jax import evaluate


def sentences(data: str, corpus: str, syllables: int, count: int) -> list[str]:
  """The first `count` validation lines with at least `syllables` tokens, cut to that many."""
  rows = evaluate.read_tsv(os.path.join(data, corpus, 'valid.tsv'))
  out = [' '.join(py[:syllables]) for py, _ in rows if len(py) >= syllables]
  return out[:count]


def peer_lines(data: str, corpus: str, count: int) -> list[str]:
  """The first `count` test lines of a corpus as the peers take them: spaced syllables only."""
  rows = evaluate.read_tsv(os.path.join(data, corpus, 'test.tsv'))
  out = [' '.join(s for s in py if s.isascii() and s.isalpha()) for py, _ in rows]
  return [line for line in out if line][:count]


def _timed(cmd: list[str], stdin_path: str | None = None, cwd: str | None = None) -> float:
  """Wall seconds of one command, which must succeed."""
  t = time.perf_counter()
  with open(stdin_path or os.devnull, 'rb') as stdin:
    r = subprocess.run(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       cwd=cwd, check=False)
  if r.returncode not in (0, 1):  # pyhanzi exits 1 when some line had no conversion.
    raise RuntimeError(f'{" ".join(cmd)} exited {r.returncode}: {r.stderr[-2000:]!r}')
  return time.perf_counter() - t


def versus(args) -> None:
  """pyhanzi against a peer: marginal ms per sentence of each, in one run."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  peers = args.peers_dir or os.path.join(os.path.dirname(root), 'shared', 'peers')
  lines = peer_lines(args.data, args.corpus, args.lines)
  n = len(lines)
  script = os.path.join(os.path.dirname(sys.executable), 'pyhanzi')
  pyhanzi = [script] if os.path.exists(script) else [sys.executable, '-m', 'pyhanzi_jax.cli']
  pyhanzi += (['--model', args.model] if args.model else []) + args.pyhanzi_args.split()
  times = {'pyhanzi': {1: [], 3: []}, args.versus: {1: [], 3: []}}
  with tempfile.TemporaryDirectory() as tmp:
    inputs = {}
    for mult in (1, 3):
      inputs[mult] = os.path.join(tmp, f'in{mult}.txt')
      with open(inputs[mult], 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines * mult) + '\n')
    print(f'{n} {args.corpus} test lines; pyhanzi = {" ".join(pyhanzi)}; peer = {args.versus} '
          f'({peers}); load {os.getloadavg()[0]:.2f}', flush=True)
    for r in range(args.rounds):
      for mult in (1, 3):
        times['pyhanzi'][mult].append(_timed(pyhanzi, inputs[mult], cwd=root))
        out = os.path.join(tmp, 'out.txt')
        times[args.versus][mult].append(
            _timed([os.path.join(peers, 'run_peer.sh'), args.versus, inputs[mult], out]))
      print(f'round {r + 1}: ' + ', '.join(f'{e} {t[1][-1]:.1f} / {t[3][-1]:.1f} s'
                                          for e, t in times.items()), flush=True)
  print(f'| engine | N={n} lines s | 3N lines s | marginal ms/sentence | x {args.versus} |')
  print('|---|---:|---:|---:|---:|')
  marginal = {e: 1e3 * (statistics.median(t[3]) - statistics.median(t[1])) / (2 * n)
              for e, t in times.items()}
  for e, t in times.items():
    print(f'| {e} | {statistics.median(t[1]):.2f} | {statistics.median(t[3]):.2f} | '
          f'{marginal[e]:.2f} | {marginal[e] / marginal[args.versus]:.1f} |')
  print(f'load at the end {os.getloadavg()[0]:.2f}')


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--model', help='a bundle with a word list (default: the release model)')
  ap.add_argument('--data', default='data', help='prepared data directory')
  ap.add_argument('--corpus', default='general')
  ap.add_argument('--syllables', type=int, default=10)
  ap.add_argument('--repeats', type=int, default=100, help='batch-1 sentences')
  ap.add_argument('--batches', type=int, default=5, help='batches of 64')
  ap.add_argument('--versus', metavar='PEER', help='instead: the pyhanzi command beside this '
                  'peer engine (e.g. libime), marginal time per sentence')
  ap.add_argument('--lines', type=int, default=300, help='--versus: N, test lines')
  ap.add_argument('--rounds', type=int, default=1, help='--versus: runs of each (median)')
  ap.add_argument('--pyhanzi-args', default='--no-warmup',
                  help='--versus: options of the pyhanzi command (default %(default)s: '
                  'warm-up cancels out of the marginal time)')
  ap.add_argument('--peers-dir', help='--versus: the peers harness (default ../shared/peers)')
  args = ap.parse_args(argv)
  if args.versus:
    if args.corpus == 'general' and not os.path.isfile(
        os.path.join(args.data, 'general', 'test.tsv')):
      ap.error(f'{args.data}/general/test.tsv is not prepared')
    return versus(args)

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
