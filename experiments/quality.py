"""Conversion quality of our model beside the existing pinyin engines, on the same lines.

For each test set (data/SET/test.tsv: `spaced pinyin<TAB>hanzi`) it samples --lines lines with
a fixed seed, and for each input form converts them with our Converter and with the peer
converters of the peers harness (--peers-dir, default $PEERS_DIR, else ../shared/peers beside
the repository; its README.md says how each engine is driven), then scores every system with one
function (`evaluate.score_texts`, the definitions of the peer harness):
char acc = 1 - sum(edit distance) / sum(len(reference)), sentence acc = exact match, top-5
sentence acc = the reference among the five best (ours only: the peers give one answer).

  bash ../shared/peers/setup.sh      # once per machine: builds the peers into /tmp/peers
  flock /tmp/pyhanzi_bench.lock .venv/bin/python -m experiments.quality       # release model
  flock /tmp/pyhanzi_bench.lock .venv/bin/python -m experiments.quality \\
      --model runs/pretrain_cpu/export --lines 40 --out runs/quality_smoke     # smoke run

What each system is given (one sentence per line; a test line's syllables are spelled as the
data has them, toneless, ü as v):
- spaced: ours `ni hao ， shi jie`; peers `ni'hao` typed with apostrophes (their default).
- runtogether: ours `evaluate.input_form(.., 'runtogether')`, which keeps an apostrophe only where
  our parser would otherwise read the letters differently (xi'an); the raw-key engines get
  PEER_NODELIM=1, i.e. no apostrophe at all. The PyPI peers only take syllable lists, so they
  are not run (n/a): their result would be the spaced one.
- initials: ours `evaluate.input_form(.., 'initials')` (`nh`, apostrophes where ambiguous); the
  peers that accept abbreviated input get the same initials typed with apostrophes (`n'h`, so
  they too know where each syllable starts). Only rime, rime-pinyin-simp, sunpinyin,
  googlepinyin, libime and pinyinime accept it; libpinyin (its harness turns INCOMPLETE off)
  and the PyPI sentence peers return nothing or echo the letters, pyzy echoes the letters:
  they are n/a.
Punctuation and digits: the peers take syllables only, so each line is cut into its runs of
syllables; every run is one peer input line (as a person types a phrase, then the punctuation),
and the line's own punctuation/digit tokens are put back between the runs' conversions. Our
model gets the whole line, punctuation included, as its API takes it. Both therefore return a
whole line and are scored the same way on the whole reference line. Passthrough symbols are
always right for every system (ours copies them; for the peers they are re-inserted), so
`char acc (hanzi)` also scores the Chinese characters alone: the same function applied to the
reference and the output with the passthrough positions removed (for the peers: the runs'
conversions joined).
Timing: ms/sentence of ours is the decode time of the set and form after an untimed pass over
the same inputs (so no compilation is timed); of a peer, the wall time of its run_peer.sh process over
the set (process start and model load included) / sentences. Both on a shared 2-core machine.

Writes to --out: results.json, tables.md (one table per set and form), errors.md (--errors
sampled wrong sentences of ours per set, spaced form, beside libime's answer), inputs/ (the
sampled lines and what each system was given) and outputs/SET/FORM/SYSTEM.txt.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time

from experiments import common
from pyhanzi_jax import cli
from pyhanzi_jax import convert
from pyhanzi_jax import evaluate
from pyhanzi_jax import pinyin

PEERS = ('libime', 'sunpinyin', 'googlepinyin', 'rime', 'rime-pinyin-simp', 'pyzy', 'libpinyin',
         'pinyin2hanzi_hmm', 'pinyin2hanzi_dag', 'simplepinyin', 'pinyinime')
PY_PEERS = frozenset(('pinyin2hanzi_hmm', 'pinyin2hanzi_dag', 'simplepinyin', 'pinyinime'))
INITIALS_PEERS = frozenset(('rime', 'rime-pinyin-simp', 'sunpinyin', 'googlepinyin', 'libime',
                            'pinyinime'))
OURS = 'ours'


def peer_supports(peer: str, form: str) -> bool:
  if form == 'runtogether':
    return peer not in PY_PEERS
  if form == 'initials':
    return peer in INITIALS_PEERS
  return True


def sample_rows(data: str, set_name: str, n: int, seed: int) -> tuple[list[int], list]:
  """`n` lines of DATA/SET/test.tsv (all if fewer), the same for every system; in file order."""
  rows = evaluate.read_tsv(os.path.join(data, set_name, 'test.tsv'))
  idx = common.sample_indices(len(rows), n, common.sample_key(set_name), seed)
  return idx, [rows[i] for i in idx]


def syllable_runs(tokens: list[str]) -> list[tuple[int, int]]:
  """[start, end) token ranges of the maximal runs of pinyin syllables."""
  runs, start = [], None
  for i, t in enumerate(tokens + ['']):
    if t in pinyin.SYLLABLES:
      start = i if start is None else start
    elif start is not None:
      runs.append((start, i))
      start = None
  return runs


def peer_key(syllable: str, form: str) -> str:
  if form == 'initials':
    key = pinyin.initial_key(syllable)
    return key[:-1] if key.endswith('*') else key
  return syllable


def run_peer(peers_dir: str, peer: str, lines: list[str], form: str, workdir: str,
             timeout: int | None) -> tuple[list[str], float, str]:
  """One run_peer.sh process over `lines`: (outputs, seconds, stderr)."""
  inp = os.path.join(workdir, f'{peer}.{form}.in.txt')
  out = os.path.join(workdir, f'{peer}.{form}.out.txt')
  with open(inp, 'w', encoding='utf-8') as f:
    f.write(''.join(l + '\n' for l in lines))
  env = dict(os.environ)
  env.pop('PEER_NODELIM', None)
  if form == 'runtogether':
    env['PEER_NODELIM'] = '1'
  if timeout:
    env['PEER_TIMEOUT'] = str(timeout)
  t0 = time.perf_counter()
  p = subprocess.run([os.path.join(peers_dir, 'run_peer.sh'), peer, inp, out], env=env,
                     stderr=subprocess.PIPE, text=True, check=False)
  seconds = time.perf_counter() - t0
  if p.returncode != 0:
    raise RuntimeError(f'run_peer.sh {peer} failed (rc={p.returncode}): {p.stderr[-500:]}')
  with open(out, encoding='utf-8') as f:
    outs = [l.rstrip('\n').strip() for l in f]
  assert len(outs) == len(lines), (peer, len(outs), len(lines))
  return outs, seconds, p.stderr


def peer_lines(rows, form: str):
  """Peer input lines (one per syllable run) and, per row, its runs' indices into them."""
  inputs, per_row = [], []
  for py, _ in rows:
    ids = []
    for a, b in syllable_runs(py):
      ids.append(len(inputs))
      inputs.append(' '.join(peer_key(s, form) for s in py[a:b]))
    per_row.append(ids)
  return inputs, per_row


def assemble(py: list[str], run_outputs: list[str]) -> str:
  """A whole line: the runs' conversions with the line's own passthrough tokens between them."""
  out, pos = [], 0
  for (a, b), text in zip(syllable_runs(py), run_outputs):
    out += py[pos:a] + [text]
    pos = b
  return ''.join(out + py[pos:])


def hanzi_only(py: list[str], text: str) -> str:
  """The characters at syllable positions of a one-character-per-token line (ours, the ref)."""
  if len(text) != len(py):  # Not expected of ours (one character per token): score it whole.
    return text
  return ''.join(c for t, c in zip(py, text) if t in pinyin.SYLLABLES)


def score(rows, outputs: list[str], hanzi: list[str], nbest=None) -> dict:
  refs = [hz for _, hz in rows]
  s = evaluate.score_texts(outputs, refs, nbest)
  s['char_acc_hanzi'] = evaluate.score_texts(
      hanzi, [hanzi_only(py, hz) for py, hz in rows])['char_acc']
  s['empty'] = sum(1 for o in outputs if not o)
  return s


def _fmt(v, digits=3):
  return '–' if v is None else f'{v:.{digits}f}'


def table(results: dict, n: int) -> str:
  lines = ['| system | char acc | char acc (hanzi) | sentence acc | top-5 sentence acc | '
           'ms/sentence | failed runs |', '|---|---|---|---|---|---|---|']
  rows = sorted(results.items(), key=lambda kv: (kv[0] != OURS, kv[1] is None,
                                                 -(kv[1] or {}).get('char_acc', 0)))
  for name, r in rows:
    if r is None:
      lines.append(f'| {name} | n/a | n/a | n/a | n/a | n/a | n/a |')
      continue
    sents = round(r['sent_acc'] * n)
    lines.append(f"| {'**ours**' if name == OURS else name} | {_fmt(r['char_acc'])} | "
                 f"{_fmt(r['char_acc_hanzi'])} | {_fmt(r['sent_acc'])} ({sents}/{n}) | "
                 f"{_fmt(r.get('topk_acc'))} | {_fmt(r['ms_per_sentence'], 1)} | "
                 f"{r.get('failed_runs', 0)} |")
  return '\n'.join(lines)


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--model', help='bundle or workdir (default: the release model)')
  ap.add_argument('--lines', type=int, default=500, help='sampled lines per set')
  ap.add_argument('--sets', default=','.join(common.SETS))
  ap.add_argument('--forms', default=','.join(evaluate.FORMS))
  ap.add_argument('--peers', default=','.join(PEERS), help="comma list, or '' for none")
  ap.add_argument('--out', default=os.path.join(common.ROOT, 'runs', 'quality'))
  ap.add_argument('--data', default=os.path.join(common.ROOT, 'data'))
  ap.add_argument('--peers-dir', default=common.peers_dir(),
                  help='the peers harness (default: $PEERS_DIR, else ../shared/peers beside '
                  'the repository)')
  ap.add_argument('--peer-timeout', type=int, default=0, help='PEER_TIMEOUT, seconds per process')
  ap.add_argument('--errors', type=int, default=30, help='sampled errors of ours per set')
  ap.add_argument('--seed', type=int, default=common.SEED)
  ap.add_argument('--lm-weight', type=float, default=None,
                  help="the converter's word-lexicon weight (default: the bundle's; 0: off)")
  ap.add_argument('--lexicon-paths', type=cli.count_arg, default=None,
                  help="the lexicon's sentences added to the beam's (default: the bundle's)")
  ap.add_argument('--lexicon-edits', type=cli.count_arg, default=None,
                  help="the lexicon's rewrites of the beam's best added (default: the bundle's)")
  a = ap.parse_args(argv)
  sets = [s for s in a.sets.split(',') if s]
  forms = [f for f in a.forms.split(',') if f]
  peers = [p for p in a.peers.split(',') if p]
  for f in forms:
    if f not in evaluate.FORMS:
      ap.error(f'unknown form {f}; choose from {evaluate.FORMS}')
  unknown = set(peers) - set(PEERS)
  if unknown:
    ap.error(f'unknown peers {sorted(unknown)}; choose from {PEERS}')
  # Where setup.sh builds the peers: $PEERS_HOME, whose default /tmp/peers is the harness's own
  # (its README.md and setup.sh), not a path of this project.
  if peers and not os.access(os.path.join(os.environ.get('PEERS_HOME', '/tmp/peers'), 'bin',
                                          'libime_peer'), os.X_OK):
    ap.error(f'the peers are not built: run `bash {a.peers_dir}/setup.sh` first (or --peers "")')
  if peers and not os.path.isfile(os.path.join(a.peers_dir, 'run_peer.sh')):
    ap.error(f'no peers harness at {a.peers_dir}: give --peers-dir or PEERS_DIR (or --peers "")')

  conv = convert.Converter(a.model, lm_weight=a.lm_weight, lexicon_paths=a.lexicon_paths,
                           lexicon_edits=a.lexicon_edits)
  os.makedirs(a.out, exist_ok=True)
  model_name = os.path.abspath(a.model) if a.model else 'the release model'
  title = os.path.basename(model_name) if a.model else 'release'
  results = {'meta': {'model': model_name, 'lines_per_set': a.lines,
                      'seed': a.seed, 'sets': sets, 'forms': forms, 'peers': peers,
                      'lm_weight': conv.settings.lm_weight,
                      'lexicon_paths': conv.settings.lexicon_paths,
                      'lexicon_edits': conv.settings.lexicon_edits,
                      'date': time.strftime('%Y-%m-%d %H:%M:%S'), 'cpus': os.cpu_count(),
                      'loadavg_start': os.getloadavg(),
                      'command': ' '.join(['python -m experiments.quality'] + sys.argv[1:])},
             'results': {}, 'lines': {}}
  tables = [f'# Quality: {title} vs peers\n',
            f"model `{a.model or model_name}`, {a.lines} sampled lines per set (seed {a.seed}), "
            f"{results['meta']['date']}\n",
            'Scoring and inputs: docstring of experiments/quality.py. n/a: the peer does not take '
            'this input form. failed runs: peer inputs (syllable runs between punctuation) that '
            'came back empty (the peer failed, crashed or timed out); they score as wrong.\n']
  errors_md = ['# Sampled errors of our model (spaced input)\n']
  t_start = time.perf_counter()
  for set_name in sets:
    idx, rows = sample_rows(a.data, set_name, a.lines, a.seed)
    n = len(rows)
    results['lines'][set_name] = idx
    results['meta'].setdefault('ours_runtogether_lines_with_apostrophe', {})[set_name] = sum(
        "'" in evaluate.input_form(py, 'runtogether') for py, _ in rows)
    in_dir = os.path.join(a.out, 'inputs', set_name)
    os.makedirs(in_dir, exist_ok=True)
    with open(os.path.join(in_dir, 'sample.tsv'), 'w', encoding='utf-8') as f:
      f.write(''.join(f"{i}\t{' '.join(py)}\t{hz}\n" for i, (py, hz) in zip(idx, rows)))
    # Untimed pass: compiles every shape the timed pass uses (candidate widths differ by form).
    t0 = time.perf_counter()
    evaluate.evaluate_rows(conv, rows, forms, 5)
    print(f'{set_name}: {n} lines; warm-up {time.perf_counter() - t0:.1f}s', flush=True)
    ours, ours_out = evaluate.evaluate_rows(conv, rows, forms, 5)
    per_form = results['results'].setdefault(set_name, {})
    peer_answers = {}
    for form in forms:
      res = per_form.setdefault(form, {})
      out_dir = os.path.join(a.out, 'outputs', set_name, form)
      os.makedirs(out_dir, exist_ok=True)
      best = [c[0] if c else '' for c in ours_out[form]]
      res[OURS] = score(rows, best, [hanzi_only(py, b) for (py, _), b in zip(rows, best)],
                        ours_out[form])
      res[OURS]['ms_per_sentence'] = ours[form]['ms_per_sentence']
      with open(os.path.join(out_dir, 'ours.txt'), 'w', encoding='utf-8') as f:
        f.write(''.join('\t'.join(c) + '\n' for c in ours_out[form]))
      with open(os.path.join(in_dir, f'ours.{form}.txt'), 'w', encoding='utf-8') as f:
        f.write(''.join(evaluate.input_form(py, form) + '\n' for py, _ in rows))
      inputs, per_row = peer_lines(rows, form)
      with open(os.path.join(in_dir, f'peers.{form}.txt'), 'w', encoding='utf-8') as f:
        f.write(''.join(l + '\n' for l in inputs))
      for peer in peers:
        if not peer_supports(peer, form):
          res[peer] = None
          continue
        outs, seconds, err = run_peer(a.peers_dir, peer, inputs, form, out_dir, a.peer_timeout)
        runs = [[outs[j] for j in ids] for ids in per_row]
        lines = [assemble(py, r) for (py, _), r in zip(rows, runs)]
        res[peer] = score(rows, lines, [''.join(r) for r in runs])
        res[peer]['ms_per_sentence'] = 1000 * seconds / max(n, 1)
        res[peer]['failed_runs'] = sum(1 for o, l in zip(outs, inputs) if l and not o)
        res[peer]['restarts'] = err.count('run_peer:')
        with open(os.path.join(out_dir, f'{peer}.txt'), 'w', encoding='utf-8') as f:
          f.write(''.join(l + '\n' for l in lines))
        os.remove(os.path.join(out_dir, f'{peer}.{form}.in.txt'))
        os.remove(os.path.join(out_dir, f'{peer}.{form}.out.txt'))
        if form == 'spaced':
          peer_answers[peer] = lines
        print(f"  {set_name}/{form} {peer:18s} char {res[peer]['char_acc']:.3f} "
              f"sent {res[peer]['sent_acc']:.3f} {res[peer]['ms_per_sentence']:.1f} ms/sent",
              flush=True)
      r = res[OURS]
      print(f"  {set_name}/{form} {'OURS':18s} char {r['char_acc']:.3f} sent {r['sent_acc']:.3f} "
            f"top5 {r['topk_acc']:.3f} {r['ms_per_sentence']:.1f} ms/sent", flush=True)
      tables.append(f'\n## {set_name} / {form} ({n} lines)\n\n' + table(res, n) + '\n')
    if 'spaced' in forms:
      wrong = [i for i, ((_, hz), c) in enumerate(zip(rows, ours_out['spaced'])) if c[0] != hz]
      picked = sorted(random.Random(a.seed).sample(wrong, min(a.errors, len(wrong))))
      errors_md.append(f'\n## {set_name}: {len(wrong)}/{n} wrong, {len(picked)} shown\n')
      other = 'libime' if 'libime' in peer_answers else next(iter(peer_answers), None)
      for i in picked:
        (py, hz), cands = rows[i], ours_out['spaced'][i]
        rank = cands.index(hz) + 1 if hz in cands else None
        errors_md.append(f"\n- line {idx[i]}: `{' '.join(py)}`\n  - ref:  {hz}\n"
                         f"  - ours: {cands[0]}" + (f'  (ref is candidate {rank})' if rank else '')
                         + (f'\n  - {other}: {peer_answers[other][i]}' if other else '') + '\n')
  results['meta']['seconds'] = time.perf_counter() - t_start
  results['meta']['loadavg_end'] = os.getloadavg()
  with open(os.path.join(a.out, 'results.json'), 'w', encoding='utf-8') as f:
    json.dump(results, f, indent=1, ensure_ascii=False)
  with open(os.path.join(a.out, 'tables.md'), 'w', encoding='utf-8') as f:
    f.write('\n'.join(tables))
  with open(os.path.join(a.out, 'errors.md'), 'w', encoding='utf-8') as f:
    f.write(''.join(errors_md))
  print(f"done in {results['meta']['seconds']:.0f}s: {a.out}/tables.md", flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
