r"""Conversion for people: the `Converter` API and the `pyhanzi` command.

  >>> conv = Converter('runs/pretrain_cpu')     # a bundle or a training workdir; loaded once
  >>> conv.convert('ni hao shi jie')
  '你好世界'
  >>> conv.candidates('nihao', k=3)             # [(text, score), ...] best first

Every input form of the parser works: spaced, apostrophes, run-together, tone digits,
initials-only (`nh`) and mixes, with digits and punctuation passed through. Each line is parsed,
encoded once and decoded by a pinyin-constrained beam search, so the output has one character per
syllable and every character can be read as its syllable. Lines longer than the model's window
are cut at punctuation, and pieces still too long are decoded in overlapping windows, each
position taken from the window where it sits farthest from an edge.

Command line (one output line per input line, flushed, so it can be driven as a subprocess):

  pyhanzi ni hao shi jie                 # the best conversion
  pyhanzi --nbest 5 nihao                # five candidates with scores
  echo 'zhrmghg' | pyhanzi --json        # {"input": ..., "candidates": [{"text", "score"}]}
  pyhanzi --eval data/general/test.tsv   # char / sentence / top-k accuracy, three input forms
  pyhanzi --user-words words.txt ...     # prefer these words ("耶和华 ye he hua" per line)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Iterable, Sequence

import numpy as np

from pyhanzi_jax import candidates as candidates_lib
from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import lexicon as lexicon_lib
from pyhanzi_jax import pinyin
from pyhanzi_jax.data import vocab as vocab_lib

# The model shipped with the package (issue: release model); None until one is exported there.
RELEASE_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'release')
BATCH_BUCKETS = (1, 8, 64)   # Batch sizes decoding compiles for.
WINDOW_OVERLAP = 8           # Tokens shared by neighbouring windows of an over-long piece.
_BREAKS = frozenset('，。！？；：、,.!?;:…')
# ASCII punctuation typed in a Chinese sentence, as an IME in Chinese mode writes it, by the
# rules data/prepare.py's `normalise` applies to the training text (so the model reads
# 'ni hao ma?' as the 'ni hao ma ？' it was trained on: 你好吗？; left ASCII, the '?' is a symbol
# it never saw there, measured: 你好马?). ',' and ':' stay ASCII between digits (1,000 12:30),
# '.' after a digit (3.14, an enumeration's '1.').
CHINESE_PUNCTUATION = {',': '，', '.': '。', '?': '？', '!': '！', ':': '：', ';': '；',
                       '(': '（', ')': '）', '~': '～'}
PUNCTUATION_MODES = ('chinese', 'ascii')


class ConversionError(ValueError):
  """Input that cannot be converted (wraps the parser's PinyinError with the same message)."""


class UserWordError(ValueError):
  """A user word the converter cannot use (not writable by the model, or a wrong reading)."""


@dataclasses.dataclass
class _Line:
  tokens: list            # pinyin.Token
  pieces: list            # [(start, end)] token ranges decoded separately


def default_model_path() -> str:
  if os.path.isfile(os.path.join(RELEASE_MODEL, 'bundle.json')):
    return RELEASE_MODEL
  raise ckpt_lib.CheckpointError(
      'no model given and no release model is installed: pass --model PATH (a bundle directory '
      'or a training workdir, e.g. runs/demo after `make demo`)')


class Converter:
  """Loads a model once; converts pinyin strings to characters."""

  def __init__(self, model_path: str | None = None, *, beam_size: int = 4,
               compute_dtype: str | None = None, punctuation: str = 'chinese',
               lm_weight: float | None = None, lexicon_paths: int | None = None,
               lexicon_edits: int | None = None, user_words=None,
               user_bonus: float = lexicon_lib.USER_BONUS):
    """model_path: a bundle or a training workdir (default: the shipped release model).

    lm_weight: weight of the bundle's word lexicon when re-ranking the n-best (lexicon.py);
      None takes the bundle's own (0 without a lexicon), 0 turns re-ranking off.
    lexicon_paths: how many of the lexicon's own best sentences (its word lattice over the
      syllables, lexicon.WordLM.paths) join the beam's candidates, scored by the model too;
      None takes the bundle's own, 0 keeps the beam's alone (faster).
    lexicon_edits: how many one-word rewrites of the beam's best by the lexicon
      (lexicon.WordLM.edits) join them too, scored in the same pass; None: the bundle's own.

    user_words: words the conversion should prefer where their pinyin is typed (names, terms
      of a domain the model has not read): a word file's path (lexicon.read_user_words: a
      word per line, optionally with its pinyin) or an iterable of words or (word, pinyin)
      pairs; a word without pinyin is read by pypinyin. They join the lexicon's proposals (as
      its most frequent words) and every candidate gains `user_bonus` nats per character of a
      user word in it (lexicon.USER_BONUS). UserWordError names a word that cannot be used.

    punctuation: 'chinese' writes ASCII , . ? ! : ; ( ) typed in a sentence as ，。？！：；（）
      (not between digits: 3.14, 1,000, 12:30 stay); 'ascii' gives them back as typed. The
      model reads the full-width forms either way.
    """
    if punctuation not in PUNCTUATION_MODES:
      raise ValueError(f'punctuation must be one of {PUNCTUATION_MODES}, got {punctuation!r}')
    self.punctuation = punctuation
    from pyhanzi_jax import decode as decode_lib  # pylint: disable=g-import-not-at-top
    from pyhanzi_jax import model as model_lib  # pylint: disable=g-import-not-at-top
    self._decode = decode_lib
    bundle = ckpt_lib.load_model(model_path or default_model_path())
    if compute_dtype:
      bundle.model_config = dataclasses.replace(bundle.model_config, dtype=compute_dtype)
    self.bundle = bundle
    self.model = model_lib.Transformer(bundle.model_config)
    import jax  # pylint: disable=g-import-not-at-top
    self.params = jax.device_put(bundle.params)
    self.pinyin_vocab, self.hanzi_vocab = bundle.pinyin_vocab, bundle.hanzi_vocab
    self.lexicon = bundle.lexicon
    lexicon_meta = bundle.meta.get('lexicon', {}) if bundle.lexicon else {}
    self.lm_weight = float(lexicon_meta.get('lm_weight', 0.0) if lm_weight is None
                           else lm_weight)
    def count(name, value, key):  # The argument, else the bundle's own (0 if it has none).
      value = int(lexicon_meta.get(key, 0) if value is None else value)
      if value < 0:
        raise ValueError(f'{name} must be >= 0, got {value}')
      return value
    if user_words is not None and not lexicon_meta:  # User words need the proposals.
      lexicon_meta = {'paths': lexicon_lib.DEFAULT_PATHS, 'edits': lexicon_lib.DEFAULT_EDITS}
    self.lexicon_paths = count('lexicon_paths', lexicon_paths, 'paths')
    self.lexicon_edits = count('lexicon_edits', lexicon_edits, 'edits')
    self.table = candidates_lib.CandidateTable(self.pinyin_vocab, self.hanzi_vocab)
    if user_words is not None:
      self._add_user_words(user_words, user_bonus)
    self._proposes()  # Indexes the lexicon's readings now when it will propose, not on line 1.
    self.beam_size = beam_size
    # Longest piece decoded at once: what training saw, within the model's position table.
    trained = int(bundle.meta.get('max_len', bundle.model_config.max_len)) - 1
    self.window = max(8, min(trained, bundle.model_config.max_len - 2))

  # --- public API -------------------------------------------------------------------------

  def convert(self, text: str) -> str:
    return self.candidates(text, 1)[0][0]

  def candidates(self, text: str, k: int = 5) -> list[tuple[str, float]]:
    return self.candidates_batch([text], k)[0]

  def convert_batch(self, texts: Sequence[str]) -> list[str]:
    return [c[0][0] for c in self.candidates_batch(texts, 1)]

  def candidates_batch(self, texts: Sequence[str], k: int = 5) -> list[list[tuple[str, float]]]:
    """n-best (text, score) lists, best first; raises ConversionError on a bad line.

    The score is the model's log-probability, plus lm_weight x the word lexicon's
    log-probability when the bundle has a lexicon (lexicon.py). With lexicon_paths > 0 the
    lexicon's best sentences are candidates too, and with lexicon_edits > 0 its rewrites of the
    beam's best.

    A line cut into several pieces gets only its best conversion (the pieces' n-best lists do
    not combine into a meaningful ranking).
    """
    lines = [self._parse(t) for t in texts]
    # The beam widens for k only beyond what the lexicon's candidates may add.
    beam = max(self.beam_size, k - (self._proposals() if self._proposes() else 0))
    jobs = [(i, a, b) for i, line in enumerate(lines) for a, b in line.pieces]
    results = self._decode_pieces([lines[i].tokens[a:b] for i, a, b in jobs], beam)
    per_line: list[list] = [[] for _ in lines]
    for (i, _, _), res in zip(jobs, results):
      per_line[i].append(res)
    out = []
    for line, pieces in zip(lines, per_line):
      if len(pieces) == 1:
        out.append(pieces[0][:k])
      else:
        out.append([(''.join(p[0][0] for p in pieces), float(sum(p[0][1] for p in pieces)))])
    return out

  def warmup(self, max_syllables: int = 16, k: int = 1) -> float:
    """Compiles the batch-1 decoders for inputs of up to `max_syllables` syllables; seconds.

    Without it the first call of each source-length bucket compiles (~1 s for the default
    model). Inputs whose candidate lists are much wider (initials such as `zh`) still compile
    on first use.
    """
    t0 = time.perf_counter()
    step = self._decode.LENGTH_BUCKET
    for n in range(step - 1, max_syllables + step, step):  # One input per source bucket.
      self.candidates(' '.join(['shi'] * min(n, max_syllables)), k)
    return time.perf_counter() - t0

  # --- internals --------------------------------------------------------------------------

  def _add_user_words(self, user_words, bonus: float) -> None:
    entries = (lexicon_lib.read_user_words(user_words) if isinstance(user_words, str) else
               [(w, '') if isinstance(w, str) else tuple(w) for w in user_words])
    readings = {}
    for word, typed in entries:
      if len(word) < 2:
        raise UserWordError(f'user word {word!r}: give words of two or more characters')
      unknown = [c for c in word if c not in self.hanzi_vocab.index]
      if unknown:
        raise UserWordError(f'user word {word!r}: the model cannot write {"".join(unknown)!r} '
                            '(not in its character vocabulary)')
      if typed:
        try:
          toks = pinyin.parse(typed, allow_initials=False, keep_tones=False)
        except pinyin.PinyinError as e:
          raise UserWordError(f'user word {word!r}: pinyin {typed!r}: {e}') from None
        keys = [t.key for t in toks if t.kind == pinyin.SYLLABLE]
        if len(keys) != len(toks):
          keys = []
      else:
        keys = lexicon_lib.reading(word).split()
      if len(keys) != len(word):
        raise UserWordError(f'user word {word!r}: its pinyin {typed or " ".join(keys)!r} is not '
                            f'{len(word)} syllables; give it after the word, e.g. '
                            f'"{word} {" ".join(["pin"] * len(word))}"')
      for c, key in zip(word, keys):
        if self.hanzi_vocab.index[c] not in self.table.ids_for_key(key):
          raise UserWordError(f'user word {word!r}: {c!r} is not read {key!r} in the model\'s '
                              'reading table (pypinyin); give the reading it has there')
      readings[word] = keys
    if not readings:
      return
    base = self.lexicon or lexicon_lib.WordLM({w: 1 for w in readings})
    self.lexicon = base.with_words(readings, bonus)

  def _parse(self, text: str) -> _Line:
    try:
      tokens = pinyin.parse(text)
    except pinyin.PinyinError as e:
      raise ConversionError(str(e)) from None
    if not tokens:
      raise ConversionError('empty input: type pinyin such as "ni hao" or "nh"')
    tokens = chinese_punctuation(tokens)
    return _Line(tokens, _split_pieces(tokens, self.window))

  def _constraint_row(self, tok) -> list[int]:
    if tok.kind == 'passthrough':
      return [self.hanzi_vocab.id(tok.key)]  # UNK when unseen; replaced by the symbol itself.
    ids = self.table.ids_for_key(tok.key, tok.tone) if tok.tone else []
    return ids if ids and ids != [vocab_lib.UNK] else self.table.ids_for_key(tok.key)

  def _decode_pieces(self, pieces: list[list], beam: int) -> list[list[tuple[str, float]]]:
    """Decodes token lists (each <= window, or windowed here) grouped into bucketed batches."""
    results: list = [None] * len(pieces)
    long = [i for i, p in enumerate(pieces) if len(p) > self.window]
    short = [i for i, p in enumerate(pieces) if len(p) <= self.window]
    for i in long:
      results[i] = [self._decode_windows(pieces[i], beam)]
    short.sort(key=lambda i: len(pieces[i]))
    max_batch = BATCH_BUCKETS[-1]
    for start in range(0, len(short), max_batch):
      group = short[start:start + max_batch]
      for i, res in zip(group, self._decode_group([pieces[i] for i in group], beam)):
        results[i] = res
    return results

  def _decode_group(self, group: list[list], beam: int) -> list[list[tuple[str, float]]]:
    n = len(group)
    batch = next(b for b in BATCH_BUCKETS if b >= n)
    length = max(len(p) for p in group) + 1  # + EOS
    src = np.zeros((batch, length), np.int32)
    rows = []
    for r in range(batch):
      toks = group[r] if r < n else []
      ids = [self.pinyin_vocab.id(t.key) for t in toks] + [vocab_lib.EOS]
      src[r, :len(ids)] = ids
      rows.append([self._constraint_row(t) for t in toks] + [[vocab_lib.EOS]])
    rows = [r + [[vocab_lib.PAD]] * (length - len(r)) for r in rows]
    constraints = self.table.for_rows(rows)
    # max_len None: the source bucket fixes the compiled shape, not each exact length (the
    # constrained output has one character per token either way).
    seqs, scores = self._decode.beam_search(self.model, self.params, src, beam_size=beam,
                                            constraints=constraints)
    hyps = []  # Per sentence: {output ids: model score}, the beam's first.
    for r in range(n):
      found = {}
      for b in range(seqs.shape[1]):
        ids = tuple(int(i) for i in seqs[r, b, :len(group[r])])
        if ids not in found and np.isfinite(scores[r, b]) and scores[r, b] > -1e8:
          found[ids] = float(scores[r, b])
      hyps.append(found)
    if self._proposes():
      self._add_lexicon_candidates(group, rows, src, constraints, hyps)
    out = []
    for r in range(n):
      # The lexicon scores the output as the model writes it; the user gets it rendered.
      ids_of = {self._text(group[r], ids): ids for ids in hyps[r]}
      cands = [(text, hyps[r][ids]) for text, ids in ids_of.items()]
      if self.lexicon is not None and (self.lm_weight or self.lexicon.user_words):
        cands = self.lexicon.rerank(cands, self.lm_weight)
      else:
        cands.sort(key=lambda c: -c[1])
      out.append([(self._render(group[r], ids_of[text]), score) for text, score in cands])
    return out

  def _proposals(self) -> int:
    """Most candidates the lexicon adds to one sentence's beam."""
    return self.lexicon_paths + self.lexicon_edits

  def _proposes(self) -> bool:
    """Whether the lexicon adds candidates of its own (lexicon_paths, lexicon_edits)."""
    return bool(self.lexicon is not None and self._proposals() and self.lexicon.has_readings)

  def _add_lexicon_candidates(self, group, rows, src, constraints, hyps) -> None:
    """Adds the lexicon's best lattice paths and its rewrites of the beam's best that the beam
    did not find, scored by the model in one pass."""
    extra = []
    for r, toks in enumerate(group):
      # A position no word may span (not a full syllable, or no character but UNK) has one
      # option, written as its constraint's first id.
      keys, options = [], []
      for t, row in zip(toks, rows[r]):
        chars = [c for c in map(self.hanzi_vocab.tokens.__getitem__, row) if len(c) == 1]
        syllable = t.kind == pinyin.SYLLABLE and chars
        keys.append(t.key if syllable else None)
        options.append(chars if syllable else ['\ufffd'])
      texts, new = [], []
      if any(keys) and self.lexicon_paths:
        texts += self.lexicon.paths(keys, options, self.lexicon_paths)
      beam_best = next(iter(hyps[r]), None)
      if any(keys) and self.lexicon_edits and beam_best is not None:
        # The beam's best spelled as the lattice spells a line: one character per position.
        chars = [self.hanzi_vocab.tokens[int(i)] if key else '\ufffd'
                 for i, key in zip(beam_best, keys)]
        if all(len(c) == 1 for c in chars):
          texts += self.lexicon.edits(keys, options, ''.join(chars), self.lexicon_edits)
      for text in texts:
        ids = tuple(self.hanzi_vocab.index[c] if key else row[0]
                    for c, key, row in zip(text, keys, rows[r]))
        if ids not in hyps[r] and ids not in new:
          new.append(ids)
      extra.append(new)
    if not any(extra):
      return
    # Always _proposals() rows per sentence (PAD rows score 0, unused): one compiled scorer per
    # source bucket, not one per count of new candidates.
    seqs = np.zeros((src.shape[0], self._proposals(), src.shape[1] - 1), np.int32)
    for r, new in enumerate(extra):
      for j, ids in enumerate(new):
        seqs[r, j, :len(ids)] = ids
    scores = self._decode.score_sequences(self.model, self.params, src, seqs,
                                          constraints=constraints)
    for r, new in enumerate(extra):
      for j, ids in enumerate(new):
        if scores[r, j] > -1e8:  # Else a character its (tone-filtered) constraints exclude.
          hyps[r][ids] = float(scores[r, j])

  def _decode_windows(self, toks: list, beam: int) -> tuple[str, float]:
    """Best conversion of a piece longer than the window, by overlapping windows."""
    w, stride = self.window, self.window - WINDOW_OVERLAP
    starts = list(range(0, len(toks) - w, stride)) + [len(toks) - w]
    best = self._decode_pieces([toks[s:s + w] for s in starts], beam)
    chars, score = [], 0.0
    for pos in range(len(toks)):
      # The window in which `pos` is farthest from an edge sees the most context around it.
      j = max(range(len(starts)), key=lambda j: min(pos - starts[j], starts[j] + w - 1 - pos)
              if starts[j] <= pos < starts[j] + w else -1)
      chars.append(best[j][0][0][pos - starts[j]])
    for b in best:
      score += b[0][1]
    return ''.join(chars), score

  def _text(self, toks, ids) -> str:
    """The output as the model writes it (full-width punctuation), for the lexicon."""
    return ''.join(self.hanzi_vocab.tokens[int(i)] if t.kind != pinyin.PASSTHROUGH else t.key
                   for t, i in zip(toks, ids))

  def _render(self, toks, ids) -> str:
    out = []
    for tok, i in zip(toks, ids):
      if tok.kind != pinyin.PASSTHROUGH:
        out.append(self.hanzi_vocab.tokens[int(i)])
      else:
        out.append(tok.text if self.punctuation == 'ascii' else tok.key)
    return ''.join(out)


def chinese_punctuation(tokens: list) -> list:
  """Passthrough ASCII punctuation keyed as its full-width form (CHINESE_PUNCTUATION), but for
  ',' and ':' between digits and '.' after one. Token.text keeps what was typed."""
  def digit(i):
    return 0 <= i < len(tokens) and tokens[i].key.isdigit()

  out = []
  for i, tok in enumerate(tokens):
    full = CHINESE_PUNCTUATION.get(tok.key) if tok.kind == pinyin.PASSTHROUGH else None
    in_number = ((tok.key in ',:' and digit(i - 1) and digit(i + 1))
                 or (tok.key == '.' and digit(i - 1)))
    out.append(dataclasses.replace(tok, key=full) if full and not in_number else tok)
  return out


def _split_pieces(tokens, window: int) -> list[tuple[int, int]]:
  """Token ranges of at most about `window`, cut after punctuation where the line is longer."""
  if len(tokens) <= window:
    return [(0, len(tokens))]
  pieces, start, last_break = [], 0, None
  for i, tok in enumerate(tokens):
    if tok.kind == 'passthrough' and tok.key in _BREAKS:
      last_break = i
    if i - start + 1 > window and last_break is not None and last_break >= start:
      pieces.append((start, last_break + 1))
      start, last_break = last_break + 1, None
  pieces.append((start, len(tokens)))
  return pieces  # A piece with no punctuation can stay long: _decode_windows handles it.


# --- Evaluation of a TSV of (pinyin, hanzi) lines ---------------------------------------------

FORMS = ('spaced', 'runtogether', 'initials')


def input_form(syllables: Sequence[str], form: str) -> str:
  """The same sentence as a person would type it: 'ni hao', 'nihao' or 'nh'.

  Run-together and initials text keeps an apostrophe only where the parser would otherwise
  read the letters differently (as people type xi'an, or x'a for it), so the test measures
  conversion, not the ambiguity of unmarked letters.
  """
  if form == 'spaced':
    return ' '.join(syllables)
  if form == 'runtogether':
    pieces, want = list(syllables), list(syllables)
  elif form == 'initials':
    want = [pinyin.initial_key(s) if s in pinyin.SYLLABLES else s for s in syllables]
    pieces = [k[:-1] if k.endswith('*') else k for k in want]
  else:
    raise ValueError(f'unknown input form {form!r}; choose from {FORMS}')
  out = ''
  for i, piece in enumerate(pieces):
    trial = out + piece
    out = trial if i == 0 or _keys(trial) == want[:i + 1] else out + "'" + piece
  if _keys(out) != want:  # A later piece re-read an earlier boundary: mark every boundary.
    out = "'".join(pieces)
  return out


def _keys(text: str) -> list[str] | None:
  try:
    return [t.key for t in pinyin.parse(text)]
  except pinyin.PinyinError:
    return None


def read_tsv(path: str) -> list[tuple[list[str], str]]:
  rows = []
  with open(path, encoding='utf-8') as f:
    for n, line in enumerate(f, 1):
      line = line.rstrip('\n')
      if not line:
        continue
      if '\t' not in line:
        raise ValueError(f'{path}:{n}: expected "pinyin<TAB>hanzi"')
      py, hz = line.split('\t', 1)
      rows.append((py.split(), hz))
  return rows


def evaluate_tsv(conv: Converter, path: str, forms: Iterable[str] = FORMS, k: int = 5,
                 limit: int = 0) -> dict[str, dict[str, float]]:
  return evaluate_rows(conv, read_tsv(path)[:limit or None], forms, k)[0]


def evaluate_rows(conv: Converter, rows: Sequence[tuple[list[str], str]],
                  forms: Iterable[str] = FORMS, k: int = 5
                  ) -> tuple[dict[str, dict[str, float]], dict[str, list[list[str]]]]:
  """Scores per input form, and each form's k-best texts per row (for benchmarks/quality.py)."""
  from pyhanzi_jax import evaluate  # pylint: disable=g-import-not-at-top
  report, outputs = {}, {}
  for form in forms:
    texts = [input_form(py, form) for py, _ in rows]
    t0 = time.perf_counter()
    nbest = conv.candidates_batch(texts, k)
    seconds = time.perf_counter() - t0
    outputs[form] = [[t for t, _ in c] for c in nbest]
    report[form] = evaluate.score_texts([c[0] for c in outputs[form]], [hz for _, hz in rows],
                                        outputs[form])
    report[form]['ms_per_sentence'] = 1000 * seconds / max(len(rows), 1)
  return report, outputs


# --- Command line -----------------------------------------------------------------------------

def count_arg(text: str) -> int:
  """argparse type of a count: a clear message for -1 or 'x'."""
  try:
    value = int(text)
  except ValueError:
    value = -1
  if value < 0:
    raise argparse.ArgumentTypeError(f'expected a whole number >= 0, got {text!r}')
  return value


def _parser() -> argparse.ArgumentParser:
  ap = argparse.ArgumentParser(
      prog='pyhanzi', description='Convert pinyin to Chinese characters.',
      epilog='With no TEXT, reads standard input line by line and writes one line per line.')
  ap.add_argument('text', nargs='*', help='pinyin, e.g. ni hao shi jie, nihao, nh')
  ap.add_argument('--model', help='bundle directory or training workdir (default: release model)')
  ap.add_argument('--nbest', type=int, default=1, metavar='K', help='print K candidates')
  ap.add_argument('--warmup', action='store_true',
                  help='compile the decoders for up to 16 syllables before reading standard '
                       'input, so that no line waits for a compile (for input methods that '
                       'drive pyhanzi as a subprocess)')
  ap.add_argument('--beam', type=int, default=4, help='beam size (at least --nbest)')
  ap.add_argument('--lm-weight', type=float, default=None,
                  help="weight of the bundle's word lexicon in re-ranking the beam (default: "
                  "the bundle's; 0: model scores only)")
  ap.add_argument('--lexicon-paths', type=count_arg, default=None, metavar='K',
                  help="add the word lexicon's K best sentences to the beam's candidates "
                  "(default: the bundle's; 0: the beam's only, faster)")
  ap.add_argument('--lexicon-edits', type=count_arg, default=None, metavar='K',
                  help="add the word lexicon's K best one-word rewrites of the beam's best "
                  "(default: the bundle's; 0: none)")
  ap.add_argument('--user-words', metavar='FILE',
                  help='words to prefer where their pinyin is typed: one per line, optionally '
                  'followed by the pinyin ("耶和华 ye he hua"); see Converter(user_words=...)')
  ap.add_argument('--json', action='store_true', help='one JSON object per input line')
  ap.add_argument('--punctuation', choices=PUNCTUATION_MODES, default='chinese',
                  help='write ASCII , . ? ! : ; ( ) typed in a sentence as ，。？！：；（） '
                  '(chinese, the default, as an IME does) or leave them as typed (ascii)')
  ap.add_argument('--eval', metavar='TSV', help='score a "pinyin<TAB>hanzi" file instead')
  ap.add_argument('--forms', default=','.join(FORMS), help='input forms for --eval')
  ap.add_argument('--topk', type=int, default=5, help='k of top-k accuracy for --eval')
  ap.add_argument('--limit', type=int, default=0, help='--eval only the first N lines')
  return ap


def _emit(conv: Converter, text: str, args, out) -> bool:
  try:
    cands = conv.candidates(text, max(args.nbest, 1))
    ok, error = True, None
  except ConversionError as e:
    cands, ok, error = [], False, str(e)
    print(f'pyhanzi: {error}', file=sys.stderr, flush=True)
  if args.json:
    obj = {'input': text, 'candidates': [{'text': t, 'score': round(s, 4)} for t, s in cands]}
    if error:
      obj['error'] = error
    out.write(json.dumps(obj, ensure_ascii=False) + '\n')
  elif args.nbest > 1:
    out.write('\t'.join(f'{t} ({s:.2f})' for t, s in cands) + '\n')
  else:
    out.write((cands[0][0] if cands else '') + '\n')
  out.flush()
  return ok


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  user_words = None
  if args.user_words:
    try:
      user_words = lexicon_lib.read_user_words(args.user_words)
    except (OSError, ValueError) as e:
      print(f'pyhanzi: --user-words: {e}', file=sys.stderr)
      return 2
  try:
    conv = Converter(args.model, beam_size=max(args.beam, args.nbest),
                     punctuation=args.punctuation, lm_weight=args.lm_weight,
                     lexicon_paths=args.lexicon_paths, lexicon_edits=args.lexicon_edits,
                     user_words=user_words)
  except UserWordError as e:
    print(f'pyhanzi: --user-words {args.user_words}: {e}', file=sys.stderr)
    return 2
  except (ckpt_lib.CheckpointError, FileNotFoundError, ValueError) as e:
    print(f'pyhanzi: cannot load the model: {e}', file=sys.stderr)
    return 2
  if args.eval:
    try:
      report = evaluate_tsv(conv, args.eval, [f.strip() for f in args.forms.split(',')],
                            args.topk, args.limit)
    except (OSError, ValueError) as e:
      print(f'pyhanzi: {e}', file=sys.stderr)
      return 2
    print(json.dumps(report, indent=2))
    return 0
  if args.text:
    return 0 if _emit(conv, ' '.join(args.text), args, sys.stdout) else 1
  if args.warmup:
    print(f'pyhanzi: warmed up in {conv.warmup(k=max(args.nbest, 1)):.1f} s', file=sys.stderr)
  failed = False
  for line in sys.stdin:
    failed |= not _emit(conv, line.rstrip('\r\n'), args, sys.stdout)
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
