"""Which characters each input token may become: the constraint tables of pinyin-constrained
decoding.

Syllable *i* of the input is written by character *i* of the output, so at decoder step *i* only
the characters with a reading of syllable *i* (or, for an abbreviated `zh*`, any reading starting
with `zh`) are possible; a passthrough symbol can only become itself, and after the last token
only EOS may follow. Here those sets become integer arrays that `decode.py` consumes:
`[batch, src_len, K]` target ids per source position, padded with -1.
"""
from __future__ import annotations

import numpy as np

from pyhanzi_jax import pinyin
from pyhanzi_jax.data import vocab as vocab_lib


def _round_up(k: int) -> int:
  """Candidate widths are bucketed (powers of two, at least 8) so decoding compiles rarely.

  Coarser than decode._candidate_bucket's two steps per octave: these are a table's one or two
  fixed widths, rounded once (the release's 110 gives 128 under either rule).
  """
  return max(8, 1 << (int(k) - 1).bit_length())


WIDE_MULTIPLE = 64  # The wide width class: the widest list of any key, rounded up to this.


class CandidateTable:
  """For every pinyin-vocabulary id, the hanzi-vocabulary ids it may be written as."""

  def __init__(self, pinyin_vocab: vocab_lib.Vocab, hanzi_vocab: vocab_lib.Vocab):
    self.pinyin_vocab, self.hanzi_vocab = pinyin_vocab, hanzi_vocab
    self._memo: dict[tuple[str, int | None], list[int]] = {}
    rows = [self.ids_for_key(tok) for tok in pinyin_vocab.tokens]
    self.counts = np.asarray([len(r) for r in rows], np.int32)
    self.table = np.full((len(rows), int(self.counts.max())), -1, np.int32)
    for i, r in enumerate(rows):
      self.table[i, :len(r)] = r
    # The widest candidate list of any full syllable (initials are far wider): a fixed width for
    # batches of spaced input, so they all share one compiled decoder.
    full = [i for i, t in enumerate(pinyin_vocab.tokens) if t not in pinyin.INITIAL_KEYS]
    self.syllable_width = _round_up(int(self.counts[full].max()))
    # The decoder's fixed widths (decode.beam_search's candidate_widths): every line of full
    # syllables fits the first (release: 128 for yi's 110), a line with an abbreviation the
    # second (y*: 553 -> 576), so decoding compiles one program per length bucket and width,
    # whatever the candidate counts, and warm-up can compile them all.
    wide = -(-int(self.counts.max()) // WIDE_MULTIPLE) * WIDE_MULTIPLE
    self.widths = tuple(sorted({self.syllable_width, max(wide, self.syllable_width)}))

  def ids_for_key(self, key: str, tone: int | None = None) -> list[int]:
    """Sorted hanzi ids for one pinyin key; UNK where no candidate is in the vocabulary. The
    list is shared between calls (memoised: a line asked for each of its tokens' lists, ~0.1 ms
    each): do not modify it."""
    ids = self._memo.get((key, tone))
    if ids is None:
      ids = self._memo[key, tone] = self._ids_for_key(key, tone)
    return ids

  def _ids_for_key(self, key: str, tone: int | None) -> list[int]:
    hv = self.hanzi_vocab
    if key in vocab_lib.SPECIALS:
      return [hv.id(key) if key != '<s>' else vocab_lib.PAD]
    chars = pinyin.candidates(key, tone) if (key in pinyin.SYLLABLES or
                                             key in pinyin.INITIAL_KEYS) else (key,)
    ids = sorted({hv.index[c] for c in chars if c in hv.index})
    return ids or [vocab_lib.UNK]

  def ids_for_token(self, tok: pinyin.Token) -> list[int]:
    """Hanzi ids one parsed token may be written as: a passthrough symbol itself (UNK when the
    vocabulary lacks it; the converter then writes the symbol as typed), else its key's
    candidates, narrowed to a typed tone when any character has that tone."""
    if tok.kind == pinyin.PASSTHROUGH:
      return [self.hanzi_vocab.id(tok.key)]
    ids = self.ids_for_key(tok.key, tok.tone) if tok.tone else []
    return ids if ids and ids != [vocab_lib.UNK] else self.ids_for_key(tok.key)

  def for_inputs(self, src: np.ndarray, k: int | None = None) -> np.ndarray:
    """[B, S] pinyin ids -> [B, S, K] allowed hanzi ids (-1 padded); K bucketed, or `k`."""
    k = max(k or 0, _round_up(self.counts[src].max()))
    out = self.table[src][..., :k]
    if out.shape[-1] < k:
      out = np.pad(out, ((0, 0), (0, 0), (0, k - out.shape[-1])), constant_values=-1)
    return out

  def width(self, n: int) -> int:
    """The first of `widths` that holds n candidates (n itself past them)."""
    return next((w for w in self.widths if n <= w), int(n))

  def inputs(self, pieces: list[list[pinyin.Token]], batch: int
             ) -> tuple[np.ndarray, list[list[list[int]]]]:
    """What the decoder is given for parsed `pieces`, padded to `batch` rows: source ids
    [batch, length] (EOS-terminated; rows past the pieces only EOS) and each position's allowed
    hanzi ids (the last position only EOS, then PAD; for_rows lays them out)."""
    length = max(len(p) for p in pieces) + 1
    src = np.zeros((batch, length), np.int32)
    rows = []
    for r in range(batch):
      toks = pieces[r] if r < len(pieces) else []
      ids = [self.pinyin_vocab.id(t.key) for t in toks] + [vocab_lib.EOS]
      src[r, :len(ids)] = ids
      row = [self.ids_for_token(t) for t in toks] + [[vocab_lib.EOS]]
      rows.append(row + [[vocab_lib.PAD]] * (length - len(row)))
    return src, rows

  def for_rows(self, rows: list[list[list[int]]]) -> np.ndarray:
    """Explicit candidate lists ([B][S][ids]) -> [B, S, K] (-1 padded), e.g. tone-filtered; K
    the first of `widths` that holds the longest list."""
    k = self.width(max(len(c) for r in rows for c in r))
    s = max(len(r) for r in rows)
    out = np.full((len(rows), s, k), -1, np.int32)
    out[:, :, 0] = vocab_lib.PAD
    for b, r in enumerate(rows):
      for i, c in enumerate(r):
        out[b, i, :] = -1
        out[b, i, :len(c)] = c
    return out
