r"""The validation curve of a training workdir as a markdown table (from WORKDIR/metrics.jsonl).

  python -m experiments.curve runs/pretrain_cpu [--corpora=general,domain]
"""
import argparse

from experiments import common

COLUMNS = ('token_acc', 'greedy_char_acc', 'greedy_sent_acc')
# Logs written before the greedy metrics were named so.
OLD_NAMES = {'greedy_char_acc': 'char_acc', 'greedy_sent_acc': 'sent_acc'}


def value(row: dict, corpus: str, metric: str) -> float:
  for name in (metric, OLD_NAMES.get(metric)):
    if name and f'{corpus}/{name}' in row:
      return row[f'{corpus}/{name}']
  return float('nan')


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('workdir')
  ap.add_argument('--corpora', default='general,domain')
  args = ap.parse_args(argv)
  corpora = args.corpora.split(',')
  rows = common.read_metrics(args.workdir)
  train = {r['step']: r for r in rows if 'train/loss' in r}
  t0 = min(r['time'] for r in rows)
  print('| step | train loss | ' + ' | '.join(f'{c} {m}' for c in corpora for m in COLUMNS) +
        ' | hours |')
  print('|---:|---:|' + '---:|' * (len(corpora) * len(COLUMNS)) + '---:|')
  for r in rows:
    if f'{corpora[0]}/token_acc' not in r:
      continue
    loss = train.get(r['step'], {}).get('train/loss', float('nan'))
    vals = ' | '.join(f'{value(r, c, m):.4f}' for c in corpora for m in COLUMNS)
    print(f'| {r["step"]} | {loss:.3f} | {vals} | {(r["time"] - t0) / 3600:.2f} |')


if __name__ == '__main__':
  main()
