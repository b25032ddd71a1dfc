"""A user's own text for `pyhanzi adapt`: files -> clean (pinyin, hanzi) pairs -> splits.

The text goes through the corpora's own preparation (data/prepare.py): `normalise` (width,
punctuation, spaces), `split_sentences`, the same drops (a sentence with a Latin letter or a
symbol outside PASSTHROUGH; fewer than `MIN_CJK` characters), long sentences cut at '，', and
pypinyin's readings (`prepare.pair`), so the pairs are made exactly as the base model's training
pairs were. Two choices differ from the corpora and are the user text's own:
- a sentence with a character outside the base model's vocabulary is left out (the corpora keep
  it as <unk>): the model cannot write that character, so training on it would only teach the
  decoder to predict <unk>, which the converter never allows; such characters are counted and
  reported instead;
- the floor is MIN_CJK = 2 characters (the evaluation corpora's), since a user's notes and
  messages have short lines worth learning.
The pairs are split by the sha1 of the sentence (prepare.split_key, as the corpora): the lowest
hashes are the held-out test (the before/after report), the next the validation split (the
trainer's best checkpoint), the rest adaptation.
"""
from __future__ import annotations

import collections
import dataclasses
import gzip
import hashlib
import os
from typing import Iterable, Sequence

from pyhanzi_jax.data import formats
from pyhanzi_jax.data import prepare
from pyhanzi_jax.data import vocab as vocab_lib

MIN_CJK = 2
# Fewer usable sentences than this (after cleaning) is too little text to adapt to: the held-out
# parts take 36 of them, and a few dozen training sentences move a model by noise only.
MIN_SENTENCES = 200
# Held-out test and validation sizes: a fraction of the sentences within [min, max].
TEST_FRACTION, MIN_TEST, MAX_TEST = 0.08, 20, 300
VALID_FRACTION, MIN_VALID, MAX_VALID = 0.04, 16, 100
# Above this many characters the pairing (pypinyin, ~40K characters/s a core) runs in 2 worker
# processes; below it the start-up of the workers costs more than it saves.
PARALLEL_CHARS = 300_000


class AdaptError(ValueError):
  """Input `pyhanzi adapt` cannot use; the message names the file or setting and what to do."""


def read_text_file(path: str) -> list[str]:
  """The lines of one UTF-8 text file (a BOM dropped); AdaptError naming the file (and the
  line, for bytes that are not UTF-8)."""
  if not os.path.exists(path):
    raise AdaptError(f'{path}: no such file')
  if os.path.isdir(path):
    raise AdaptError(f'{path} is a directory; give the text files in it (e.g. {path}/*.txt)')
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    raise AdaptError(f'{path}: cannot be read ({e.strerror or e})') from None
  try:
    text = data.decode('utf-8-sig')
  except UnicodeDecodeError as e:
    line = data.count(b'\n', 0, e.start) + 1
    column = e.start - (data.rfind(b'\n', 0, e.start) + 1) + 1
    raise AdaptError(
        f'{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at column {column}); save '
        'the file as UTF-8 (from GBK/GB18030: iconv -f GB18030 -t UTF-8 IN > OUT)') from None
  return text.splitlines()


@dataclasses.dataclass
class UserText:
  """The usable sentences of a user's files and what was left out of them."""
  pairs: list[prepare.Pair]     # Deduplicated, every character writable by the base model.
  files: list[str]
  sha256: str                   # Of the files' contents, in order: what a resumed run checks.
  chinese_chars: int            # CJK characters in the files as given.
  stats: dict[str, int]         # prepare's counts (sentences, drop_latin, ...) and ours.
  outside_vocab: list[tuple[str, int]]  # Characters the model cannot write, most frequent first.

  @property
  def usable_chars(self) -> int:
    return sum(prepare.count_hanzi(p.hanzi) for p in self.pairs)

  def left_out(self) -> str:
    """'1,204 sentences left out: 800 with Latin letters, ...' (empty when none were)."""
    reasons = [('drop_latin', 'with Latin letters'), ('drop_symbol', 'with other symbols'),
               ('drop_outside_vocab', 'with characters the model cannot write'),
               ('drop_short', f'under {MIN_CJK} Chinese characters'),
               ('drop_long', 'too long'), ('duplicates', 'repeated'),
               ('drop_no_reading', 'without a pypinyin reading'),
               ('drop_bad_syllable', 'without a pypinyin reading'),
               ('drop_misaligned', 'without a pypinyin reading')]
    parts = collections.Counter()
    for key, what in reasons:
      parts[what] += self.stats.get(key, 0)
    total = sum(parts.values())
    if not total:
      return ''
    return f'{total:,} sentence{"s" if total != 1 else ""} left out: ' + ', '.join(
        f'{n:,} {what}' for what, n in parts.items() if n)


def read_texts(paths: Sequence[str], hanzi_vocab: vocab_lib.Vocab, max_len: int,
               min_sentences: int = MIN_SENTENCES) -> UserText:
  """The usable (pinyin, hanzi) pairs of the files; AdaptError when there are too few."""
  if not paths:
    raise AdaptError('no text files given')
  lines, digest = [], hashlib.sha256()
  for path in paths:
    file_lines = read_text_file(path)
    lines.extend(file_lines)
    digest.update(path.encode('utf-8', 'replace') + b'\0')
    digest.update('\n'.join(file_lines).encode('utf-8') + b'\0')
  chinese = sum(prepare.count_hanzi(line) for line in lines)
  names = ', '.join(paths) if len(paths) <= 3 else f'{paths[0]} and {len(paths) - 1} more files'
  if not chinese:
    raise AdaptError(f'no Chinese text in {names}: adapt learns from Chinese sentences '
                     '(UTF-8 text files)')
  pairs, stats, outside = text_pairs(lines, hanzi_vocab, max_len)
  text = UserText(pairs, list(paths), digest.hexdigest(), chinese, stats, outside)
  if len(pairs) < min_sentences:
    lost = text.left_out()
    raise AdaptError(
        f'too little text to adapt: {names} gave {len(pairs):,} usable sentences '
        f'({text.usable_chars:,} Chinese characters); adapting needs at least '
        f'{min_sentences:,} sentences (about {20 * min_sentences:,} characters), and gains '
        f'most from 100,000 characters or more' + (f'. {lost}' if lost else ''))
  return text


def text_pairs(lines: Iterable[str], hanzi_vocab: vocab_lib.Vocab, max_len: int,
               min_cjk: int = MIN_CJK
               ) -> tuple[list[prepare.Pair], dict[str, int], list[tuple[str, int]]]:
  """(pairs, counts, characters outside the vocabulary) of raw lines, each line one passage."""
  passages = [formats.Passage(line) for line in lines if line.strip()]
  chars = sum(len(p.text) for p in passages)
  pairs, stats = prepare.pair_passages(passages, max_len, min_cjk,
                                       num_workers=2 if chars > PARALLEL_CHARS else 1)
  outside: collections.Counter = collections.Counter()
  kept = []
  for p in pairs:
    missing = [c for c in p.hanzi if c not in hanzi_vocab]
    if missing:
      outside.update(missing)
    else:
      kept.append(p)
  stats['drop_outside_vocab'] = len(pairs) - len(kept)
  stats['kept'] = len(kept)
  return kept, dict(sorted(stats.items())), sorted(outside.items(), key=lambda kv: (-kv[1], kv[0]))


def split_sizes(n: int) -> tuple[int, int]:
  """(test, validation) sentences held out of `n`."""
  n_test = min(max(round(TEST_FRACTION * n), MIN_TEST), MAX_TEST)
  n_valid = min(max(round(VALID_FRACTION * n), MIN_VALID), MAX_VALID)
  return n_test, n_valid


def split_pairs(pairs: Sequence[prepare.Pair]) -> dict[str, list[prepare.Pair]]:
  """{'test', 'valid', 'train'} by content hash: the same sentence always lands in the same
  split, whatever else the files hold."""
  ordered = sorted(pairs, key=lambda p: prepare.split_key(p.hanzi))
  n_test, n_valid = split_sizes(len(ordered))
  return {'test': ordered[:n_test], 'valid': ordered[n_test:n_test + n_valid],
          'train': ordered[n_test + n_valid:]}


def read_pairs_tsv(path: str) -> list[prepare.Pair]:
  """'keys<TAB>hanzi' lines (a prepared split's .tsv, gzipped or not) as pairs."""
  opener = gzip.open if path.endswith('.gz') else open
  with opener(path, 'rt', encoding='utf-8') as f:
    return [prepare.Pair(*line.rstrip('\n').split('\t', 1)) for line in f if '\t' in line]
