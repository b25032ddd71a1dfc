r"""Conversions of a fixed sample of test lines, to show that a change leaves them identical.

  python -m experiments.conversion_snapshot --out runs/snapshot_before.json   # before a change
  python -m experiments.conversion_snapshot --out runs/snapshot_after.json    # after it
  python -m experiments.conversion_snapshot --compare runs/snapshot_before.json runs/snapshot_after.json

Each of the test sets gives `--lines` rows chosen by a seeded sample; each row is converted in the
three input forms (spaced, run-together, initials) with the default Converter of `--model`, and
the n-best texts with their scores are written. --compare prints how many differ (texts exactly,
scores within a tolerance) and the first few differences; its exit status is 1 if any text does.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys

TEST_SETS = ('general/test.tsv', 'domain/test.tsv', 'hsk/test.tsv', 'cuv/test.tsv')


def _evaluation():
  from pyhanzi_jax import evaluate
  if hasattr(evaluate, 'input_form'):
    return evaluate
  from pyhanzi_jax import convert  # Before the restructuring the TSV helpers lived here.
  return convert


def snapshot(model: str | None, data_dir: str, lines: int, k: int, seed: int) -> dict:
  from pyhanzi_jax.convert import Converter
  ev = _evaluation()
  conv = Converter(model)
  out = {}
  for name in TEST_SETS:
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
      print(f'skipping {path} (not prepared)', file=sys.stderr)
      continue
    rows = ev.read_tsv(path)
    idx = sorted(random.Random(seed).sample(range(len(rows)), min(lines, len(rows))))
    for form in ev.FORMS:
      texts = [ev.input_form(rows[i][0], form) for i in idx]
      nbest = conv.candidates_batch(texts, k)
      out[f'{name}:{form}'] = [{'input': t, 'nbest': [[c, round(s, 4)] for c, s in cands]}
                               for t, cands in zip(texts, nbest)]
    print(f'{name}: {len(idx)} lines x {len(ev.FORMS)} forms', file=sys.stderr)
  return out


def compare(a: dict, b: dict, tol: float) -> int:
  text_diffs, score_diffs, shown = 0, 0, 0
  for key in sorted(set(a) | set(b)):
    ra, rb = a.get(key, []), b.get(key, [])
    if len(ra) != len(rb):
      print(f'{key}: {len(ra)} vs {len(rb)} rows')
      text_diffs += abs(len(ra) - len(rb))
    for x, y in zip(ra, rb):
      if [c for c, _ in x['nbest']] != [c for c, _ in y['nbest']]:
        text_diffs += 1
        if shown < 10:
          print(f'{key}: {x["input"]!r}: {x["nbest"][:3]} vs {y["nbest"][:3]}')
          shown += 1
      elif any(abs(s - t) > tol for (_, s), (_, t) in zip(x['nbest'], y['nbest'])):
        score_diffs += 1
  rows = sum(len(v) for v in a.values())
  print(f'{rows} rows: {text_diffs} differ in their n-best texts, {score_diffs} more only in '
        f'scores (> {tol})')
  return 1 if text_diffs else 0


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument('--model', default=None, help='bundle or workdir (default: the release)')
  ap.add_argument('--data', default='data', help='prepared data directory')
  ap.add_argument('--lines', type=int, default=300, help='rows per test set')
  ap.add_argument('--k', type=int, default=5, help='n-best size')
  ap.add_argument('--seed', type=int, default=0)
  ap.add_argument('--out', help='where to write the snapshot (JSON)')
  ap.add_argument('--compare', nargs=2, metavar=('A', 'B'), help='compare two snapshots')
  ap.add_argument('--tolerance', type=float, default=1e-3, help='score tolerance for --compare')
  args = ap.parse_args(argv)
  if args.compare:
    with open(args.compare[0], encoding='utf-8') as fa, open(args.compare[1],
                                                           encoding='utf-8') as fb:
      return compare(json.load(fa), json.load(fb), args.tolerance)
  if not args.out:
    ap.error('give --out (or --compare A B)')
  snap = snapshot(args.model, args.data, args.lines, args.k, args.seed)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, 'w', encoding='utf-8') as f:
    json.dump(snap, f, ensure_ascii=False, indent=0)
  return 0


if __name__ == '__main__':
  sys.exit(main())
