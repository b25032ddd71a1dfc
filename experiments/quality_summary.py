"""The summary tables of docs/QUALITY.md, from the results.json of experiments/quality.py runs.

  python -m experiments.quality_summary --run runs/quality9 \
      --ours 'model alone=runs/quality9_nolex' [--sets dev_tech,dev_dialogue,dev_narrative,hsk,cuv]

Per input form, one table of char acc / sentence acc per set: ours (the --run's model, bold),
its top-5 sentence accuracy, the 'ours' rows of the other runs given with --ours (same lines:
quality.py samples with a fixed seed), then every peer of --run, best general char acc first.
Then a table of ours minus the best peer on each set and form, in points, naming that peer,
and one of ours minus libime. --sets picks and orders the sets (default: all the run has, the
out-of-source ones first, common.SETS).
The runs must have sampled the same lines (same --lines and seed); this is checked.
"""
import argparse

from experiments import common


def cell(r: dict | None) -> str:
  return 'n/a' if r is None else f'{r["char_acc"]:.3f} / {r["sent_acc"]:.3f}'


def tables(main: dict, others: list[tuple[str, dict]], label: str, sets=common.SETS) -> str:
  res = main['results']
  forms = main['meta']['forms']
  sets = [s for s in sets if s in res]
  out = []
  header = '| system | ' + ' | '.join(sets) + ' |\n|---|' + '---|' * len(sets)
  for form in forms:
    out.append(f'### {form}: char acc / sentence acc\n\n{header}')
    ours = [res[s][form].get('ours') for s in sets]
    out.append(f'| **{label}** | ' + ' | '.join(f'**{cell(r)}**' for r in ours) + ' |')
    out.append('| ours top-5 sentence acc | ' +
               ' | '.join(f'{r["topk_acc"]:.3f}' if r and 'topk_acc' in r else 'n/a' for r in ours)
               + ' |')
    for name, other in others:
      rows = [other['results'].get(s, {}).get(form, {}).get('ours') for s in sets]
      out.append(f'| {name} | ' + ' | '.join(cell(r) for r in rows) + ' |')
    peers = {p for s in sets for p in res[s][form] if p != 'ours' and res[s][form][p]}
    order = sorted(peers, key=lambda p: -(res[sets[0]][form].get(p) or {'char_acc': -1})['char_acc'])
    for p in order:
      out.append(f'| {p} | ' + ' | '.join(cell(res[s][form].get(p)) for s in sets) + ' |')
    out.append('')
  out.append('### ours minus the best peer on that set and form (points of char acc / sentence '
             f'acc)\n\n| form | ' + ' | '.join(sets) + ' |\n|---|' + '---|' * len(sets))
  for form in forms:
    cells = []
    for s in sets:
      ours = res[s][form].get('ours')
      peers = {p: r for p, r in res[s][form].items() if p != 'ours' and r}
      if not ours or not peers:
        cells.append('n/a')
        continue
      parts = []
      for metric in ('char_acc', 'sent_acc'):
        best = max(peers, key=lambda p: peers[p][metric])
        parts.append(f'{100 * (ours[metric] - peers[best][metric]):+.1f} ({best})')
      cells.append(' / '.join(parts))
    out.append(f'| {form} | ' + ' | '.join(cells) + ' |')
  out.append('\n### ours minus libime (points of char acc / sentence acc)\n\n| form | ' +
             ' | '.join(sets) + ' |\n|---|' + '---|' * len(sets))
  for form in forms:
    cells = []
    for s in sets:
      ours, peer = res[s][form].get('ours'), res[s][form].get('libime')
      cells.append('n/a' if not ours or not peer else ' / '.join(
          f'{100 * (ours[m] - peer[m]):+.1f}' for m in ('char_acc', 'sent_acc')))
    out.append(f'| {form} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(out) + '\n'


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--run', required=True, help='a quality.py --out directory (with peers)')
  ap.add_argument('--label', default='ours (release)', help="the run's row label")
  ap.add_argument('--sets', default=','.join(common.SETS), help='which sets, in this order')
  ap.add_argument('--ours', action='append', default=[],
                  help="'LABEL=RUN': another run whose own rows join the tables")
  args = ap.parse_args(argv)
  main_run = common.read_results(args.run)
  others = []
  for spec in args.ours:
    name, _, path = spec.rpartition('=')
    other = common.read_results(path)
    for s in common.SETS:
      if s in other['lines'] and s in main_run['lines'] and (other['lines'][s]
                                                             != main_run['lines'][s]):
        raise SystemExit(f'{path} sampled other {s} lines than {args.run}; compare the same lines')
    others.append((name or path, other))
  print(tables(main_run, others, args.label, args.sets.split(',')), end='')


if __name__ == '__main__':
  main()
