r"""Variants of the release's bundle tried for issue 21, each judged with experiments.lexicon_weight.

  # The word list's probabilities mixed with word counts over the training text (share 0.5):
  python -m experiments.fusion_variants corpus-unigrams --share 0.5 --out runs/mix/u50
  # One half of the model (encoder or decoder) moved to another model of the same history:
  python -m experiments.fusion_variants half --part decoder --toward runs/rel10 --out runs/mix/p10_decoder
  # lexicon_weight with the lattice's sentences found under the word bigrams (16 kept per position):
  python -m experiments.fusion_variants bigram-lattice --width 16 -- --model pyhanzi_jax/release \
      --corpora dev_tech,dev_dialogue,dev_narrative,hsk,cuv,general,domain --lines 300 \
      --weights 0.3 --paths 4 --edits 4

The first two write a bundle (the release's parameters or word list changed, the rest kept) to
score with `python -m experiments.lexicon_weight --model OUT ...`; the third runs lexicon_weight
itself with `WordLM.paths` replaced. None was kept: docs/QUALITY.md, "What was tried".
"""
from __future__ import annotations

import argparse
import heapq
import math
import sys

from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import lexicon as lexicon_lib


def _export(base: bundle_lib.Bundle, out: str, params, counts, what: str) -> None:
  lm = base.lexicon
  bundle_lib.export_bundle(
      out, params, base.model_config, base.pinyin_vocab, base.hanzi_vocab, max_len=base.max_len,
      settings=base.settings, dtype='float16',
      extensions=[lexicon_lib.BundleLexicon(counts, lm.bigrams.as_bigrams(), lm.readings)],
      provenance={'from': f'{base.meta.get("provenance", {}).get("from")}; {what}'})
  print('wrote', out)


def corpus_unigrams(base: bundle_lib.Bundle, share: float, out: str) -> None:
  """The word list mixed (lexicon.mix, `share` to the corpus) with how often the bigrams' count
  saw each of its words with a follower over the training splits."""
  counts = base.lexicon.counts
  corpus = {w: c for w, c in base.lexicon.bigrams.history.items() if w in counts}
  print(f'{len(corpus):,} of {len(counts):,} words seen, {sum(corpus.values()):,} times')
  mixed = lexicon_lib.mix(*([counts] * (round(1 / share) - 1) + [corpus]))  # share = 1/n.
  _export(base, out, base.params, mixed, f'word list mixed {share} with training-text counts')


def half(base: bundle_lib.Bundle, part: str, toward: str, out: str) -> None:
  """The base with its `part` ('encoder' or 'decoder') replaced by `toward`'s."""
  try:
    other = bundle_lib.load_model(toward)
    bundle_lib.check_mixable(other, base, toward, 'the base')
  except (bundle_lib.BundleError, ValueError) as e:
    raise SystemExit(f'error: {e}') from None
  params = {**base.params, part: other.params[part]}
  _export(base, out, params, base.lexicon.counts, f'its {part} from {toward}')


def bigram_paths(width: int):
  """WordLM.paths with each edge scored under the word bigrams (p(w | the path's last word), as
  WordLM.score), keeping the `width` best partial sentences per position."""
  unigram_paths = lexicon_lib.WordLM.paths

  def paths(self, keys, options, k):
    if self.bigrams is None:
      return unigram_paths(self, keys, options, k)
    n, lookup, prior = len(keys), self.bigrams.lookup, lexicon_lib.BIGRAM_PRIOR
    allowed = [frozenset(o) for o in options]
    singles = [self._singles(o) for o in options]
    best = [[(0.0, '', lexicon_lib.START)]] + [[] for _ in range(n)]
    for j in range(1, n + 1):
      found: dict[str, tuple[float, str]] = {}
      for i in range(max(0, j - max(1, self.max_reading)), j):
        if not best[i] or (j - i > 1 and None in keys[i:j]):
          continue
        edges = singles[i] if j - i == 1 else self._span_words(keys, allowed, i, j)
        for s, w in edges:
          p = math.exp(s)
          for prefix_score, prefix, last in best[i]:
            pair, seen = lookup(last, w)
            total = prefix_score + math.log((pair + prior * p) / (seen + prior))
            if total > found.get(prefix + w, (-math.inf,))[0]:
              found[prefix + w] = (total, w)
      best[j] = heapq.nlargest(max(k, width), ((v, t, w) for t, (v, w) in found.items()))
    return [t for _, t, _ in best[n][:k]]
  return paths


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('variant', choices=('corpus-unigrams', 'half', 'bigram-lattice'))
  ap.add_argument('--model', default=bundle_lib.RELEASE_DIR, help='the bundle to vary')
  ap.add_argument('--out', help='where to write the varied bundle')
  ap.add_argument('--share', type=float, default=0.5, help="corpus-unigrams: the corpus's share")
  ap.add_argument('--part', choices=('encoder', 'decoder'), default='decoder')
  ap.add_argument('--toward', help="half: the model whose part replaces the base's")
  ap.add_argument('--width', type=int, default=4, help='bigram-lattice: sentences kept a position')
  argv = sys.argv[1:] if argv is None else list(argv)
  rest = argv[argv.index('--') + 1:] if '--' in argv else []  # lexicon_weight's options.
  args = ap.parse_args(argv[:len(argv) - len(rest) - (1 if '--' in argv else 0)])
  if args.variant == 'bigram-lattice':
    from experiments import lexicon_weight  # pylint: disable=g-import-not-at-top
    lexicon_lib.WordLM.paths = bigram_paths(args.width)
    return lexicon_weight.main(rest) or 0
  if not args.out:
    ap.error(f'{args.variant} needs --out')
  try:
    base = bundle_lib.load_model(args.model)
  except bundle_lib.BundleError as e:
    ap.error(str(e))
  if base.lexicon is None or base.lexicon.bigrams is None:
    ap.error(f'{args.model} has no word list with bigrams to vary')
  if args.variant == 'corpus-unigrams':
    parts = 1 / args.share if 0 < args.share <= 0.5 else 0
    if parts != round(parts):  # lexicon.mix takes the mean of whole lists.
      ap.error(f'--share must be 1/n for a whole n >= 2 (0.5, 0.25, ...), got {args.share}')
    corpus_unigrams(base, args.share, args.out)
  else:
    if not args.toward:
      ap.error('half needs --toward')
    half(base, args.part, args.toward, args.out)
  return 0


if __name__ == '__main__':
  sys.exit(main())
