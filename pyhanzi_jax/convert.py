r"""The `Converter`: pinyin in, characters out (the `pyhanzi` command is cli.py).

  >>> conv = Converter('runs/pretrain_cpu')     # a bundle or a training workdir; loaded once
  >>> conv.convert('ni hao shi jie')
  '你好世界'
  >>> conv.candidates('nihao', k=3)             # [(text, score), ...] best first
  >>> conv.convert_lines(['ni hao', 'iphone'])   # one LineResult per line, errors included

A line goes parse → pieces → decode → propose → re-rank → render:
- parse (parse_line): pinyin.parse reads every input form (spaced, run-together, tone digits,
  initials, mixes); ASCII punctuation is keyed as the full-width form the model was trained on;
  Latin words, URLs and `quoted` text are kept as typed (pinyin.parse's keep_latin), and so is
  a syllable no character of the vocabulary reads (`hm`), while a line with nothing to convert
  is a ConversionError;
- pieces: a line longer than the model's window is cut after punctuation, and a piece still too
  long is decoded in overlapping windows (decode_in_windows), each position taken from the
  window where it sits farthest from an edge; such a line's pieces are decoded LONG_LINE_BATCH
  at a time, so the longest line (pinyin.MAX_INPUT_CHARS) needs no more memory than a batch
  of 8;
- decode: pieces are batched (BATCH_SIZES; candidates.CandidateTable.inputs gives the source ids
  and constraint rows) and decoded by a pinyin-constrained beam search (decode.py), so the
  output has one character per syllable, each readable as its syllable;
- propose: the bundle's word list adds sentences of its own (lexicon.lattice_paths and
  lexicon.unseen_proposals), which the model scores in one teacher-forced pass;
- re-rank: model log-probability + lm_weight x word log-probability (+ user-word bonus);
- render: passthrough symbols as typed or in their Chinese form (`punctuation`); what the
  model cannot write (UNK: Latin words, unknown symbols, syllables without characters) as typed.
"""
from __future__ import annotations

import dataclasses
import operator
import time
from typing import Callable, Iterator, Sequence

import jax
import numpy as np

from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import candidates as candidates_lib
from pyhanzi_jax import decode as decode_lib
from pyhanzi_jax import lexicon as lexicon_lib
from pyhanzi_jax import model as model_lib
from pyhanzi_jax import pinyin
from pyhanzi_jax.data.vocab import UNK

BATCH_SIZES = (1, 8, 64)     # Batch sizes decoding compiles for.
# Pieces of a line longer than the window are decoded this many at a time, not 64: a 2,000-
# character line (534 syllables, the release model) peaked at 2.65 GB RSS decoding its windows
# as one padded batch of 64, the word list's proposals scored over the whole vocabulary, and
# peaks at 1.20 GB this way, 0.88 GB of it the loaded model (docs/RELIABILITY.md).
LONG_LINE_BATCH = BATCH_SIZES[1]
MAX_K = 100                  # Most candidates one call returns.
WINDOW_OVERLAP = 8           # Tokens shared by neighbouring windows of an over-long piece.
BREAKS = frozenset('，。！？；：、,.!?;:…')  # Where an over-long line may be cut.
PUNCTUATION_MODES = ('chinese', 'ascii')


class ConversionError(ValueError):
  """Input that cannot be converted (the parser's message, or why the line is empty). From a
  batch, `index` and `text` name the line."""

  def __init__(self, message: str, index: int | None = None, text: str | None = None):
    super().__init__(message)
    self.index, self.text = index, text

  def __reduce__(self):  # Keeps index and text across pickling (worker processes).
    return type(self), (str(self), self.index, self.text)


@dataclasses.dataclass(frozen=True)
class LineResult:
  """One line's answer (Converter.convert_lines): its candidates, best first, or why it has
  none."""
  candidates: list[tuple[str, float]]
  error: str | None = None

  @property
  def text(self) -> str | None:
    """The best conversion, None for a line with an error."""
    return self.candidates[0][0] if self.candidates else None


class Converter:
  """Loads a model once; converts pinyin strings to characters."""

  def __init__(self, model_path: str | None = None, *, beam_size: int | None = None,
               lm_weight: float | None = None, lexicon_paths: int | None = None,
               lexicon_edits: int | None = None, user_words=None,
               user_bonus: float | None = None, punctuation: str = 'chinese',
               compute_dtype: str | None = None):
    """model_path: a bundle or a training workdir (default: the shipped release model).

    beam_size, lm_weight, lexicon_paths, lexicon_edits, user_bonus: override the bundle's
      bundle.ConversionSettings (None keeps the bundle's; lexicon_paths=lexicon_edits=0 keeps
      the beam's candidates only, lm_weight=0 ranks by the model alone).
    user_words: words to prefer where their pinyin is typed (names, terms the model has not
      read): a word file's path or an iterable of words or (word, pinyin) pairs
      (lexicon.user_word_readings; lexicon.UserWordError names one that cannot be used).
    punctuation: 'chinese' writes ASCII , . ? ! : ; ( ) ~ typed in a sentence as ，。？！：；（）～
      (not inside numbers: 3.14, 1,000, 12:30 stay); 'ascii' gives them back as typed.
    compute_dtype: the dtype of the model's activations (default: the bundle's).

    ValueError for a setting out of range (bundle.ConversionSettings says which), a
    bundle.BundleError for a model that cannot be used.
    """
    _check_options(punctuation, compute_dtype)
    self.punctuation = punctuation
    self.bundle, self.model, self.params = _load(model_path, compute_dtype)
    self.pinyin_vocab, self.hanzi_vocab = self.bundle.pinyin_vocab, self.bundle.hanzi_vocab
    self.table = candidates_lib.CandidateTable(self.pinyin_vocab, self.hanzi_vocab)
    self.settings = _settings(self.bundle, user_words, beam_size=beam_size, lm_weight=lm_weight,
                              lexicon_paths=lexicon_paths, lexicon_edits=lexicon_edits,
                              user_bonus=user_bonus)
    self.lexicon = self.bundle.lexicon
    if user_words is not None:
      self.lexicon = lexicon_lib.with_user_words(
          self.lexicon, user_words, self.hanzi_vocab.index, self.table.ids_for_key,
          self.settings.user_bonus)
    # Most candidates the word list adds per sentence; has_readings indexes its readings now,
    # not on the first line.
    n = self.settings.lexicon_paths + self.settings.lexicon_edits
    self.proposals = n if n and self.lexicon is not None and self.lexicon.has_readings else 0
    # Longest piece decoded at once: what training saw, within the model's position table.
    self.window = max(8, min(self.bundle.max_len - 1, self.bundle.model_config.max_len - 2))

  def convert(self, text: str) -> str:
    """The best conversion; ConversionError for text that cannot be converted."""
    return self.candidates(text, 1)[0][0]

  def candidates(self, text: str, k: int = 5) -> list[tuple[str, float]]:
    """Up to k (text, score), best first; ConversionError for text that cannot be converted."""
    (result,) = self._convert([text], k)
    if isinstance(result, ConversionError):
      raise result
    return result

  def convert_batch(self, texts: Sequence[str]) -> list[str]:
    """The best conversion of each text; ConversionError naming the first bad line."""
    return [c[0][0] for c in self.candidates_batch(texts, 1)]

  def candidates_batch(self, texts: Sequence[str], k: int = 5) -> list[list[tuple[str, float]]]:
    """n-best (text, score) lists, best first; a ConversionError for the first bad line, with
    its `index` and `text` (named in the message too when there are several lines;
    convert_lines answers every line instead). A line cut into several pieces gets only its
    best conversion (the pieces' n-best lists do not combine into a meaningful ranking)."""
    return self._convert(texts, k, raise_first=True)

  def convert_lines(self, texts: Sequence[str], k: int = 1) -> list[LineResult]:
    """One LineResult per text, in order: its k best, or the error that line has (what the
    `pyhanzi` command prints per line). Good lines are decoded together; no ConversionError."""
    return [LineResult([], str(r)) if isinstance(r, ConversionError) else LineResult(r)
            for r in self._convert(texts, k)]

  def warmup(self, max_syllables: int = 16, k: int = 1,
             batch_sizes: Sequence[int] = (1,)) -> float:
    """Compiles every program that lines of up to `max_syllables` tokens use when converted
    `k` best at a time, `batch_sizes` lines per call; seconds.

    One program per batch of warmup_groups for the beam search, and as many for the model's
    scoring of the word list's proposals; afterwards such lines compile nothing, whatever their
    candidates, so typing does not stall (tests/test_convert.py counts the compilations).
    """
    t0 = time.perf_counter()
    max_syllables = max(1, min(int(max_syllables), self.window))
    for group in warmup_groups(self.table, max_syllables, batch_sizes):
      self._decode_group(group, self._beam(k), warm=True)
    return time.perf_counter() - t0

  def _beam(self, k: int) -> int:
    """The beam for k candidates: the settings', wider only for a large k."""
    return min(bundle_lib.MAX_BEAM, max(self.settings.beam_size, k - self.proposals))

  def _convert(self, texts: Sequence[str], k: int, raise_first: bool = False) -> list:
    """Each line's n-best list, or its ConversionError; raise_first: raises the first one
    (naming its line) before decoding anything."""
    if isinstance(texts, (str, bytes)):
      raise TypeError('expected a sequence of texts, got one text: use convert/candidates')
    k = _check_k(k)
    lines = []
    for i, text in enumerate(texts):
      try:
        lines.append(self._parse(text))
      except ConversionError as e:
        if raise_first:
          where = f'line {i} ({_excerpt(text)}): ' if len(texts) > 1 else ''
          raise ConversionError(f'{where}{e}', i, text) from None
        lines.append(e)
    beam = self._beam(k)
    jobs = [(i, a, b) for i, line in enumerate(lines) if not isinstance(line, ConversionError)
            for a, b in line[1]]
    # A line of one piece is batched with others as always; the pieces of a longer line in
    # smaller batches, so its memory stays bounded.
    one_piece = [j for j, (i, _, _) in enumerate(jobs) if len(lines[i][1]) == 1]
    several = [j for j, (i, _, _) in enumerate(jobs) if len(lines[i][1]) > 1]
    results: list = [None] * len(jobs)
    for group, batch in ((one_piece, BATCH_SIZES[-1]), (several, LONG_LINE_BATCH)):
      pieces = [lines[jobs[j][0]][0][jobs[j][1]:jobs[j][2]] for j in group]
      for j, res in zip(group, self._decode_pieces(pieces, beam, batch)):
        results[j] = res
    return _line_results(lines, [i for i, _, _ in jobs], results, k)

  # --- parse, pieces ----------------------------------------------------------------------

  def _parse(self, text: str) -> tuple[list[pinyin.Token], list[tuple[int, int]]]:
    return parse_line(text, self.table, self.window)

  def _decode_pieces(self, pieces: list[list], beam: int,
                     batch: int = BATCH_SIZES[-1]) -> list[list[tuple[str, float]]]:
    """n-best lists of token lists: windows for those longer than the window, the rest at
    most `batch` at a time, in batches of similar length."""
    results: list = [None] * len(pieces)
    short = sorted((i for i, p in enumerate(pieces) if len(p) <= self.window),
                   key=lambda i: len(pieces[i]))
    for i, p in enumerate(pieces):
      if len(p) > self.window:  # Each window's best, a long line's batch at a time.
        results[i] = [decode_in_windows(p, self.window, lambda ws: [
            r[0] for r in self._decode_pieces(ws, beam, LONG_LINE_BATCH)])]
    for start in range(0, len(short), batch):
      group = short[start:start + batch]
      for i, res in zip(group, self._decode_group([pieces[i] for i in group], beam)):
        results[i] = res
    return results

  # --- decode, propose, re-rank, render -----------------------------------------------------

  def _decode_group(self, group: list[list], beam: int,
                    warm: bool = False) -> list[list[tuple[str, float]]]:
    """warm: score the proposals even if there are none new (warmup compiles the scorer)."""
    src, rows = self.table.inputs(group, next(b for b in BATCH_SIZES if b >= len(group)))
    constraints = self.table.for_rows(rows)
    # max_len None: the source bucket fixes the compiled shape, not each exact length; the
    # table's fixed widths the candidates' (not their counts).
    fetch = decode_lib.beam_search(self.model, self.params, src, beam_size=beam,
                                   constraints=constraints, candidate_widths=self.table.widths,
                                   block=False)
    # While the device searches (dispatch is asynchronous): the word list's lattice sentences,
    # which need only the constraints (~3 ms of Python a line).
    lattices = self._lattice_paths(group, rows) if self.proposals else None
    seqs, scores = fetch()
    hyps = [_hypotheses(seqs[r], scores[r], len(toks)) for r, toks in enumerate(group)]
    if self.proposals:
      self._add_proposals(group, rows, src, constraints, hyps, warm, lattices)
    return [self._rank(toks, found) for toks, found in zip(group, hyps)]

  def _lattice_paths(self, group, rows) -> list[tuple[list, list, list[str]]]:
    return lexicon_lib.lattice_paths(self.lexicon, group, rows, self.hanzi_vocab.tokens,
                                     self.settings.lexicon_paths)

  def _add_proposals(self, group, rows, src, constraints, hyps, warm: bool = False,
                     lattices=None) -> None:
    """Adds the word list's candidates that the beam did not find (lexicon.unseen_proposals:
    the lattice's sentences, `lattices` if already found, then the rewrites of the beam's
    best), scored by the model in one pass."""
    lattices = self._lattice_paths(group, rows) if lattices is None else lattices
    extra = lexicon_lib.unseen_proposals(self.lexicon, rows, hyps, lattices,
                                         self.hanzi_vocab.tokens, self.hanzi_vocab.index,
                                         self.settings.lexicon_edits)
    if not any(extra) and not warm:
      return
    # Always `proposals` rows per sentence (PAD rows score 0, unused): one compiled scorer per
    # source bucket, not one per count of new candidates.
    seqs = _padded(extra, (src.shape[0], self.proposals, src.shape[1] - 1))
    scores = decode_lib.score_sequences(self.model, self.params, src, seqs,
                                        constraints=constraints,
                                        candidate_widths=self.table.widths)
    for r, new in enumerate(extra):
      for j, ids in enumerate(new):
        if scores[r, j] > -1e8:  # Else a character its (tone-filtered) constraints exclude.
          hyps[r][ids] = float(scores[r, j])

  def _rank(self, toks, found: dict) -> list[tuple[str, float]]:
    # The word list scores the output as the model writes it; the user gets it rendered.
    ids_of = {self._text(toks, ids, 'chinese'): ids for ids in found}
    cands = [(text, found[ids]) for text, ids in ids_of.items()]
    if self.lexicon is not None and (self.settings.lm_weight or self.lexicon.user_words):
      cands = self.lexicon.rerank(cands, self.settings.lm_weight)
    else:
      cands.sort(key=lambda c: -c[1])
    return [(self._text(toks, ids_of[text], self.punctuation), score) for text, score in cands]

  def _text(self, toks, ids, punctuation: str) -> str:
    return render(toks, ids, self.hanzi_vocab.tokens, punctuation)


def parse_line(text: str, table: candidates_lib.CandidateTable, window: int
               ) -> tuple[list[pinyin.Token], list[tuple[int, int]]]:
  """A line's tokens as the model reads them (ASCII punctuation keyed in its Chinese form) and
  its pieces of about `window` tokens (split_pieces); ConversionError for a line that pinyin.parse
  refuses or that has nothing to convert."""
  try:
    tokens = pinyin.parse(text, keep_latin=True)
  except pinyin.PinyinError as e:
    raise ConversionError(str(e)) from None
  if not tokens:
    raise ConversionError('empty input: type pinyin such as "ni hao" or "nh"')
  # A syllable no character of the vocabulary reads is kept as typed (UNK, like a Latin
  # word); a line of nothing but such syllables and symbols has nothing to convert.
  letters = [t for t in tokens if t.kind != pinyin.PASSTHROUGH]
  if letters and all(table.ids_for_token(t) == [UNK] for t in letters):
    t = letters[0]
    raise ConversionError(
        f'no character the model knows is read {t.key!r} ({t.text!r} at position {t.start}); '
        'inside a line such a syllable is kept as typed, but this line has nothing else to '
        'convert: type another reading of the character you mean')
  tokens = pinyin.chinese_punctuation(tokens)
  return tokens, split_pieces(tokens, window)


def _check_options(punctuation: str, compute_dtype: str | None) -> None:
  """ValueError for a punctuation mode or a compute dtype the Converter does not take."""
  if punctuation not in PUNCTUATION_MODES:
    raise ValueError(f'punctuation must be one of {PUNCTUATION_MODES}, got {punctuation!r}')
  if compute_dtype is not None:
    try:
      if np.dtype(compute_dtype).kind != 'f':
        raise TypeError
    except TypeError:
      raise ValueError(f'compute_dtype must be a float dtype such as float32 or bfloat16, '
                       f'got {compute_dtype!r}') from None


def _load(model_path: str | None, compute_dtype: str | None):
  """(bundle, model, parameters) of the bundle or workdir at model_path (default: the release),
  computing in `compute_dtype` if given; the parameters are put on the device and the bundle's
  replaced by them (one copy, ~10 MB less resident on CPU)."""
  bundle = bundle_lib.load_model(model_path or bundle_lib.default_model_path())
  if compute_dtype:
    bundle.model_config = dataclasses.replace(bundle.model_config, dtype=compute_dtype)
  model = model_lib.Transformer(bundle.model_config)
  bundle.params = jax.device_put(bundle.params)
  return bundle, model, bundle.params


def _settings(bundle: bundle_lib.Bundle, user_words, **given) -> bundle_lib.ConversionSettings:
  """The bundle's settings with those given (not None) in their place; a bundle without a word
  list gets the release's proposal counts when there are user words, which need proposals."""
  settings = bundle.settings
  if user_words is not None and bundle.lexicon is None:
    settings = dataclasses.replace(settings, lexicon_paths=lexicon_lib.DEFAULT_PATHS,
                                   lexicon_edits=lexicon_lib.DEFAULT_EDITS)
  return dataclasses.replace(settings, **{k: v for k, v in given.items() if v is not None})


def warmup_groups(table: candidates_lib.CandidateTable, max_syllables: int,
                  batch_sizes: Sequence[int]) -> Iterator[list[list[pinyin.Token]]]:
  """The batches Converter.warmup decodes: for each batch class of `batch_sizes`, each source
  length bucket up to `max_syllables` tokens and each of the table's `widths`, one batch of a
  line as wide as that width (the narrowest key, then the width's widest: a line of full
  syllables is as wide as `yi`, a line ending in an abbreviation as `y`)."""
  counts = {key: len(table.ids_for_key(key)) for key in table.pinyin_vocab.tokens
            if key in pinyin.SYLLABLES or key in pinyin.INITIAL_KEYS}
  widest = {}  # width -> the key with the most candidates in it.
  for key in sorted(counts, key=counts.get, reverse=True):
    widest.setdefault(table.width(counts[key]), key)
  narrowest = min(widest.values(), key=counts.get)
  step = decode_lib.LENGTH_BUCKET
  lengths = sorted({min(n, max_syllables) for n in range(step - 1, max_syllables + step, step)})
  for batch in sorted({next((b for b in BATCH_SIZES if b >= n), BATCH_SIZES[-1])
                       for n in batch_sizes}):
    for n in lengths:
      for key in widest.values():
        keys = [narrowest] * (n - 1) + [key]
        toks = [pinyin.Token(x.rstrip('*'), x, pinyin.INITIAL if x.endswith('*')
                             else pinyin.SYLLABLE, 0, 0) for x in keys]
        yield [toks] * batch


def decode_in_windows(toks: list, window: int,
                      decode: Callable[[list[list]], list[tuple[str, float]]]
                      ) -> tuple[str, float]:
  """A piece longer than `window` tokens, decoded in windows overlapping by WINDOW_OVERLAP
  (decode: token lists -> each one's best (text, score)): each position is taken from the
  window where it sits farthest from an edge; the score is the windows' sum."""
  w = window
  starts = list(range(0, len(toks) - w, w - WINDOW_OVERLAP)) + [len(toks) - w]
  best = decode([toks[s:s + w] for s in starts])
  chars = []
  for pos in range(len(toks)):
    # The window in which `pos` is farthest from an edge sees the most context around it.
    j = max(range(len(starts)), key=lambda j: min(pos - starts[j], starts[j] + w - 1 - pos)
            if starts[j] <= pos < starts[j] + w else -1)
    chars.append(best[j][0][pos - starts[j]])
  return ''.join(chars), sum(score for _, score in best)


def render(toks, ids, hanzi_tokens: Sequence[str], punctuation: str) -> str:
  """The text of output ids for parsed tokens: passthrough symbols in their Chinese form or as
  typed (`punctuation`), Latin as typed, characters from the vocabulary."""
  out = []
  for t, i in zip(toks, ids):
    if t.kind == pinyin.PASSTHROUGH:
      chinese = punctuation == 'chinese' and t.key != pinyin.LATIN_KEY
      out.append(t.key if chinese else t.text)
    else:  # A syllable no character reads was only allowed UNK: written as typed.
      out.append(hanzi_tokens[int(i)] if int(i) != UNK else t.text)
  return ''.join(out)


def _check_k(k) -> int:
  try:
    value = operator.index(k)
  except TypeError:
    value = None
  if value is None or isinstance(k, bool) or not 1 <= value <= MAX_K:
    raise ValueError(f'k (candidates per line) must be a whole number from 1 to {MAX_K}, '
                     f'got {k!r}')
  return value


def _excerpt(text, limit: int = 40) -> str:
  """A line as an error message quotes it: repr (controls escaped), shortened."""
  if not isinstance(text, str):
    return type(text).__name__
  return repr(text) if len(text) <= limit else repr(text[:limit]) + f'... ({len(text)} chars)'


def _line_results(lines: list, owners: list[int], results: list, k: int) -> list:
  """Each line's k best from its pieces' n-best lists (`results`, of the pieces of line
  owners[j] in order), or its ConversionError. A line of several pieces gets one candidate:
  the pieces' best joined, scores summed."""
  per_line: list = [line if isinstance(line, ConversionError) else [] for line in lines]
  for i, res in zip(owners, results):
    per_line[i].append(res)
  return [pieces if isinstance(pieces, ConversionError) else
          pieces[0][:k] if len(pieces) == 1 else
          [(''.join(p[0][0] for p in pieces), float(sum(p[0][1] for p in pieces)))]
          for pieces in per_line]


def _padded(rows: list[list[tuple[int, ...]]], shape: tuple[int, int, int]) -> np.ndarray:
  """Id sequences per sentence, rows[r][j], as one int32 array of `shape`, PAD elsewhere."""
  out = np.zeros(shape, np.int32)
  for r, seqs in enumerate(rows):
    for j, ids in enumerate(seqs):
      out[r, j, :len(ids)] = ids
  return out


def _hypotheses(seqs: np.ndarray, scores: np.ndarray, n: int) -> dict[tuple, float]:
  """{output ids: model score} of one sentence's beam [beam, L], best first, without repeats
  and without the hypotheses the constraints ruled out (score ~ -inf)."""
  found = {}
  for b in range(seqs.shape[0]):
    ids = tuple(int(i) for i in seqs[b, :n])
    if ids not in found and np.isfinite(scores[b]) and scores[b] > -1e8:
      found[ids] = float(scores[b])
  return found


def split_pieces(tokens, window: int) -> list[tuple[int, int]]:
  """Token ranges of at most about `window`, cut after punctuation where the line is longer.
  A piece with no punctuation can stay long: the converter decodes it in windows."""
  if len(tokens) <= window:
    return [(0, len(tokens))]
  pieces, start, last_break = [], 0, None
  for i, tok in enumerate(tokens):
    if tok.kind == pinyin.PASSTHROUGH and tok.key in BREAKS:
      last_break = i
    if i - start + 1 > window and last_break is not None and last_break >= start:
      pieces.append((start, last_break + 1))
      start, last_break = last_break + 1, None
  pieces.append((start, len(tokens)))
  return pieces
