"""A word-frequency lexicon that re-ranks the model's n-best conversions.

The model has seen ~13M characters of text; an input method's lexicon has counted words over far
more. Where the beam's candidates differ by a homophone word (体育场观 / 体育场馆, 红红劣劣 /
轰轰烈烈), a word-frequency list knows which one people write. The conversion score becomes

    log p_model(text | pinyin) + lm_weight * log p_words(text)

where log p_words is the best segmentation of the text into words under a unigram model (the
dynamic programme jieba uses): the sum of log(count / total) over the words, a character that is
no word of the list costing as much as a word seen half a time. All candidates of one input have
the same length, so no length normalisation is needed. The weight was chosen on the validation
splits (docs/QUALITY.md); re-ranking is cheap next to decoding (~2 µs a character of a
candidate; loading the list ~0.4 s).

The list is jieba 0.42.1's dict.txt (349,046 words with counts, MIT licence), fetched from PyPI
with the same verified download as the corpora (data/sources.py) and shipped in the release
bundle as `lexicon.tsv.gz`, restricted to words made of characters the model can write.
"""
from __future__ import annotations

import gzip
import math
from typing import Iterable

from pyhanzi_jax.data import sources as sources_lib

JIEBA = sources_lib.Source(
    name='jieba_dict', corpus='lexicon', package='jieba', version='0.42.1', kind='sdist',
    filename='jieba-0.42.1.tar.gz',
    sha256='055ca12f62674fafed09427f176506079bc135638a14e23e25be909131928db2',
    members=('jieba-0.42.1/jieba/dict.txt',), parse=sources_lib.parse_text, licence='MIT',
    description="jieba's word list: word, count, part of speech")

FILENAME = 'lexicon.tsv.gz'
DEFAULT_WEIGHT = 0.2  # Chosen on the general and domain validation splits (docs/QUALITY.md).


def jieba_counts(cache_dir: str, keep_chars: Iterable[str] | None = None) -> dict[str, int]:
  """word -> count from jieba's dict.txt; only words made of `keep_chars` when given."""
  keep = None if keep_chars is None else frozenset(keep_chars)
  counts: dict[str, int] = {}
  for passage in sources_lib.passages(JIEBA, cache_dir):
    parts = passage.text.split()
    if len(parts) < 2 or not parts[1].isdigit():
      continue
    word, count = parts[0], int(parts[1])
    if count > 0 and (keep is None or all(ch in keep for ch in word)):
      counts[word] = counts.get(word, 0) + count
  if not counts:
    raise RuntimeError(f'{JIEBA.filename}: no usable "word count" lines in {JIEBA.members}')
  return counts


def save(path: str, counts: dict[str, int]) -> None:
  """'word<TAB>count' lines, sorted, gzip with a fixed mtime (the same bytes every time)."""
  text = ''.join(f'{w}\t{c}\n' for w, c in sorted(counts.items()))
  with open(path, 'wb') as raw, gzip.GzipFile(filename='', fileobj=raw, mode='wb', mtime=0) as f:
    f.write(text.encode('utf-8'))


def read_counts(path: str) -> dict[str, int]:
  """The word -> count list `save` wrote (ValueError on a malformed line)."""
  counts = {}
  with gzip.open(path, 'rt', encoding='utf-8') as f:
    for n, line in enumerate(f, 1):
      word, sep, count = line.rstrip('\n').partition('\t')
      if not sep or not count.isdigit():
        raise ValueError(f'{path}:{n}: expected "word<TAB>count", got {line[:40]!r}')
      counts[word] = int(count)
  return counts


def load(path: str) -> 'WordLM':
  return WordLM(read_counts(path))


class WordLM:
  """Unigram word model: `score(text)` = log-probability of the text's best segmentation."""

  def __init__(self, counts: dict[str, int]):
    if not counts:
      raise ValueError('a word list needs at least one word')
    total = float(sum(counts.values()))
    self.logp = {w: math.log(c / total) for w, c in counts.items()}
    self.max_word = max(len(w) for w in counts)
    self.unknown = math.log(0.5 / total)  # A character that is no word: half a count.

  def __len__(self) -> int:
    return len(self.logp)

  def score(self, text: str) -> float:
    n = len(text)
    best = [0.0] + [-math.inf] * n  # best[j]: best log-probability of text[:j]
    for i in range(n):
      if best[i] == -math.inf:
        continue
      for j in range(i + 1, min(n, i + self.max_word) + 1):
        s = self.logp.get(text[i:j])
        if s is None:
          if j > i + 1:
            continue
          s = self.unknown
        if best[i] + s > best[j]:
          best[j] = best[i] + s
    return best[n]

  def rerank(self, candidates: list[tuple[str, float]], weight: float
             ) -> list[tuple[str, float]]:
    """(text, model log-prob) pairs -> (text, model + weight * word log-prob), best first."""
    scored = [(t, s + weight * self.score(t)) for t, s in candidates]
    return sorted(scored, key=lambda c: -c[1])


__all__ = ['WordLM', 'JIEBA', 'DEFAULT_WEIGHT', 'FILENAME', 'jieba_counts', 'save', 'load',
           'read_counts']
