r"""The validation curve of a training workdir as a markdown table (from WORKDIR/metrics.jsonl).

  python benchmarks/curve.py runs/pretrain_cpu [--corpora=general,domain]
"""
import argparse
import json
import os


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument('workdir')
  ap.add_argument('--corpora', default='general,domain')
  args = ap.parse_args()
  corpora = args.corpora.split(',')
  rows = [json.loads(l) for l in open(os.path.join(args.workdir, 'metrics.jsonl'))]
  train = {r['step']: r for r in rows if 'train/loss' in r}
  t0 = min(r['time'] for r in rows)
  cols = ['token_acc', 'char_acc', 'sent_acc']
  print('| step | train loss | ' + ' | '.join(f'{c} {m}' for c in corpora for m in cols) +
        ' | hours |')
  print('|---:|---:|' + '---:|' * (len(corpora) * len(cols)) + '---:|')
  for r in rows:
    if f'{corpora[0]}/token_acc' not in r:
      continue
    loss = train.get(r['step'], {}).get('train/loss', float('nan'))
    vals = ' | '.join(f'{r.get(f"{c}/{m}", float("nan")):.4f}' for c in corpora for m in cols)
    print(f'| {r["step"]} | {loss:.3f} | {vals} | {(r["time"] - t0) / 3600:.2f} |')


if __name__ == '__main__':
  main()
