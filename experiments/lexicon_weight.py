r"""Chooses the word lexicon's weight, path and edit counts on held-out lines, never test lines.

  python -m experiments.lexicon_weight --model pyhanzi_jax/release [--lines 1000] [--offset 300] \
      [--paths 0,4,8,16] [--edits 0,4] [--weights 0,0.1,0.2,0.3,0.5]

For each path count P and edit count E, decodes --lines validation sentences per corpus (spaced
input, the converter's beam) once, the lexicon's P best sentences (lexicon.WordLM.paths) and its
E best one-word rewrites of the beam's best (lexicon.WordLM.edits) joining the beam's candidates
with their model scores; then re-ranks the same candidates with each weight and prints character
and sentence accuracy. The model must be a bundle with a lexicon (`python -m
pyhanzi_jax.release ...` puts one in). docs/QUALITY.md records the run that chose the defaults.

Corpora with a validation split (general, domain, the newer registers) read it (valid.tsv).
The test-only sets (the out-of-source dev_tech, dev_dialogue, dev_narrative, and HSK and CUV)
give a fixed random sample of the test file's lines that experiments/quality.py does not test
on (common.dev_rows): held out from the quality report, so a choice made here is not made on the
lines it is reported on. Choose on the out-of-source sets (common.OUT_OF_SOURCE_SETS; the row
`mean (out of source)` averages those given) with the in-source ones beside them:

  python -m experiments.lexicon_weight --offset 0 --lines 500 \
      --corpora dev_tech,dev_dialogue,dev_narrative,hsk,cuv,general,domain
"""
import argparse
import dataclasses
import itertools
import time

from experiments import common
from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import convert
from pyhanzi_jax import evaluate

def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--model', help='bundle with a lexicon (default: the release model)')
  ap.add_argument('--data', default='data', help='prepared data directory')
  ap.add_argument('--corpora', default='general,domain', help='comma list of data/ corpora')
  ap.add_argument('--lines', type=int, default=1000, help='held-out sentences per corpus')
  ap.add_argument('--offset', type=int, default=0, help='skip this many first sentences')
  ap.add_argument('--weights', default='0,0.1,0.2,0.3,0.5')
  ap.add_argument('--paths', default='0,8', help='lexicon path counts to try')
  ap.add_argument('--edits', default='0', help='lexicon edit counts to try')
  ap.add_argument('--form', default='spaced', choices=evaluate.FORMS)
  ap.add_argument('--beams', default='',
                  help="beam sizes to try, comma list (default: the bundle's)")
  args = ap.parse_args(argv)

  weights = [float(w) for w in args.weights.split(',')]
  model = args.model or 'the release model'
  header = None  # The beam the table printed last was made with.
  beams = [int(b) for b in args.beams.split(',')] if args.beams else [None]
  for beam, paths, edits in itertools.product(beams,
                                              [int(p) for p in args.paths.split(',')],
                                              [int(e) for e in args.edits.split(',')]):
    try:
      conv = convert.Converter(args.model, beam_size=beam, lm_weight=0, lexicon_paths=paths,
                               lexicon_edits=edits)
    except (bundle_lib.BundleError, ValueError) as e:  # A bad path, or a count out of range.
      ap.error(str(e))
    if conv.lexicon is None:
      ap.error(f'{model} has no lexicon; install one with python -m pyhanzi_jax.release')
    if paths + edits and not conv.lexicon.has_readings:
      ap.error(f'{model}: its lexicon has no readings (an older bundle); release it again')
    if header != conv.settings.beam_size:
      print(f'model {model}, beam {conv.settings.beam_size}, '
            f'lexicon {len(conv.lexicon):,} words, {args.form} input')
      print('| corpus | lines | paths | edits | ' +
            ' | '.join(f'weight {w}: char / sent' for w in weights) + ' |')
      print('|---|---:|---:|---:|' + '---:|' * len(weights))
      header = conv.settings.beam_size
    out_of_source = []  # Per weight, the (char, sent) of each out-of-source corpus.
    for corpus in args.corpora.split(','):
      rows = common.dev_rows(args.data, corpus, args.lines, args.offset)
      t = time.perf_counter()
      texts = [evaluate.input_form(py, args.form) for py, _ in rows]
      nbest = conv.candidates_batch(texts, conv.settings.beam_size + paths + edits)
      # A line longer than the decoding window is converted in pieces, and its one candidate
      # is the pieces' best joined, each ranked with the converter's weight: convert those
      # again with each weight instead of re-ranking that one candidate.
      long = [i for i, text in enumerate(texts) if len(conv._parse(text)[1]) > 1]  # pylint: disable=protected-access
      seconds = time.perf_counter() - t
      cells, scores = [], []
      for w in weights:
        best = [conv.lexicon.rerank(c, w)[0][0] for c in nbest]
        if long:
          settings = conv.settings
          conv.settings = dataclasses.replace(settings, lm_weight=w)
          for i, text in zip(long, conv.convert_batch([texts[i] for i in long])):
            best[i] = text
          conv.settings = settings
        r = evaluate.score_texts(best, [hz for _, hz in rows])
        cells.append(f'{r["char_acc"]:.4f} / {r["sent_acc"]:.3f}')
        scores.append((r['char_acc'], r['sent_acc']))
      if corpus in common.OUT_OF_SOURCE_SETS:
        out_of_source.append(scores)
      print(f'| {corpus} | {len(rows)} | {paths} | {edits} | ' + ' | '.join(cells) +
            f' |  ({seconds:.0f} s decoding)', flush=True)
    if out_of_source:
      means = [[sum(s[i][m] for s in out_of_source) / len(out_of_source) for m in (0, 1)]
               for i in range(len(weights))]
      print(f'| **mean (out of source, {len(out_of_source)})** | | {paths} | {edits} | ' +
            ' | '.join(f'**{c:.4f} / {s:.3f}**' for c, s in means) + ' |', flush=True)


if __name__ == '__main__':
  main()
