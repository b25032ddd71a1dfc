"""The word list learns a user's text: its words, word pairs and new terms join the base list.

The converter re-ranks with the bundle's word list (lexicon.py): unigram counts, word bigrams and
readings. A user's text changes all three:
- terms (`find_terms`): strings of 2 to MAX_TERM_CHARS characters that the list lacks, seen at
  least MIN_TERM_COUNT times, that hold together (every split of the term is at least
  MIN_COHESION times likelier together than apart: count(ab) N / (count(a) count(b))) and occur
  in varied contexts on each side (the entropy of the character before it, and of the one after
  it, at least MIN_CONTEXT_BITS; a run's edge counts as a new context each time), so that 和华
  of 耶和华, or 非利 of 非利士, is no term; their reading is the one the text's own pairs give
  them most often;
- unigrams (`adapt_word_list`): the text is segmented by the list (the terms included) and each
  word's probability becomes (1 - TEXT_SHARE) x the list's + TEXT_SHARE x the text's;
- bigrams: the word pairs of the text, counted as the list segments it (lexicon.count_bigrams,
  pairs seen at least lexicon.MIN_BIGRAM_COUNT times), are added to the base list's scaled so
  that the text weighs TEXT_SHARE of the total history; a list without bigrams gets the text's.
Only the adaptation split is counted, never the held-out sentences the report measures on.
"""
from __future__ import annotations

import collections
import dataclasses
import gzip
import math
import os
from typing import Iterable, Iterator, Sequence

from pyhanzi_jax import lexicon as lexicon_lib
from pyhanzi_jax import pinyin
from pyhanzi_jax.data import prepare

TEXT_SHARE = 0.2      # The text's share of the adapted list's word probabilities and bigrams.
MIN_TERM_COUNT = 3
MAX_TERM_CHARS = 6
MIN_COHESION = 50.0
MIN_CONTEXT_BITS = 1.0
MAX_TERMS = 1000      # Most new words added, most frequent first.


@dataclasses.dataclass(frozen=True)
class Term:
  word: str
  count: int          # Occurrences in the counted text.
  reading: tuple[str, ...]


def hanzi_runs(pair: prepare.Pair) -> Iterator[tuple[str, list[str]]]:
  """(characters, keys) of each run of CJK characters in a pair; punctuation, digits end one."""
  chars, keys = [], []
  for ch, key in zip(pair.hanzi, pair.keys.split(' ')):
    if pinyin.is_hanzi(ch):
      chars.append(ch)
      keys.append(key)
    elif chars:
      yield ''.join(chars), keys
      chars, keys = [], []
  if chars:
    yield ''.join(chars), keys


def _ngram_counts(runs: Sequence[str], max_chars: int, min_count: int) -> collections.Counter:
  """Counts of every 1-gram, and of the n-grams (n <= max_chars) whose two (n-1)-grams were seen
  min_count times (a rarer piece cannot make a frequent whole): memory stays near the text's."""
  counts = collections.Counter(ch for run in runs for ch in run)
  for n in range(2, max_chars + 1):
    level = collections.Counter()
    for run in runs:
      for i in range(len(run) - n + 1):
        gram = run[i:i + n]
        if counts[gram[:-1]] >= min_count and counts[gram[1:]] >= min_count:
          level[gram] += 1
    if not level:
      break
    counts.update(level)
  return counts


def _entropy(counts: collections.Counter) -> float:
  """Bits of the distribution `counts` holds."""
  total = sum(counts.values())
  return -sum(c / total * math.log2(c / total) for c in counts.values())


def find_terms(pairs: Iterable[prepare.Pair], known: dict[str, int] | frozenset[str],
               min_count: int = MIN_TERM_COUNT, max_chars: int = MAX_TERM_CHARS,
               min_cohesion: float = MIN_COHESION, min_context_bits: float = MIN_CONTEXT_BITS,
               limit: int = MAX_TERMS) -> list[Term]:
  """The text's frequent strings that are not words of `known` (module docstring), most
  frequent first."""
  runs_with_keys = [r for p in pairs for r in hanzi_runs(p)]
  runs = [r for r, _ in runs_with_keys]
  counts = _ngram_counts(runs, max_chars, min_count)
  total = sum(len(r) for r in runs)

  def cohesive(w: str) -> bool:
    return all(counts[w] * total >= min_cohesion * counts[w[:i]] * counts[w[i:]]
               for i in range(1, len(w)))

  candidates = {w for w, c in counts.items()
                if len(w) >= 2 and c >= min_count and w not in known and cohesive(w)}
  left = collections.defaultdict(collections.Counter)
  right = collections.defaultdict(collections.Counter)
  readings = collections.defaultdict(collections.Counter)
  edge = 0
  for run, keys in runs_with_keys:
    for n in range(2, min(max_chars, len(run)) + 1):
      for i in range(len(run) - n + 1):
        w = run[i:i + n]
        if w not in candidates:
          continue
        edge += 1  # A run's edge is a context of its own each time.
        left[w][run[i - 1] if i else edge] += 1
        right[w][run[i + n] if i + n < len(run) else -edge] += 1
        readings[w][tuple(keys[i:i + n])] += 1
  terms = [Term(w, counts[w], readings[w].most_common(1)[0][0]) for w in candidates
           if min(_entropy(left[w]), _entropy(right[w])) >= min_context_bits]
  terms.sort(key=lambda t: (-t.count, t.word))
  return terms[:limit]


@dataclasses.dataclass
class WordList:
  """An adapted word list: what lexicon.BundleLexicon writes, with readings kept from the base."""
  counts: dict[str, int]
  readings: dict[str, tuple[str, ...]]
  bigrams: lexicon_lib.Bigrams | None
  terms: list[Term]
  text_words: int       # Word tokens of the counted text, as the list segments it.

  def lm(self) -> lexicon_lib.WordLM:
    return lexicon_lib.WordLM(self.counts, self.readings, self.bigrams)


def _texts(pairs: Iterable[prepare.Pair]) -> list[str]:
  return [run for p in pairs for run, _ in hanzi_runs(p)]


def adapt_word_list(base: lexicon_lib.WordLM | None, pairs: Sequence[prepare.Pair],
                    writable: frozenset[str] | set[str], share: float = TEXT_SHARE) -> WordList:
  """The base list with the text's terms, unigrams and bigrams mixed in (module docstring).
  Without a base list, the text's own words (its terms and characters) make one."""
  known = base.counts if base is not None else frozenset()
  terms = [t for t in find_terms(pairs, known) if all(c in writable for c in t.word)]
  texts = _texts(pairs)
  base_counts = dict(base.counts) if base is not None else {}
  total = float(sum(base_counts.values())) or float(lexicon_lib.SCALE)
  chars = max(sum(map(len, texts)), 1)
  # Provisional counts put the terms into the segmentation at about their share of the text.
  provisional = dict(base_counts)
  for t in terms:
    provisional[t.word] = max(1, round(share * total * t.count * len(t.word) / chars))
  for ch in {c for text in texts for c in text}:
    provisional.setdefault(ch, 1)
  segmenter = lexicon_lib.WordLM(provisional)
  words = collections.Counter(w for text in texts for w in segmenter.segment(text))
  n_words = max(sum(words.values()), 1)
  base_share = 1.0 - share if base_counts else 0.0
  counts = {w: max(1, round(base_share * base_counts.get(w, 0) + share * total * words[w] / n_words))
            for w in set(base_counts) | set(words)}
  readings = dict(base.readings) if base is not None else {}
  readings.update({t.word: t.reading for t in terms})
  lm = lexicon_lib.WordLM(counts, readings)
  text_pairs = lexicon_lib.count_bigrams(lm, texts, min_count=lexicon_lib.MIN_BIGRAM_COUNT)
  bigrams = _mix_bigrams(base.bigrams if base is not None else None, text_pairs, share)
  return WordList(counts, readings, bigrams, terms, sum(words.values()))


def _mix_bigrams(base: lexicon_lib.Bigrams | None, text: lexicon_lib.Bigrams, share: float
                 ) -> lexicon_lib.Bigrams:
  """The text's pairs added to the base's, scaled so that the text is `share` of all history."""
  text_total = max(sum(text.history.values()), 1)
  if base is None:
    return text
  scale = share / (1.0 - share) * sum(base.history.values()) / text_total
  pairs, history = dict(base.pairs), dict(base.history)
  for k, c in text.pairs.items():
    pairs[k] = pairs.get(k, 0) + max(1, round(c * scale))
  for w, c in text.history.items():
    history[w] = history.get(w, 0) + max(1, round(c * scale))
  return lexicon_lib.Bigrams(pairs, history)


class WordListFiles:
  """The adapted list as a bundle extension, in lexicon.BundleLexicon's files and section.

  lexicon.save would work out every word's reading again with pypinyin (~60 s for the release's
  418K words on a busy 2-core machine); the base list's readings are known, so they are written
  as they are and only the terms' come from the text.
  """
  name = lexicon_lib.BundleLexicon.name

  def __init__(self, words: WordList):
    self.words = words

  def write(self, directory: str) -> tuple[list[str], dict]:
    counts, readings = self.words.counts, self.words.readings
    text = ''.join(f'{w}\t{c}\t{" ".join(readings.get(w, ()))}\n'
                   for w, c in sorted(counts.items()))
    path = os.path.join(directory, lexicon_lib.FILENAME)
    with open(path, 'wb') as raw, gzip.GzipFile(filename='', fileobj=raw, mode='wb',
                                                mtime=0) as f:
      f.write(text.encode('utf-8'))
    files, section = [lexicon_lib.FILENAME], {'words': len(counts)}
    if self.words.bigrams is not None:
      lexicon_lib.save_bigrams(os.path.join(directory, lexicon_lib.BIGRAMS_FILENAME),
                               self.words.bigrams)
      files.append(lexicon_lib.BIGRAMS_FILENAME)
      section['bigrams'] = len(self.words.bigrams.pairs)
    return files, section
