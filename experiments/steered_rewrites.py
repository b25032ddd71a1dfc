r"""The word model steering the search: rewrites of the fused best, round after round.

  python -m experiments.steered_rewrites --model pyhanzi_jax/release \
      --corpora dev_tech,dev_dialogue,dev_narrative,hsk,cuv,general,domain \
      --lines 400 --offset 300 --weights 0.3,0.5 --rounds 4 [--edits 4] [--from-top 1]

An experiment, not the library's path. The converter proposes once: the lexicon's lattice
paths and its one-word rewrites of the beam's best (lexicon.propose), all scored by the model
and ranked by model + weight x word score. A line with several wrong words needs several
rewrites at once, and a rewrite of the beam's best keeps the beam's other mistakes. Here each
further round takes the --from-top best candidates under the fused score, proposes the
lexicon's --edits best one-word rewrites of each, has the model score the new ones (one
teacher-forced pass, as the converter's proposals) and ranks again: a hill climb on the fused
score, each step one word, the model judging every step. A round that adds nothing ends the
climb for that line.

The beam is searched once per batch; every weight climbs from the same first round. Prints,
per corpus and weight, char / sentence accuracy after each round (round 1 is the converter's
own answer at that weight), and the mean over the out-of-source sets given
(common.OUT_OF_SOURCE_SETS). Lines are common.dev_rows': held out from the quality
report's sample (test-only sets) or validation lines.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

from experiments import common
from pyhanzi_jax import convert
from pyhanzi_jax import decode as decode_lib
from pyhanzi_jax import evaluate


class SteeredConverter(convert.Converter):
  """A Converter whose decoding also climbs the fused score; `answers[w][r][keys]` is the
  best text after round r (0-based) at weight w for the input whose syllable keys are `keys`.

  Reaches into the Converter's private steps (_add_proposals, _text, _rank): an experiment
  pinned to this version of convert.py, not an API.
  """

  def __init__(self, model, weights, rounds: int, from_top: int = 1, edits: int | None = None,
               **kw):
    super().__init__(model, lm_weight=0, **kw)
    self.weights, self.rounds, self.from_top = weights, rounds, from_top
    self.climb = dataclasses.replace(
        self.settings, lexicon_paths=0,
        lexicon_edits=self.settings.lexicon_edits if edits is None else edits)
    # Rows of one scoring pass: every rewrite of every starting candidate fits.
    self.proposals = max(self.proposals, self.climb.lexicon_edits * from_top)
    self.answers = {w: [{} for _ in range(rounds)] for w in weights}

  def _fused(self, toks, found: dict, weight: float) -> list[tuple]:
    """found's ids, best first under model + weight x word score."""
    score = {ids: s + weight * self.lexicon.score(self._text(toks, ids, 'chinese'))
             for ids, s in found.items()}
    return sorted(found, key=lambda ids: -score[ids])

  def _decode_group(self, group, beam):
    src, rows = self.table.inputs(group, next(b for b in convert.BATCH_SIZES if b >= len(group)))
    constraints = self.table.for_rows(rows)
    seqs, scores = decode_lib.beam_search(self.model, self.params, src, beam_size=beam,
                                          constraints=constraints)
    first = [convert._hypotheses(seqs[r], scores[r], len(toks))  # pylint: disable=protected-access
             for r, toks in enumerate(group)]
    if self.proposals:
      self._add_proposals(group, rows, src, constraints, first)
    keys = [tuple(t.key for t in toks) for toks in group]
    full = self.settings
    for w in self.weights:
      hyps = [dict(f) for f in first]
      for r in range(self.rounds):
        if r:
          # _add_proposals rewrites the first entry of each dict: put the fused best first, and
          # climb from each of the top few in turn (a pass per start, at most).
          before = [len(h) for h in hyps]
          for start in range(self.from_top):
            order = [self._fused(t, h, w) for t, h in zip(group, hyps)]
            for h, o in zip(hyps, order):
              if start < len(o):
                ids = o[start]
                value = h.pop(ids)
                h_items = list(h.items())
                h.clear()
                h[ids] = value
                h.update(h_items)
            self.settings = self.climb
            try:
              self._add_proposals(group, rows, src, constraints, hyps)
            finally:
              self.settings = full
          if [len(h) for h in hyps] == before:  # Nothing new for any line: the climb is over.
            for rr in range(r, self.rounds):
              for t, h, k in zip(group, hyps, keys):
                self.answers[w][rr][k] = self._text(t, self._fused(t, h, w)[0], self.punctuation)
            break
        for t, h, k in zip(group, hyps, keys):
          self.answers[w][r][k] = self._text(t, self._fused(t, h, w)[0], self.punctuation)
    return [self._rank(toks, found) for toks, found in zip(group, first)]


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--model', help='bundle with a lexicon (default: the release model)')
  ap.add_argument('--data', default='data')
  ap.add_argument('--corpora', default=','.join(common.SETS))
  ap.add_argument('--lines', type=int, default=400)
  ap.add_argument('--offset', type=int, default=300)
  ap.add_argument('--weights', default='0.3,0.5')
  ap.add_argument('--rounds', type=int, default=4, help='1: the converter as it is')
  ap.add_argument('--edits', type=int, default=None,
                  help="rewrites per start in the later rounds (default: the bundle's)")
  ap.add_argument('--from-top', type=int, default=1,
                  help='later rounds rewrite each of the fused top N, not only the best')
  ap.add_argument('--paths', type=int, default=None, help="first round's lattice paths")
  args = ap.parse_args(argv)
  weights = [float(w) for w in args.weights.split(',')]
  conv = SteeredConverter(args.model, weights, args.rounds, args.from_top, args.edits,
                          lexicon_paths=args.paths)
  print(f'model {args.model or "the release model"}, beam {conv.settings.beam_size}, first round '
        f'{conv.settings.lexicon_paths} paths + {conv.settings.lexicon_edits} edits, later rounds '
        f'{conv.climb.lexicon_edits} edits of each of the top {args.from_top}, spaced input')
  print('| corpus | lines | weight | ' + ' | '.join(f'round {r + 1}' for r in range(args.rounds))
        + ' |\n|---|---:|---:|' + '---:|' * args.rounds)
  out_of_source = {w: [] for w in weights}
  for corpus in args.corpora.split(','):
    rows = common.dev_rows(args.data, corpus, args.lines, args.offset)
    texts = [evaluate.input_form(py, 'spaced') for py, _ in rows]
    t = time.perf_counter()
    conv.candidates_batch(texts, 1)
    seconds = time.perf_counter() - t
    keys = [tuple(tok.key for tok in conv._parse(text)[0]) for text in texts]  # pylint: disable=protected-access
    refs = [hz for _, hz in rows]
    for w in weights:
      cells, scores = [], []
      for r in range(args.rounds):
        s = evaluate.score_texts([conv.answers[w][r][k] for k in keys], refs)
        cells.append(f'{s["char_acc"]:.4f} / {s["sent_acc"]:.3f}')
        scores.append((s['char_acc'], s['sent_acc']))
      if corpus in common.OUT_OF_SOURCE_SETS:
        out_of_source[w].append(scores)
      print(f'| {corpus} | {len(rows)} | {w} | ' + ' | '.join(cells) +
            f' |  ({seconds:.0f} s)', flush=True)
  for w in weights:
    per = out_of_source[w]
    if per:
      means = [(sum(p[r][0] for p in per) / len(per), sum(p[r][1] for p in per) / len(per))
               for r in range(args.rounds)]
      print(f'| **mean (out of source, {len(per)})** | | {w} | ' +
            ' | '.join(f'**{c:.4f} / {s:.3f}**' for c, s in means) + ' |', flush=True)


if __name__ == '__main__':
  main()
