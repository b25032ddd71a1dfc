r"""Two models in output space: the release's candidates re-scored by a second model.

  python -m experiments.ensemble_rescore --second runs/rel10 --alphas 0,0.2,0.3,0.5 \
      --corpora dev_tech,dev_dialogue,dev_narrative,hsk,cuv,general,domain --lines 300

For each held-out line (common.dev_rows, as experiments.lexicon_weight reads them), the first
model's converter finds its candidates as it does by default (its beam, the word list's lattice
paths and rewrites), the second model scores the same candidates teacher-forced
(decode.score_sequences), and each is ranked by
(1 - alpha) * first + alpha * second + weight * word log-probability.
alpha 0 is the first model's default conversion (lexicon_weight's figure); a line with a
piece longer than the decoding window (decoded in overlapping windows) keeps its default
answer at every alpha, and each corpus's row says how many did. Weight-space mixing
(`release --mix-base`) averages the parameters instead; this keeps both models and costs a
second scoring pass a line. docs/QUALITY.md, "What was tried", has the run.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from experiments import common
from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import convert
from pyhanzi_jax import decode as decode_lib
from pyhanzi_jax import evaluate


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--model', help='the first model, whose candidates are ranked (default: the '
                  'release)')
  ap.add_argument('--second', required=True, help='the model that re-scores them (same vocabularies)')
  ap.add_argument('--alphas', default='0,0.3,0.5', help="the second model's shares to try")
  ap.add_argument('--weight', type=float, help="the word model's weight (default: the bundle's)")
  ap.add_argument('--data', default='data', help='prepared data directory')
  ap.add_argument('--corpora', default='general,domain', help='comma list of data/ corpora')
  ap.add_argument('--lines', type=int, default=300, help='held-out sentences per corpus')
  ap.add_argument('--offset', type=int, default=0, help='skip this many first sentences')
  args = ap.parse_args(argv)
  alphas = [float(a) for a in args.alphas.split(',')]

  try:
    first = convert.Converter(args.model)
    second = convert.Converter(args.second)
  except bundle_lib.BundleError as e:
    ap.error(str(e))
  if (first.hanzi_vocab.tokens != second.hanzi_vocab.tokens
      or first.pinyin_vocab.tokens != second.pinyin_vocab.tokens):
    ap.error(f'{args.second} has other vocabularies than {args.model or "the release"}')
  if first.lexicon is None:
    ap.error('the first model has no word list')
  weight = first.settings.lm_weight if args.weight is None else args.weight
  k = first.settings.beam_size + first.proposals  # Every candidate of the default search.
  found_by_piece = {}
  rank = first._rank  # pylint: disable=protected-access

  def keep(toks, found):  # Every piece's candidates and first-model scores, as ranked.
    found_by_piece[tuple(toks)] = dict(found)  # Tokens carry their offsets: one key a piece.
    return rank(toks, found)

  first._rank = keep  # pylint: disable=protected-access
  print(f'first {args.model or "the release"}, second {args.second}, word weight {weight}')
  print('| corpus | lines | ' + ' | '.join(f'alpha {a}: char / sent' for a in alphas) + ' |')
  print('|---|---:|' + '---:|' * len(alphas))
  out_of_source = []
  for corpus in args.corpora.split(','):
    rows = common.dev_rows(args.data, corpus, args.lines, args.offset)
    start = time.perf_counter()
    texts = {a: [] for a in alphas}
    windowed = 0
    for py, _ in rows:
      found_by_piece.clear()
      line = evaluate.input_form(py, 'spaced')
      default = first.candidates(line, k)[0][0]
      # The line's pieces in order (the converter decodes them sorted by length).
      tokens, spans = first._parse(line)  # pylint: disable=protected-access
      order = [tuple(tokens[a:b]) for a, b in spans]
      if any(len(p) > first.window for p in order):  # Decoded in windows: the default answer.
        windowed += 1
        for a in alphas:
          texts[a].append(default)
        continue
      pieces = []
      for toks in order:
        found = found_by_piece[toks]
        ids = list(found)
        src, table_rows = first.table.inputs([list(toks)], 1)
        seqs = np.zeros((1, len(ids), src.shape[1] - 1), np.int32)
        for j, s in enumerate(ids):
          seqs[0, j, :len(s)] = s
        other = decode_lib.score_sequences(
            second.model, second.params, src, seqs, constraints=first.table.for_rows(table_rows),
            candidate_widths=first.table.widths)[0]
        words = np.array([first.lexicon.score(first._text(toks, s, 'chinese')) for s in ids])  # pylint: disable=protected-access
        shown = [first._text(toks, s, first.punctuation) for s in ids]  # pylint: disable=protected-access
        pieces.append((shown, np.array([found[s] for s in ids]), other, words))
      for a in alphas:
        texts[a].append(''.join(
            shown[int(np.argmax((1 - a) * mine + a * np.maximum(other, -1e9) + weight * words))]
            for shown, mine, other, words in pieces))
    scores = [evaluate.score_texts(texts[a], [hz for _, hz in rows]) for a in alphas]
    cells = [(r['char_acc'], r['sent_acc']) for r in scores]
    if corpus in common.OUT_OF_SOURCE_SETS:
      out_of_source.append(cells)
    print(f'| {corpus} | {len(rows)} | ' + ' | '.join(f'{c:.4f} / {s:.3f}' for c, s in cells) +
          f' |  ({time.perf_counter() - start:.0f} s' +
          (f'; {windowed} lines longer than the window, their default answer' if windowed
           else '') + ')', flush=True)
  if out_of_source:
    n = len(out_of_source)
    print(f'| **mean (out of source, {n})** | | ' + ' | '.join(
        f'**{sum(s[i][0] for s in out_of_source) / n:.4f} / '
        f'{sum(s[i][1] for s in out_of_source) / n:.3f}**' for i in range(len(alphas))) + ' |')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
