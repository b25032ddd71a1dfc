r"""docs/ADAPT.md's grid: `pyhanzi adapt` on texts the release never trained on, at several text
sizes and time budgets, each cell the command a user runs (a fresh process).

  python -m experiments.adapt_grid --texts bible=cuv,tech=manpages+cli_messages+blender \
      --sizes 10000,100000,1000000 --minutes 10 --out runs/adapt_grid
  python -m experiments.adapt_grid ... --table      # print the table of the cells done so far

A text is the hanzi column of prepared sources (data/work/SOURCE.tsv, the corpora's own cleaning),
its lines in sha1 order (spread over the whole source), cut at the size in Chinese characters and
written as a plain text file: what a user would hand `pyhanzi adapt`. Cells already reported are
skipped, so a killed grid resumes; a killed cell resumes from its own checkpoints.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

from experiments import common
from pyhanzi_jax import pinyin


def make_text(data: str, sources: list[str], size: int, path: str) -> int:
  """Writes `size` Chinese characters of `sources` (whole lines; 0: all of them) to `path`;
  returns the count."""
  lines = []
  for src in sources:
    with open(os.path.join(data, 'work', f'{src}.tsv'), encoding='utf-8') as f:
      lines.extend(line.rstrip('\n').split('\t')[1] for line in f if '\t' in line)
  lines.sort(key=lambda s: hashlib.sha1(s.encode('utf-8')).hexdigest())
  out, n = [], 0
  for line in lines:
    if size and n >= size:
      break
    out.append(line)
    n += sum(map(pinyin.is_hanzi, line))
  if n < size:
    raise ValueError(f'{"+".join(sources)} has only {n:,} Chinese characters (< {size:,})')
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    f.write('\n'.join(out) + '\n')
  os.replace(path + '.tmp', path)
  return n


def size_name(size: int) -> str:
  if not size:
    return 'all'
  return f'{size // 1_000_000}M' if size % 1_000_000 == 0 else f'{size // 1000}K'


def run_cell(args, name: str, sources: list[str], size: int, minutes: float) -> dict:
  cell = f'{name}_{size_name(size)}_{minutes:g}min'
  report_path = os.path.join(args.out, cell + '.json')
  if os.path.exists(report_path):
    with open(report_path, encoding='utf-8') as f:
      return json.load(f)
  text = os.path.join(args.out, 'texts', f'{name}_{size_name(size)}.txt')
  if not os.path.exists(text):
    make_text(args.data, sources, size, text)
  cmd = [sys.executable, '-m', 'pyhanzi_jax.adapt', text, '--out', os.path.join(args.out, cell),
         '--minutes', f'{minutes:g}', '--general-data', args.data, '--json', '--quiet',
         '--eval-sentences', str(args.eval_sentences)]
  if args.learning_rate:
    cmd += ['--learning-rate', str(args.learning_rate)]
  if args.general_share is not None:
    cmd += ['--general-share', str(args.general_share)]
  if args.max_passes is not None:
    cmd += ['--max-passes', str(args.max_passes)]
  if args.model:
    cmd += ['--model', args.model]
  print(f'{cell}: {" ".join(cmd[1:])}', flush=True)
  t0 = time.time()
  load0 = os.getloadavg()[0]
  res = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if res.returncode != 0:
    raise SystemExit(f'{cell} failed ({res.returncode}):\n{res.stderr[-2000:]}')
  report = json.loads(res.stdout)
  report['grid'] = {'cell': cell, 'text': name, 'sources': sources, 'size': size,
                    'minutes': minutes, 'wall_s': time.time() - t0,
                    'load_start': load0, 'load_end': os.getloadavg()[0]}
  with open(report_path, 'w', encoding='utf-8') as f:
    json.dump(report, f, ensure_ascii=False, indent=1)
  return report


def row(r: dict) -> str:
  g = r['grid']
  ub, ua, gb, ga = (r[k] for k in ('user_base', 'user_adapted', 'general_base', 'general_adapted'))

  def pair(b, a, metric):
    if not b or not a:  # A run stopped early is not measured (adapt's report).
      return 'n/a'
    return f'{b[metric]:.4f} → {a[metric]:.4f} ({100 * (a[metric] - b[metric]):+.2f})'

  return (f'| {g["text"]} | {size_name(g["size"])} | {g["minutes"]:g} | {r["steps"]}/{r["num_steps"]} '
          f'| {pair(ub, ua, "char_acc")} | {pair(ub, ua, "sent_acc")} '
          f'| {pair(gb, ga, "char_acc")} | {pair(gb, ga, "sent_acc")} | {r["new_word_count"]} '
          f'| {g["wall_s"] / 60:.1f} | {g["load_start"]:.1f}-{g["load_end"]:.1f} |')


HEADER = ('| text | size | min | steps | your text char | sent | general char | sent | new words '
          '| wall min | load |\n|---|---|---:|---:|---|---|---|---|---:|---:|---|')


def main(argv=None) -> None:
  ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  ap.add_argument('--texts', required=True,
                  help='NAME=SRC[+SRC...],... : data/work sources per text')
  ap.add_argument('--sizes', default='100000',
                  help="Chinese characters of each text ('all': the whole text)")
  ap.add_argument('--minutes', default='10', help='training budgets')
  ap.add_argument('--data', default=os.path.join(common.ROOT, 'data'))
  ap.add_argument('--model', default='', help='base bundle (default: the release)')
  ap.add_argument('--learning-rate', type=float, default=0.0)
  ap.add_argument('--general-share', type=float, default=None)
  ap.add_argument('--max-passes', type=float, default=None, help='adapt --max-passes')
  ap.add_argument('--eval-sentences', type=int, default=150)
  ap.add_argument('--out', default=os.path.join(common.ROOT, 'runs', 'adapt_grid'))
  ap.add_argument('--table', action='store_true', help='only print the cells done so far')
  args = ap.parse_args(argv)
  texts = [(t.split('=')[0], t.split('=')[1].split('+')) for t in args.texts.split(',')]
  sizes = [0 if s == 'all' else int(s) for s in args.sizes.split(',')]
  budgets = [float(m) for m in args.minutes.split(',')]
  rows = []
  for name, sources in texts:
    for size in sizes:
      for minutes in budgets:
        cell = f'{name}_{size_name(size)}_{minutes:g}min'
        path = os.path.join(args.out, cell + '.json')
        if args.table:
          if os.path.exists(path):
            with open(path, encoding='utf-8') as f:
              rows.append(row(json.load(f)))
          continue
        try:
          rows.append(row(run_cell(args, name, sources, size, minutes)))
        except ValueError as e:  # A text smaller than the size: the other cells still run.
          print(f'{cell}: skipped: {e}', flush=True)
          continue
        print(rows[-1], flush=True)
  print(HEADER)
  print('\n'.join(rows))


if __name__ == '__main__':
  main()
