"""A word-frequency lexicon that re-ranks the model's n-best conversions.

The model has seen ~13M characters of text; an input method's lexicon has counted words over far
more. Where the beam's candidates differ by a homophone word (体育场观 / 体育场馆, 红红劣劣 /
轰轰烈烈), a word-frequency list knows which one people write. The conversion score becomes

    log p_model(text | pinyin) + lm_weight * log p_words(text)

where log p_words scores the best segmentation of the text into words under a unigram model (the
dynamic programme jieba uses; a character that is no word of the list costs as much as a word
seen half a time): the sum of log(count / total) over the words, or, when the list comes with
word bigrams (`Bigrams`, as the release's does), the sum of log p(word | previous word), each
the bigram count smoothed towards the unigram probability. The bigrams are counted over the
training text as the list segments it, so they know which of two homophone words follows a given
word (the unigrams only know which is more frequent); on held-out lines they added 0.2 to 1.1
points of character accuracy (docs/QUALITY.md). All candidates of one input have the same
length, so no length normalisation is needed. The weight was chosen on the validation splits
(docs/QUALITY.md); re-ranking is cheap next to decoding (~2 µs a character of a candidate).
A bundle holds the list, its readings' lattice index and its bigrams as arrays (`save_arrays`,
lexicon.npz), read in ~0.4 s of CPU where parsing the TSV files and indexing took ~6 s.

The release's list mixes two word-frequency lists fetched from PyPI with the same verified
download as the corpora (data/sources.py): jieba 0.42.1's dict.txt (349,046 words with counts,
MIT licence; mostly written, news-like text) and wordfreq 3.1.1's large Chinese list (334,609
words, frequencies from subtitles, the web, Wikipedia and jieba's list among others; CC-BY-SA 4.0
data). Each word's probability is the mean of its probabilities in the two (`mix`): wordfreq
brings spoken, everyday frequencies (请稍等 over 青少等), jieba the spellings wordfreq folds into
its "oversimplified" script. On held-out lines of all four sets the mix and wordfreq alone tie,
both ahead of jieba alone (docs/QUALITY.md). The bundle stores the list restricted to words
made of characters the model can write, each with its toneless reading (pypinyin, as the
training pairs were made).

Re-ranking alone can only choose among the beam's few candidates, and the right word is often
not among them. The readings let the lexicon propose candidates of its own (`paths`): the k best
sentences of the word lattice over the input's syllables (words whose reading matches a span of
syllables, single characters elsewhere), scored by the same unigram model. The converter scores
those with the model too and re-ranks the union (docs/QUALITY.md measures both steps). The
lattice itself is cheap (~1 ms for a 10-syllable line); the model's pass over the paths is what
costs (benchmarks/RESULTS.md).

The paths are whole sentences of unigram words, blind to context; they rarely keep the model's
good choices elsewhere in the sentence. `edits` proposes the other kind: the beam's best with one
span rewritten as a lexicon word of the same reading (凭一知半解 for 平一知半解), the rewrites
that most raise the word score first; the model judges them in the same pass as the paths.

User words (`WordLM.with_words`, `read_user_words`; `pyhanzi --user-words`) are an input
method's user dictionary: names and terms no list or training text had (the CUV's 耶和华). Each
joins the list as frequent as its most frequent word, so the lattice and the rewrites propose it
first for its reading, and a candidate gains USER_BONUS nats per character of a user word in it
(`user_bonus`), added in `rerank` whatever the list's weight.
"""
from __future__ import annotations

import bisect
import collections
import collections.abc
import dataclasses
import functools
import gzip
import heapq
import io
import math
import os
import zipfile
import zlib
from typing import Callable, Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np

from pyhanzi_jax import pinyin
from pyhanzi_jax.data import sources as sources_lib

JIEBA = sources_lib.Source(
    name='jieba_dict', corpus='lexicon', package='jieba', version='0.42.1', kind='sdist',
    filename='jieba-0.42.1.tar.gz',
    sha256='055ca12f62674fafed09427f176506079bc135638a14e23e25be909131928db2',
    members=('jieba-0.42.1/jieba/dict.txt',), parse=sources_lib.parse_text, licence='MIT',
    description="jieba's word list: word, count, part of speech")
# Lists `release --lexicon` can build; 'jieba+wordfreq' is the release's.
SOURCES = ('jieba+wordfreq', 'jieba', 'wordfreq')
SCALE = 10**9  # Counts of a list built from probabilities: per billion words.


def parse_cbpack(data: bytes, member: str) -> Iterator[sources_lib.Passage]:
  """'word count' passages (count per SCALE words) of a wordfreq cBpack file: a gzipped msgpack
  list of a header and 800 buckets, bucket i holding the words of frequency 10 ** (-i / 100)."""
  import msgpack  # pylint: disable=g-import-not-at-top  (flax's dependency; only releases need it)
  try:
    header, *buckets = msgpack.unpackb(gzip.decompress(data), raw=False)
  except (OSError, ValueError, TypeError, msgpack.UnpackException) as e:
    raise ValueError(f'{member} is not a gzipped msgpack list ({e})') from e
  if not isinstance(header, dict) or header.get('format') != 'cB':
    raise ValueError(f'{member} is not in the cBpack format (header {header!r})')
  for i, bucket in enumerate(buckets):
    count = round(SCALE * 10 ** (-i / 100))
    for word in bucket:
      yield sources_lib.Passage(f'{word} {count}')


WORDFREQ = sources_lib.Source(
    name='wordfreq_zh', corpus='lexicon', package='wordfreq', version='3.1.1', kind='wheel',
    filename='wordfreq-3.1.1-py3-none-any.whl',
    sha256='4b1c6ecffc6198be3396d5cf871c4423ca71c907c231348d352dd54d62b97473',
    members=('wordfreq/data/large_zh.msgpack.gz',), parse=parse_cbpack,
    licence='Apache-2.0 (code), CC-BY-SA-4.0 (data)',
    description="wordfreq's Chinese word frequencies, words bucketed by centibel")

FILENAME = 'lexicon.tsv.gz'  # `save`'s TSV: bundles before format 3, pyhanzi adapt's.
# The release's defaults, chosen on held-out lines apart from the quality report's samples
# (experiments/lexicon_weight.py, docs/QUALITY.md): the lexicon's 4 best sentences and its 4 best
# one-word rewrites of the beam's best (`edits`) join the beam's 4, and the word score is added
# with weight 0.3: on the mean of the out-of-source dev sets (dev_tech, dev_dialogue,
# dev_narrative, HSK, CUV; stage 7 model, jieba+wordfreq with the bigrams below) 0.4 and 0.5 were
# level with it (character accuracy 0.8381 and 0.8374 against 0.8374) and lost more on the
# in-source general and domain splits.
# 8 paths, or 2 to 32 edits, gave the same accuracy within 0.02 points (stage 4 and 5), so the
# cheap end: the model scores 8 extra rows per sentence.
DEFAULT_WEIGHT = 0.3
DEFAULT_PATHS = 4     # 0: no lattice sentences.
DEFAULT_EDITS = 4     # 0: no rewrites; with both 0 the lexicon only re-ranks the beam's.
WORDS_PER_READING = 8  # Homophone words kept per reading for the lattice, most frequent first.
WORDS_PER_EDIT = 2     # Lexicon words tried for each span of the text `edits` rewrites.
# Words longer than this are 2% of a list: the segmentation looks for them only where a span
# begins as one of them does (WordLM._long_heads), not at every length up to the longest word.
SHORT_WORD = 4
# What a candidate gains per character of a user's word it contains (nats, on the model's
# log-probability scale). Measured on the stage 6 release: 耶和华 lost to 也和话 by 6.6 nats of
# model score against 4.6 x 0.3 from the word list; 3 per character (9 for it) lets the
# user's word win such cases without overriding the model where the reading does not fit.
USER_BONUS = 3.0
# Word bigrams (`Bigrams`): counted over the training splits of every training corpus
# (release.BIGRAM_CORPORA: general, domain, tech, ui, dialogue, idiom; over general and domain
# alone, dev_tech was 0.9004 against 0.9145) as the list segments them, kept where a pair was
# seen at least MIN_BIGRAM_COUNT times (890,035 pairs in the release), because keeping every pair
# measured only 0.1 points of mean character accuracy more on held-out lines at about four times
# the size (bigrams of general and domain). BIGRAM_PRIOR is the Dirichlet prior's weight on the
# unigram probability: 1 measured best of 0.3, 1, 10 and 100.
BIGRAMS_FILENAME = 'bigrams.tsv.gz'
MIN_BIGRAM_COUNT = 2
BIGRAM_PRIOR = 1.0
START = '<s>'  # The history of a text's first word.


def word_counts(source: sources_lib.Source, cache_dir: str,
                keep_chars: Iterable[str] | None = None) -> dict[str, int]:
  """word -> count from a list of 'word count ...' passages (jieba's dict.txt, wordfreq's list);
  only words of CJK characters (wordfreq's also has digits and Latin), and of `keep_chars` when
  given."""
  keep = None if keep_chars is None else frozenset(keep_chars)
  counts: dict[str, int] = {}
  for passage in sources_lib.passages(source, cache_dir):
    parts = passage.text.split()
    if len(parts) < 2 or not parts[1].isdigit():
      continue
    word, count = parts[0], int(parts[1])
    if (count > 0 and all('\u4e00' <= c <= '\u9fff' for c in word)
        and (keep is None or all(c in keep for c in word))):
      counts[word] = counts.get(word, 0) + count
  if not counts:
    raise RuntimeError(f'{source.filename}: no usable "word count" entries in {source.members}')
  return counts


def mix(*lists: dict[str, int]) -> dict[str, int]:
  """word -> count per SCALE words of the mean of the lists' word probabilities."""
  totals = [float(sum(c.values())) for c in lists]
  words = set().union(*lists)
  return {w: max(1, round(SCALE / len(lists) * sum(c.get(w, 0) / t for c, t in zip(lists, totals))))
          for w in words}


def source_counts(name: str, cache_dir: str, keep_chars: Iterable[str] | None = None
                  ) -> dict[str, int]:
  """The word list `name` (one of SOURCES) as word -> count."""
  keep = None if keep_chars is None else frozenset(keep_chars)
  if name in ('jieba', 'wordfreq'):
    return word_counts(JIEBA if name == 'jieba' else WORDFREQ, cache_dir, keep)
  if name == 'jieba+wordfreq':
    return mix(word_counts(JIEBA, cache_dir, keep), word_counts(WORDFREQ, cache_dir, keep))
  raise ValueError(f'unknown word list {name!r}; choose one of {", ".join(SOURCES)}')


def reading(word: str) -> str:
  """Toneless syllables of `word`, space-separated, as the training pairs were romanised
  ('' when pypinyin has none for it)."""
  from pyhanzi_jax.data import prepare  # pylint: disable=g-import-not-at-top  (pypinyin: slow import)
  keys = prepare.pinyin_keys(word)
  return '' if isinstance(keys, str) else ' '.join(keys)


def save(path: str, counts: dict[str, int]) -> None:
  """'word<TAB>count<TAB>reading' lines, sorted, gzip with a fixed mtime (the same bytes every
  time). The readings are worked out here (~10 s for jieba's list)."""
  text = ''.join(f'{w}\t{c}\t{reading(w)}\n' for w, c in sorted(counts.items()))
  with open(path, 'wb') as raw, gzip.GzipFile(filename='', fileobj=raw, mode='wb', mtime=0) as f:
    f.write(text.encode('utf-8'))


def read(path: str) -> tuple[dict[str, int], dict[str, tuple[str, ...]]]:
  """(word -> count, word -> reading) from a file `save` wrote; ValueError on a malformed line.
  Files of an earlier version have no reading column: the readings are then empty."""
  counts, readings = {}, {}
  with gzip.open(path, 'rt', encoding='utf-8') as f:
    for n, line in enumerate(f, 1):
      parts = line.rstrip('\n').split('\t')
      if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise ValueError(f'{path}:{n}: expected "word<TAB>count<TAB>reading", got {line[:40]!r}')
      counts[parts[0]] = int(parts[1])
      if len(parts) == 3 and parts[2]:
        readings[parts[0]] = tuple(parts[2].split(' '))
  return counts, readings


def read_counts(path: str) -> dict[str, int]:
  """The word -> count list of a file `save` wrote."""
  return read(path)[0]


def read_user_words(path: str) -> list[tuple[str, str]]:
  """(word, reading) pairs of a user's word file: one word per line, optionally followed by
  its pinyin after a tab or spaces (`耶和华 ye he hua`, `重庆\tchongqing`); '' where none is
  given (the converter then reads it with pypinyin). Blank lines and lines starting with # are
  skipped. OSError when the file cannot be read; ValueError naming the line when a word is not
  made of CJK characters."""
  entries = []
  with open(path, encoding='utf-8') as f:
    for n, line in enumerate(f, 1):
      line = line.strip()
      if not line or line.startswith('#'):
        continue
      word, _, reading_text = line.partition('\t') if '\t' in line else line.partition(' ')
      word = word.strip()
      if len(word) < 2 or not all(map(pinyin.is_hanzi, word)):
        raise ValueError(f'{path}:{n}: a user word is two or more Chinese characters, '
                         f'optionally followed by its pinyin (e.g. "耶和华 ye he hua"); got '
                         f'{line[:40]!r}')
      entries.append((word, reading_text.strip()))
  return entries


@dataclasses.dataclass(frozen=True)
class Bigrams:
  """Word-pair counts: pairs['w1\tw2'] = how often w2 followed w1 in the counted text, and
  history[w1] = how often w1 was followed by any word (START: texts begun), counted before
  rare pairs were dropped, so that a dropped pair's mass goes to the unigram prior."""
  pairs: dict[str, int]
  history: dict[str, int]

  def lookup(self, prev: str, word: str) -> tuple[int, int]:
    """(count of `prev word`, count of `prev` followed by any word)."""
    return self.pairs.get(f'{prev}\t{word}', 0), self.history.get(prev, 0)


def count_bigrams(lm: 'WordLM', texts: Iterable[str], min_count: int = MIN_BIGRAM_COUNT
                  ) -> Bigrams:
  """Counts word pairs over `texts` segmented by `lm` (its best unigram segmentation, as
  `WordLM.score` segments a candidate). A character that is not CJK ends a run of words: a
  text's runs are counted as separate texts (punctuation, digits and Latin carry no pair)."""
  pairs: collections.Counter = collections.Counter()
  history: collections.Counter = collections.Counter()
  for text in texts:
    run = []
    for c in text + ' ':
      if pinyin.is_hanzi(c):
        run.append(c)
        continue
      if run:
        prev = START
        for w in lm.segment(''.join(run)):
          history[prev] += 1
          pairs[f'{prev}\t{w}'] += 1
          prev = w
        run = []
  return Bigrams({k: v for k, v in pairs.items() if v >= min_count}, dict(history))


def save_bigrams(path: str, bigrams: Bigrams) -> None:
  """'w1<TAB>w2<TAB>count' lines, then 'w1<TAB><TAB>count' lines for the history counts; sorted,
  gzip with a fixed mtime (the same bytes every time)."""
  lines = [f'{k}\t{c}\n' for k, c in sorted(bigrams.pairs.items())]
  lines += [f'{w}\t\t{c}\n' for w, c in sorted(bigrams.history.items())]
  with open(path, 'wb') as raw, gzip.GzipFile(filename='', fileobj=raw, mode='wb', mtime=0) as f:
    f.write(''.join(lines).encode('utf-8'))


def read_bigrams(path: str) -> Bigrams:
  """The Bigrams of a file `save_bigrams` wrote; ValueError on a malformed line."""
  pairs, history = {}, {}
  with gzip.open(path, 'rt', encoding='utf-8') as f:
    for n, line in enumerate(f, 1):
      parts = line.rstrip('\n').split('\t')
      if len(parts) != 3 or not parts[0] or not parts[2].isdigit():
        raise ValueError(f'{path}:{n}: expected "word<TAB>word<TAB>count", got {line[:40]!r}')
      if parts[1]:
        pairs[f'{parts[0]}\t{parts[1]}'] = int(parts[2])
      else:
        history[parts[0]] = int(parts[2])
  return Bigrams(pairs, history)


def load(path: str, bigrams_path: str | None = None) -> 'WordLM':
  return WordLM(*read(path), bigrams=read_bigrams(bigrams_path) if bigrams_path else None)


class WordLM:
  """Word model: `score(text)` = log-probability of the text's best unigram segmentation, under
  word bigrams when it has them; `paths(...)` = the best sentences of the (unigram) word
  lattice over a syllable sequence."""

  def __init__(self, counts: dict[str, int],
               readings: Optional[dict[str, Sequence[str]]] = None,
               bigrams: Optional[Bigrams] = None):
    if not counts:
      raise ValueError('a word list needs at least one word')
    total = float(sum(counts.values()))
    self._setup({w: math.log(c / total) for w, c in counts.items()},
                max(len(w) for w in counts), total, bigrams)
    self._counts: Optional[dict[str, int]] = counts
    self._readings: Optional[Mapping[str, Sequence[str]]] = readings or {}
    self._arrays: Optional[LexiconArrays] = None

  def _setup(self, logp: dict[str, float], max_word: int, total: float,
             bigrams) -> None:
    self.logp = logp
    self.max_word = max_word
    self.unknown = math.log(0.5 / total)  # A character that is no word: half a count.
    self.bigrams = bigrams  # Bigrams, BigramArrays or None.
    self.user_words: frozenset[str] = frozenset()  # See with_words.
    self.user_longest = 0  # Characters of the longest user word.
    self.bonus = 0.0
    self._singles_cache: dict[tuple[str, ...], list[tuple[float, str]]] = {}

  @classmethod
  def from_arrays(cls, arrays: 'LexiconArrays') -> 'WordLM':
    """The word model of a bundle's lexicon.npz (`read_arrays`): its log-probabilities and
    lattice edges (`by_reading`, indexed at export) ready at once; the counts and readings,
    which only a new word list (user words, adapt, release) needs, built on first use."""
    lm = cls.__new__(cls)
    counts = arrays.counts.tolist()
    total = float(sum(counts))
    # As WordLM.__init__ computes them, so that the scores are the same to the last bit; one
    # float object per distinct count (most words share theirs: 10 MB less, and fewer logs).
    logs = {c: math.log(c / total) for c in set(counts)}
    lm._setup(dict(zip(arrays.words[:len(counts)], map(logs.__getitem__, counts))),
              arrays.max_word, total, arrays.bigrams())
    lm._counts = lm._readings = None
    lm._arrays = arrays
    # cached_property's slots, filled from the index written at export.
    lm.__dict__['by_reading'] = arrays.reading_index(lm.logp)
    lm.__dict__['max_reading'] = arrays.max_reading
    return lm

  @property
  def counts(self) -> dict[str, int]:
    if self._counts is None:
      self._counts = self._arrays.count_dict()
    return self._counts

  @property
  def readings(self) -> Mapping[str, Sequence[str]]:
    """word -> its syllables (only words that have a reading)."""
    if self._readings is None:
      self._readings = self._arrays.reading_dict()
    return self._readings

  def with_words(self, readings: dict[str, Sequence[str]], bonus: float = USER_BONUS
                 ) -> 'WordLM':
    """A copy that also knows a user's words (word -> its syllables), each counted as often as
    the list's most frequent word, so that they come first among the words of their reading
    (paths, edits), and that adds `bonus` nats per character of a user word to `user_bonus`."""
    top = max(self.counts.values())
    counts = dict(self.counts)
    counts.update({w: max(top, counts.get(w, 0)) for w in readings})
    lm = WordLM(counts, {**self.readings, **{w: tuple(r) for w, r in readings.items()}},
                self.bigrams)
    lm.user_words = self.user_words | frozenset(readings)
    lm.user_longest = max(map(len, lm.user_words), default=0)
    lm.bonus = float(bonus)
    return lm

  def user_bonus(self, text: str) -> float:
    """bonus x the characters of `text` covered by user words (longest match first, no
    overlaps); 0 without user words."""
    if not self.user_words:
      return 0.0
    covered, i = 0, 0
    while i < len(text):
      for j in range(min(len(text), i + self.user_longest), i + 1, -1):
        if text[i:j] in self.user_words:
          covered += j - i
          i = j
          break
      else:
        i += 1
    return self.bonus * covered

  @functools.cached_property
  def by_reading(self) -> dict[tuple[str, ...], list[tuple[float, str]]]:
    """reading (tuple of syllables) -> [(log p, word)], best first: the lattice's word edges.

    Built on first use (~0.9 s for jieba's list), so that a converter which never asks for
    paths does not pay for it at start-up."""
    by_reading: dict[tuple[str, ...], list] = {}
    for w, keys in self.readings.items():
      if len(w) >= 2 and len(keys) == len(w) and w in self.logp:
        by_reading.setdefault(tuple(keys), []).append((self.logp[w], w))
    return {k: sorted(v, reverse=True)[:WORDS_PER_READING] for k, v in by_reading.items()}

  @functools.cached_property
  def max_reading(self) -> int:
    return max((len(k) for k in self.by_reading), default=0)

  @property
  def has_readings(self) -> bool:
    return bool(self.by_reading)

  def __len__(self) -> int:
    return len(self.logp)

  @functools.cached_property
  def _long_heads(self) -> frozenset[str]:
    """The first SHORT_WORD characters of every longer word: a span that starts with none of
    them is no word of more than SHORT_WORD characters, so the segmentation stops looking."""
    return frozenset(w[:SHORT_WORD] for w in self.logp if len(w) > SHORT_WORD)

  def _segmentation(self, text: str, shared: Optional[tuple[list, list]] = None,
                    keep: int = 0) -> tuple[list[float], list[int]]:
    """(best, start): best[j] the unigram log-probability of text[:j]'s best segmentation,
    start[j] where its last word begins. A dynamic programme over word ends (jieba's): a
    character that is no word of the list costs `unknown`.

    shared: the tables of another text with the same first `keep` characters; their entries up
    to `keep` hold for this text too (they depend on text[:keep] only), so only the words that
    end after `keep` are looked up, in the order a full pass would (the same floats)."""
    n = len(text)
    best = [0.0] + [-math.inf] * n
    start = [0] * (n + 1)
    first = 0
    if shared is not None and not 0 <= keep <= min(n, len(shared[0]) - 1):
      raise ValueError(f'keep={keep} is beyond the text ({n}) or the shared tables '
                       f'({len(shared[0]) - 1})')
    if shared is not None and keep > 0:
      best[:keep + 1], start[:keep + 1] = shared[0][:keep + 1], shared[1][:keep + 1]
      first = max(0, keep + 1 - self.max_word)
    get, heads, unknown = self.logp.get, self._long_heads, self.unknown
    for i in range(first, n):
      here = best[i]
      if here == -math.inf:
        continue
      last = min(n, i + self.max_word)
      if last > i + SHORT_WORD and text[i:i + SHORT_WORD] not in heads:
        last = i + SHORT_WORD
      for j in range(max(i + 1, keep + 1), last + 1):
        s = get(text[i:j])
        if s is None:
          if j > i + 1:
            continue
          s = unknown
        if here + s > best[j]:
          best[j] = here + s
          start[j] = i
    return best, start

  def segment(self, text: str) -> list[str]:
    """The words of text's best unigram segmentation."""
    return self._words(text, self._segmentation(text)[1])

  @staticmethod
  def _words(text: str, start: list[int]) -> list[str]:
    words, j = [], len(text)
    while j > 0:
      words.append(text[start[j]:j])
      j = start[j]
    return words[::-1]

  def score(self, text: str, shared: Optional[tuple[list, list]] = None, keep: int = 0
            ) -> float:
    """log p(text): its best unigram segmentation's; with bigrams, that segmentation's words
    under p(w | prev) = (count(prev w) + BIGRAM_PRIOR p(w)) / (count(prev) + BIGRAM_PRIOR),
    which is the unigram probability after a word the counted text never had as a history.
    shared, keep: as for `_segmentation` (the same score, found faster)."""
    best, start = self._segmentation(text, shared, keep)
    if self.bigrams is None:
      return best[len(text)]
    lookup = self.bigrams.lookup
    total, prev = 0.0, START
    for w in self._words(text, start):
      p = math.exp(self.logp.get(w, self.unknown))
      pair, seen = lookup(prev, w)
      total += math.log((pair + BIGRAM_PRIOR * p) / (seen + BIGRAM_PRIOR))
      prev = w
    return total

  def rerank(self, candidates: list[tuple[str, float]], weight: float
             ) -> list[tuple[str, float]]:
    """(text, model log-prob) pairs -> (text, model + weight * word log-prob + user_bonus),
    best first."""
    scored = [(t, s + (weight * self.score(t) if weight else 0.0) + self.user_bonus(t))
              for t, s in candidates]
    return sorted(scored, key=lambda c: -c[1])

  def paths(self, keys: Sequence[Optional[str]], options: Sequence[Sequence[str]], k: int
            ) -> list[str]:
    """The k best sentences (best first) of the word lattice over one input.

    keys[i]: the toneless syllable of position i, or None where the position is not a full
      syllable (punctuation, a digit, an abbreviation): no word spans it.
    options[i]: the characters position i may be written as (the decoder's constraint set);
      every path keeps to them. A word edge covers syllables i..j-1 whose reading is the word's;
      a single-character edge is one of the WORDS_PER_READING likeliest of options[i].
    """
    n = len(keys)
    allowed = [frozenset(o) for o in options]
    singles = [self._singles(o) for o in options]
    best: list[list[tuple[float, str]]] = [[(0.0, '')]] + [[] for _ in range(n)]
    for j in range(1, n + 1):
      found: dict[str, float] = {}
      for i in range(max(0, j - max(1, self.max_reading)), j):
        if not best[i]:
          continue
        if j - i == 1:
          edges = singles[i]
        elif None in keys[i:j]:
          continue
        else:
          edges = self._span_words(keys, allowed, i, j)
        for s, w in edges:
          for prefix_score, prefix in best[i]:
            text, total = prefix + w, prefix_score + s
            if total > found.get(text, -math.inf):
              found[text] = total
      best[j] = heapq.nlargest(k, ((v, t) for t, v in found.items()))
    return [t for _, t in best[n]]

  def _singles(self, option: Sequence[str]) -> list[tuple[float, str]]:
    """[(log p, character)] of the WORDS_PER_READING likeliest of `option`, best first: a
    position's single-character edges. The same few hundred candidate lists (one per syllable)
    come back line after line, so each is sorted once (~1 ms a line otherwise)."""
    key = tuple(option)
    found = self._singles_cache.get(key)
    if found is None:
      if len(self._singles_cache) >= MAX_CACHED_OPTIONS:
        self._singles_cache.clear()
      found = self._singles_cache[key] = sorted(
          ((self.logp.get(c, self.unknown), c) for c in option), reverse=True)[:WORDS_PER_READING]
    return found

  def _span_words(self, keys, allowed, i: int, j: int) -> list[tuple[float, str]]:
    """[(log p, word)], best first: the words read as syllables keys[i:j] whose characters
    the decoder allows at their positions (allowed[i], ...): the lattice's edges over a span."""
    return [(s, w) for s, w in self.by_reading.get(tuple(keys[i:j]), ())
            if all(c in allowed[i + t] for t, c in enumerate(w))]

  def edits(self, keys: Sequence[Optional[str]], options: Sequence[Sequence[str]], text: str,
            k: int) -> list[str]:
    """The k rewrites of `text` that most raise its word score, best first.

    A rewrite replaces the characters of one span of two or more syllables (keys as for
    `paths`) by one of the WORDS_PER_EDIT likeliest lexicon words with that reading, keeping to
    `options`; the rest of the text stays as it is.
    """
    n = len(keys)
    allowed = [frozenset(o) for o in options]
    tables = self._segmentation(text)  # Shared by every rewrite up to where it starts.
    base = self.score(text, tables, n)  # The text's own score from them, not a second pass.
    gain: dict[str, float] = {}
    for i in range(n):
      for j in range(i + 2, min(n, i + self.max_reading) + 1):
        if None in keys[i:j]:
          continue
        for _, w in self._span_words(keys, allowed, i, j)[:WORDS_PER_EDIT]:
          new = text[:i] + w + text[j:]
          if w != text[i:j] and new not in gain:
            gain[new] = self.score(new, tables, i) - base
    return heapq.nlargest(k, gain, key=gain.__getitem__)


# --- The bundle's compact form: arrays written at export ---------------------------------------
# Parsing the TSV files and indexing the readings took ~6 s at every start (418K words, 745K
# pairs); lexicon.npz holds the same counts, readings, bigrams and the readings' lattice index
# as arrays and newline-joined UTF-8 text, read in ~0.3 s. It is a zip of .npy members written
# with fixed dates (the same bytes every time) and read with allow_pickle=False: it holds no
# code. The bundle checksums it like every other file.

ARRAYS_FILENAME = 'lexicon.npz'
# Members: words (utf-8, '\n'-joined: the list's words sorted, then the words only the bigrams
#   have: START and characters no word of the list); counts [n] (n = the list's words);
#   readings (utf-8, '\n'-joined, one per list word, '' for none); max_word, max_reading [];
#   reading_keys (utf-8 '\n'-joined, sorted: each lattice reading's syllables space-joined),
#   reading_starts [k+1],
#   reading_words (list word ids, best first: by_reading); with bigrams: history_words [h]
#   (word ids with a history, ascending), history_counts [h], pair_starts [h+1], pair_words,
#   pair_counts (the followers of history word i are pair_*[pair_starts[i]:pair_starts[i+1]]).
_REQUIRED = ('words', 'counts', 'readings', 'max_word', 'max_reading', 'reading_keys',
             'reading_starts', 'reading_words')
_BIGRAM_MEMBERS = ('history_words', 'history_counts', 'pair_starts', 'pair_words',
                   'pair_counts')
# Followers' dicts of the history words a BigramArrays keeps (the rest are rebuilt when met):
# bounds a long-lived server's memory; ~1,000 words cover a day of typing.
MAX_CACHED_HISTORIES = 4096
MAX_CACHED_READINGS = 1 << 16  # Likewise the lattice's entries (ReadingIndex), hits and misses.
# Sorted candidate lists WordLM._singles keeps: one per syllable and tone typed (~2,000 at most).
MAX_CACHED_OPTIONS = 4096


def _text_array(items: Sequence[str]) -> np.ndarray:
  return np.frombuffer('\n'.join(items).encode('utf-8'), np.uint8)


def _text_items(array: np.ndarray) -> list[str]:
  return array.tobytes().decode('utf-8').split('\n')


def _ids(values, top: int) -> np.ndarray:
  """values as the smallest unsigned dtype that holds 0..top (the file stays small)."""
  dtype = np.uint16 if top < 2**16 else np.uint32 if top < 2**32 else np.uint64
  return np.asarray(values, dtype)


def save_arrays(path: str, counts: dict[str, int], readings: Mapping[str, Sequence[str]],
                bigrams: Optional[Bigrams] = None) -> None:
  """Writes a word list (its words, counts, readings and, if given, bigrams) as lexicon.npz.
  ValueError for a word with a line break or a tab (no word has one)."""
  words = sorted(counts)
  extra = set()
  if bigrams is not None:
    for key in bigrams.pairs:
      extra.update(key.split('\t'))
    extra.update(bigrams.history)
    extra.difference_update(counts)
  vocab = words + sorted(extra)
  bad = next((w for w in vocab if '\n' in w or '\t' in w or not w), None)
  if bad is not None:
    raise ValueError(f'word {bad!r}: a word cannot be empty or hold a tab or line break')
  index = {w: i for i, w in enumerate(vocab)}
  by_reading = WordLM(counts, readings).by_reading
  keys = sorted(by_reading, key=' '.join)  # As the reader bisects them.
  reading_words = [index[w] for k in keys for _, w in by_reading[k]]
  arrays = {
      'words': _text_array(vocab),
      'counts': _ids([counts[w] for w in words], max(counts.values())),
      'readings': _text_array([' '.join(readings.get(w, ())) for w in words]),
      'max_word': np.asarray(max(map(len, words)), np.int64),
      'max_reading': np.asarray(max(map(len, keys), default=0), np.int64),
      'reading_keys': _text_array([' '.join(k) for k in keys]),
      'reading_starts': _ids(np.cumsum([0] + [len(by_reading[k]) for k in keys]),
                             len(reading_words)),
      'reading_words': _ids(reading_words, len(vocab)),
  }
  if bigrams is not None:
    followers: dict[int, list[tuple[int, int]]] = {}
    for key, c in bigrams.pairs.items():
      prev, word = key.split('\t')
      followers.setdefault(index[prev], []).append((index[word], c))
    history = sorted(set(followers) | {index[w] for w in bigrams.history})
    rows = [sorted(followers.get(h, ())) for h in history]
    arrays.update({
        'history_words': _ids(history, len(vocab)),
        'history_counts': _ids([bigrams.history.get(vocab[h], 0) for h in history],
                               max(bigrams.history.values(), default=0)),
        'pair_starts': _ids(np.cumsum([0] + [len(r) for r in rows]), len(bigrams.pairs)),
        'pair_words': _ids([w for r in rows for w, _ in r], len(vocab)),
        'pair_counts': _ids([c for r in rows for _, c in r],
                            max(bigrams.pairs.values(), default=0)),
    })
  with zipfile.ZipFile(path, 'w') as z:
    for name, value in arrays.items():
      data = io.BytesIO()
      np.lib.format.write_array(data, value, allow_pickle=False)
      z.writestr(zipfile.ZipInfo(f'{name}.npy', date_time=(1980, 1, 1, 0, 0, 0)),
                 data.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


class LexiconArrays:
  """The arrays of a lexicon.npz (`read_arrays`), checked, and what WordLM builds from them."""

  def __init__(self, path: str, arrays: dict[str, np.ndarray]):
    self.path = path
    self.words = _text_items(arrays['words'])
    self.counts = arrays['counts']
    n, top = len(self.counts), len(self.words)
    self.max_word, self.max_reading = int(arrays['max_word']), int(arrays['max_reading'])
    self._reading_keys = _Lines(arrays['reading_keys'])
    self._reading_starts = arrays['reading_starts']
    self._reading_words = arrays['reading_words']
    self._bigrams = {k: arrays[k] for k in _BIGRAM_MEMBERS if k in arrays}
    problems = []
    if not 0 < n <= top or self.counts.ndim != 1:
      problems.append(f'{n} counts for {top} words')
    elif not (self.counts > 0).all():
      problems.append('a count is not positive')
    if self.max_word < 1 or self.max_reading < 0:
      problems.append('bad max_word or max_reading')
    problems += _check_ranges('reading', self._reading_starts, len(self._reading_keys),
                              self._reading_words, n)
    if self._bigrams:
      if len(self._bigrams) != len(_BIGRAM_MEMBERS):
        problems.append(f'only {sorted(self._bigrams)} of the bigram arrays')
      else:
        b = self._bigrams
        h = b['history_words']
        problems += _check_ranges('pair', b['pair_starts'], len(h), b['pair_words'], top)
        if b['history_counts'].shape != h.shape or (h.size and int(h.max()) >= top):
          problems.append('history arrays out of range')
        if b['pair_counts'].shape != b['pair_words'].shape:
          problems.append('pair_counts and pair_words differ in length')
    if problems:
      raise ValueError(f'{path}: {"; ".join(problems)}')

  def count_dict(self) -> dict[str, int]:
    return dict(zip(self.words, self.counts.tolist()))

  def reading_dict(self) -> dict[str, tuple[str, ...]]:
    """word -> syllables, read from the file now (only a new word list needs them: 5 MB
    that a converter need not hold)."""
    try:
      with np.load(self.path, allow_pickle=False) as z:
        texts = _text_items(z['readings'])
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError) as e:
      raise ValueError(f'{self.path}: its readings are unreadable ({e})') from e
    if len(texts) != len(self.counts):
      raise ValueError(f'{self.path}: {len(texts)} readings for {len(self.counts)} words')
    return {w: tuple(r.split(' ')) for w, r in zip(self.words, texts) if r}

  def reading_index(self, logp: dict[str, float]) -> 'ReadingIndex':
    return ReadingIndex(self._reading_keys, self._reading_starts, self._reading_words,
                        self.words, logp)

  def bigrams(self) -> Optional['BigramArrays']:
    if not self._bigrams:
      return None
    return BigramArrays(self.words, len(self.counts), **self._bigrams)


class _Lines(collections.abc.Sequence):
  """The lines of '\n'-joined UTF-8 text as bytes, each cut out when asked for: bisecting
  288K sorted readings this way holds 5 MB, a list of them as str ~25 MB."""

  def __init__(self, array: np.ndarray):
    self._blob = array.tobytes()
    # Line i is blob[starts[i]:starts[i + 1] - 1] (a line break ends each, one past the last).
    self._starts = (np.concatenate(([0], np.flatnonzero(array == ord('\n')) + 1,
                                    [len(self._blob) + 1])).astype(np.int64)
                    if self._blob else np.zeros(1, np.int64))

  def __len__(self) -> int:
    return len(self._starts) - 1

  def __getitem__(self, i):
    if not 0 <= i < len(self._starts) - 1:
      raise IndexError(i)
    return self._blob[self._starts[i]:self._starts[i + 1] - 1]

  def __iter__(self):
    return iter(self._blob.split(b'\n') if self._blob else ())


def _check_ranges(what: str, starts: np.ndarray, rows: int, ids: np.ndarray, top: int
                  ) -> list[str]:
  """What is wrong with a CSR-style index (rows' slices of `ids`, each id < top)."""
  if (starts.ndim != 1 or len(starts) != rows + 1 or int(starts[0]) != 0
      or int(starts[-1]) != len(ids) or (np.diff(starts.astype(np.int64)) < 0).any()):
    return [f'{what}_starts does not index {rows} rows of {len(ids)} {what}_words']
  if ids.size and int(ids.max()) >= top:
    return [f'{what}_words has an id past the {top} words']
  return []


def read_arrays(path: str) -> WordLM:
  """The WordLM of a lexicon.npz `save_arrays` wrote; ValueError if it is not one."""
  try:
    with np.load(path, allow_pickle=False) as z:
      missing = [k for k in _REQUIRED if k not in z.files]
      if missing:
        raise ValueError(f'{path} lacks {missing}')
      arrays = {k: z[k] for k in z.files if k != 'readings'}  # Read on demand.
  except (zipfile.BadZipFile, zlib.error, EOFError, KeyError) as e:
    raise ValueError(f'{path} is not a readable .npz ({type(e).__name__}: {e})') from e
  for name, value in arrays.items():
    if value.dtype.kind not in 'ui':
      raise ValueError(f'{path}: {name} is {value.dtype}, not integers')
  try:
    return WordLM.from_arrays(LexiconArrays(path, arrays))
  except UnicodeDecodeError as e:
    raise ValueError(f'{path}: a text member is not UTF-8 ({e})') from e


class ReadingIndex(collections.abc.Mapping):
  """WordLM.by_reading over the arrays of a lexicon.npz: reading (tuple of syllables) ->
  [(log p, word)], best first. A reading is found by bisecting the sorted keys (~5 µs) and its
  entry built when first asked for: no dict of the ~300K readings at start-up."""

  def __init__(self, keys: _Lines, starts: np.ndarray, ids: np.ndarray, words: list[str],
               logp: dict[str, float]):
    self._keys, self._starts, self._ids, self._words, self._logp = keys, starts, ids, words, logp
    self._built: dict[tuple[str, ...], list[tuple[float, str]] | None] = {}

  def get(self, key, default=None):
    found = self._built.get(key, ())
    if found == ():
      found = self._find(key)
      if len(self._built) >= MAX_CACHED_READINGS:
        self._built.clear()
      self._built[key] = found
    return default if found is None else found

  def _find(self, key) -> list[tuple[float, str]] | None:
    text = ' '.join(key).encode('utf-8')
    row = bisect.bisect_left(self._keys, text)
    if row == len(self._keys) or self._keys[row] != text:
      return None
    words, logp = self._words, self._logp
    return [(logp[words[i]], words[i])
            for i in self._ids[self._starts[row]:self._starts[row + 1]].tolist()]

  def __getitem__(self, key):
    found = self.get(key)
    if found is None:
      raise KeyError(key)
    return found

  def __iter__(self):
    return (tuple(k.decode('utf-8').split(' ')) for k in self._keys)

  def __len__(self) -> int:
    return len(self._keys)


class BigramArrays:
  """Word-pair counts as a lexicon.npz holds them (see `Bigrams`): the followers of a history
  word become a dict when first looked up, so that start-up builds none of the 745K pairs.

  words: the file's words, the list's sorted, then the bigram-only ones sorted (n_list: how
  many are the list's), so that a word's id is found by bisection."""

  def __init__(self, words: list[str], n_list: int, history_words, history_counts,
               pair_starts, pair_words, pair_counts):
    self._words, self._n_list = words, n_list
    self._history_words = history_words
    self._history_counts, self._pair_starts = history_counts, pair_starts
    self._pair_words, self._pair_counts = pair_words, pair_counts
    self._followers: dict[str, tuple[int, dict[str, int]]] = {}

  def lookup(self, prev: str, word: str) -> tuple[int, int]:
    """(count of `prev word`, count of `prev` followed by any word)."""
    entry = self._followers.get(prev)
    if entry is None:
      entry = self._load(prev)
    return entry[1].get(word, 0), entry[0]

  def _row(self, word: str) -> int | None:
    """The history row of `word`, None if it has none."""
    words = self._words
    for lo, hi in ((0, self._n_list), (self._n_list, len(words))):
      i = bisect.bisect_left(words, word, lo, hi)
      if i < hi and words[i] == word:
        row = int(np.searchsorted(self._history_words, i))
        if row < len(self._history_words) and int(self._history_words[row]) == i:
          return row
        return None
    return None

  def _load(self, prev: str) -> tuple[int, dict[str, int]]:
    row = self._row(prev)
    if row is None:
      entry = (0, {})
    else:
      a, b = int(self._pair_starts[row]), int(self._pair_starts[row + 1])
      words = self._words
      entry = (int(self._history_counts[row]),
               dict(zip([words[i] for i in self._pair_words[a:b].tolist()],
                        self._pair_counts[a:b].tolist())))
    if len(self._followers) >= MAX_CACHED_HISTORIES:
      self._followers.clear()
    self._followers[prev] = entry
    return entry

  @functools.cached_property
  def pairs(self) -> dict[str, int]:
    """Every pair as Bigrams.pairs has it ('w1\\tw2' -> count); slow, for re-exports."""
    out, words = {}, self._words
    starts = self._pair_starts.tolist()
    followers, counts = self._pair_words.tolist(), self._pair_counts.tolist()
    for row, prev in enumerate(self._history_words.tolist()):
      for j in range(starts[row], starts[row + 1]):
        out[f'{words[prev]}\t{words[followers[j]]}'] = counts[j]
    return out

  @functools.cached_property
  def history(self) -> dict[str, int]:
    return {self._words[i]: c for i, c in zip(self._history_words.tolist(),
                                               self._history_counts.tolist()) if c}

  def as_bigrams(self) -> Bigrams:
    return Bigrams(self.pairs, self.history)

  def __eq__(self, other) -> bool:
    if isinstance(other, (Bigrams, BigramArrays)):
      return self.pairs == other.pairs and self.history == other.history
    return NotImplemented

  __hash__ = None



# --- The converter's side: user words, proposals, the bundle's files -------------------------

class UserWordError(ValueError):
  """A user word the converter cannot use (not writable by the model, or a wrong reading)."""


def user_word_readings(user_words, hanzi_index: dict[str, int],
                       ids_for_key: Callable[[str], Sequence[int]]) -> dict[str, list[str]]:
  """word -> its syllables for a user's words, each checked against the model.

  user_words: a word file's path (`read_user_words`) or an iterable of words or (word, pinyin)
    pairs; a word without pinyin is read by pypinyin (`reading`).
  hanzi_index: the model's character vocabulary (character -> id); ids_for_key(syllable): the
    ids the decoder may write for a syllable. UserWordError names the first unusable word.
  """
  entries = (read_user_words(user_words) if isinstance(user_words, str) else
             [(w, '') if isinstance(w, str) else tuple(w) for w in user_words])
  readings = {}
  for word, typed in entries:
    if len(word) < 2:
      raise UserWordError(f'user word {word!r}: give words of two or more characters')
    unknown = [c for c in word if c not in hanzi_index]
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
      keys = reading(word).split()
    if len(keys) != len(word):
      raise UserWordError(f'user word {word!r}: its pinyin {typed or " ".join(keys)!r} is not '
                          f'{len(word)} syllables; give it after the word, e.g. '
                          f'"{word} {" ".join(["pin"] * len(word))}"')
    for c, key in zip(word, keys):
      if hanzi_index[c] not in ids_for_key(key):
        raise UserWordError(f'user word {word!r}: {c!r} is not read {key!r} in the model\'s '
                            'reading table (pypinyin); give the reading it has there')
    readings[word] = keys
  return readings


def with_user_words(lm: Optional['WordLM'], user_words, hanzi_index: dict[str, int],
                    ids_for_key: Callable[[str], Sequence[int]], bonus: float
                    ) -> Optional['WordLM']:
  """`lm` with a user's words joined (`WordLM.with_words`, `bonus` nats per character), or a
  list of only those when lm is empty or None; user_word_readings checks each word."""
  readings = user_word_readings(user_words, hanzi_index, ids_for_key)
  if not readings:
    return lm
  return (lm or WordLM({w: 1 for w in readings})).with_words(readings, bonus)


NO_WORD = '\ufffd'  # A lattice position no word may span.


def lattice_inputs(tokens: Sequence[pinyin.Token], rows: Sequence[Sequence[int]],
                   hanzi_tokens: Sequence[str]) -> tuple[list[Optional[str]], list[list[str]]]:
  """(keys, options) of `WordLM.paths` for one input: its tokens and the decoder's constraint
  rows (hanzi ids per position). A position no word may span (not a full syllable, or no
  character but UNK) has key None and the one option NO_WORD."""
  keys, options = [], []
  for tok, row in zip(tokens, rows):
    chars = [c for c in map(hanzi_tokens.__getitem__, row) if len(c) == 1]
    syllable = tok.kind == pinyin.SYLLABLE and chars
    keys.append(tok.key if syllable else None)
    options.append(chars if syllable else [NO_WORD])
  return keys, options


def propose(lm: 'WordLM', keys: Sequence[Optional[str]], options: Sequence[Sequence[str]],
            best: Optional[str], paths: int, edits: int) -> list[str]:
  """The word list's own candidates for one input (one character per position): its `paths`
  best lattice sentences, then its `edits` best one-word rewrites of `best` (the beam's best,
  spelled with NO_WORD where keys is None; None for no rewrites)."""
  if not any(keys):
    return []
  texts = lm.paths(keys, options, paths) if paths else []
  if edits and best is not None:
    texts += lm.edits(keys, options, best, edits)
  return texts


def lattice_paths(lm: 'WordLM', pieces: Sequence[Sequence[pinyin.Token]],
                  rows: Sequence[Sequence[Sequence[int]]], hanzi_tokens: Sequence[str],
                  paths: int) -> list[tuple[list, list, list[str]]]:
  """(keys, options, the `paths` best lattice sentences) of each input of a batch (its tokens
  and constraint rows): what `propose` gives before the beam's best is known, so the converter
  finds them while the device decodes."""
  out = []
  for toks, row in zip(pieces, rows):
    keys, options = lattice_inputs(toks, row, hanzi_tokens)
    out.append((keys, options, propose(lm, keys, options, None, paths, 0)))
  return out


def unseen_proposals(lm: 'WordLM', rows: Sequence[Sequence[Sequence[int]]],
                     found: Sequence[Mapping[tuple, float]],
                     lattices: Sequence[tuple[list, list, list[str]]],
                     hanzi_tokens: Sequence[str], hanzi_index: Mapping[str, int],
                     edits: int) -> list[list[tuple[int, ...]]]:
  """Per input, the word list's candidates as hanzi ids that its beam did not find: the
  lattice's sentences (`lattices`, from lattice_paths), then the `edits` best rewrites of the
  beam's best (the first of `found`, {ids: score}). A position no word may span keeps its
  constraint row's first id."""
  extra = []
  for row, hyps, (keys, options, paths) in zip(rows, found, lattices):
    best = next(iter(hyps), None)
    chars = [] if best is None else [hanzi_tokens[int(i)] if key else NO_WORD
                                     for i, key in zip(best, keys)]
    spelled = ''.join(chars) if chars and all(len(c) == 1 for c in chars) else None
    new = []
    for text in paths + propose(lm, keys, options, spelled, 0, edits):
      ids = tuple(hanzi_index[c] if key else r[0] for c, key, r in zip(text, keys, row))
      if ids not in hyps and ids not in new:
        new.append(ids)
    extra.append(new)
  return extra


class BundleLexicon:
  """The word list and its bigrams as a bundle extension (bundle.export_bundle): it writes
  ARRAYS_FILENAME (section version 2) and reads that or, from bundles written before it,
  FILENAME and BIGRAMS_FILENAME (version 1, parsed: seconds).

  readings: word -> syllables, as a loaded list has them (kept as they are: a re-export gives
  the same lattice); None works them out with pypinyin (`reading`, ~10 s for jieba's list)."""
  name = 'lexicon'
  VERSION = 2  # The section's "version"; absent means 1.

  def __init__(self, counts: dict[str, int], bigrams=None,
               readings: Optional[Mapping[str, Sequence[str]]] = None):
    self.counts, self.readings = counts, readings
    self.bigrams = bigrams.as_bigrams() if isinstance(bigrams, BigramArrays) else bigrams

  def write(self, directory: str) -> tuple[list[str], dict]:
    readings = self.readings
    if readings is None:
      readings = {w: tuple(r.split()) for w in self.counts for r in [reading(w)] if r}
    save_arrays(os.path.join(directory, ARRAYS_FILENAME), self.counts, readings, self.bigrams)
    section = {'version': self.VERSION, 'words': len(self.counts)}
    if self.bigrams is not None:
      section['bigrams'] = len(self.bigrams.pairs)
    return [ARRAYS_FILENAME], section

  @staticmethod
  def files(section: dict) -> list[str]:
    """The files a section reads (each must have a checksum in the bundle)."""
    version = section.get('version', 1)
    if version == 1:
      return [FILENAME] + ([BIGRAMS_FILENAME] if 'bigrams' in section else [])
    if version == BundleLexicon.VERSION:
      return [ARRAYS_FILENAME]
    raise ValueError(f'lexicon version {version!r} is not one this version of pyhanzi reads '
                     f'(1 or {BundleLexicon.VERSION}); export the bundle with it again')

  @staticmethod
  def read(directory: str, section: dict) -> 'WordLM':
    paths = [os.path.join(directory, f) for f in BundleLexicon.files(section)]
    try:
      if section.get('version', 1) == 1:
        return load(*paths)
      return read_arrays(*paths)
    except (OSError, ValueError, EOFError) as e:
      raise ValueError(f'the word list ({", ".join(paths)}) is unreadable: {e}') from e


__all__ = ['WordLM', 'Bigrams', 'count_bigrams', 'save_bigrams', 'read_bigrams',
           'BIGRAMS_FILENAME', 'MIN_BIGRAM_COUNT', 'BIGRAM_PRIOR', 'START', 'JIEBA', 'WORDFREQ',
           'SOURCES', 'DEFAULT_WEIGHT', 'DEFAULT_PATHS', 'DEFAULT_EDITS', 'FILENAME',
           'word_counts', 'parse_cbpack', 'mix', 'source_counts', 'reading', 'save', 'read',
           'load', 'read_counts', 'read_user_words', 'USER_BONUS', 'UserWordError',
           'user_word_readings', 'lattice_inputs', 'propose', 'NO_WORD', 'BundleLexicon',
           'ARRAYS_FILENAME', 'save_arrays', 'read_arrays', 'LexiconArrays', 'ReadingIndex',
           'BigramArrays']
