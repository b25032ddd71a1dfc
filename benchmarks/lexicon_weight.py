r"""Chooses the word lexicon's weight, path and edit counts on the validation splits (never a
test set).

  python benchmarks/lexicon_weight.py --model pyhanzi_jax/release [--lines 1000] [--offset 300] \
      [--paths 0,4,8,16] [--edits 0,4] [--weights 0,0.1,0.2,0.3,0.5]

For each path count P and edit count E, decodes --lines validation sentences per corpus (spaced
input, the converter's beam) once, the lexicon's P best sentences (lexicon.WordLM.paths) and its
E best one-word rewrites of the beam's best (lexicon.WordLM.edits) joining the beam's candidates
with their model scores; then re-ranks the same candidates with each weight and prints character
and sentence accuracy. The model must be a bundle with a lexicon (`python -m
pyhanzi_jax.release ...` puts one in). docs/QUALITY.md records the run that chose the defaults.
"""
import argparse
import itertools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyhanzi_jax import convert  # pylint: disable=g-import-not-at-top
from pyhanzi_jax import evaluate  # pylint: disable=g-import-not-at-top


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--model', default=convert.RELEASE_MODEL, help='bundle with a lexicon')
  ap.add_argument('--data', default='data', help='prepared data directory')
  ap.add_argument('--corpora', default='general,domain')
  ap.add_argument('--lines', type=int, default=1000, help='validation sentences per corpus')
  ap.add_argument('--offset', type=int, default=0, help='skip this many first sentences')
  ap.add_argument('--weights', default='0,0.1,0.2,0.3,0.5')
  ap.add_argument('--paths', default='0,8', help='lexicon path counts to try')
  ap.add_argument('--edits', default='0', help='lexicon edit counts to try')
  ap.add_argument('--form', default='spaced', choices=convert.FORMS)
  args = ap.parse_args(argv)

  weights = [float(w) for w in args.weights.split(',')]
  header = True
  for paths, edits in itertools.product([int(p) for p in args.paths.split(',')],
                                        [int(e) for e in args.edits.split(',')]):
    conv = convert.Converter(args.model, lm_weight=0, lexicon_paths=paths, lexicon_edits=edits)
    if conv.lexicon is None:
      ap.error(f'{args.model} has no lexicon; install one with python -m pyhanzi_jax.release')
    if paths + edits and not conv.lexicon.has_readings:
      ap.error(f'{args.model}: its lexicon has no readings (an older bundle); release it again')
    if header:
      print(f'model {args.model}, beam {conv.beam_size}, lexicon {len(conv.lexicon):,} words, '
            f'{args.form} input')
      print('| corpus | lines | paths | edits | ' +
            ' | '.join(f'weight {w}: char / sent' for w in weights) + ' |')
      print('|---|---:|---:|---:|' + '---:|' * len(weights))
      header = False
    for corpus in args.corpora.split(','):
      rows = convert.read_tsv(os.path.join(args.data, corpus, 'valid.tsv'))
      rows = rows[args.offset:args.offset + args.lines]
      t = time.perf_counter()
      nbest = conv.candidates_batch([convert.input_form(py, args.form) for py, _ in rows],
                                    conv.beam_size + paths + edits)
      seconds = time.perf_counter() - t
      cells = []
      for w in weights:
        best = [conv.lexicon.rerank(c, w)[0][0] for c in nbest]
        r = evaluate.score_texts(best, [hz for _, hz in rows])
        cells.append(f'{r["char_acc"]:.4f} / {r["sent_acc"]:.3f}')
      print(f'| {corpus} | {len(rows)} | {paths} | {edits} | ' + ' | '.join(cells) +
            f' |  ({seconds:.0f} s decoding)', flush=True)


if __name__ == '__main__':
  main()
