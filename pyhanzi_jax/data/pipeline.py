"""The batch pipeline: prepared arrays -> padded numpy batches, a pure function of the step.

The batch for step `s` depends only on (seed, s), never on what came before, so a run resumed
from a checkpoint at step s sees exactly the batches an uninterrupted run would have seen, with
no iterator state to save. Every process computes the same global order (a seeded permutation
per epoch) and reads only its own rows of each global batch from the memory-mapped arrays.

Batches are grouped by length to avoid padding every sentence to `max_len`: a chunk of
`chunk_batches` batches is sorted by length, cut into batches, and the batches are shuffled;
each batch is padded to the smallest of a few fixed lengths, so the train step compiles once per
length bucket, not once per batch.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Iterator

import numpy as np

from pyhanzi_jax import pinyin
from pyhanzi_jax.data import vocab as vocab_lib


@dataclasses.dataclass
class Split:
  """One memory-mapped split of a prepared corpus."""
  src: np.ndarray       # [total_tokens] uint16
  tgt: np.ndarray       # [total_tokens] uint16
  offsets: np.ndarray   # [n + 1] int64
  name: str = ''

  @property
  def lengths(self) -> np.ndarray:
    return np.diff(self.offsets)

  def __len__(self) -> int:
    return len(self.offsets) - 1

  def texts(self, hanzi_vocab: vocab_lib.Vocab) -> Iterator[str]:
    """Each sentence's target text (its tokens joined; special tokens as spaces)."""
    table = [' ' if t in vocab_lib.SPECIALS else t for t in hanzi_vocab.tokens]
    tgt = np.asarray(self.tgt)
    for a, b in zip(self.offsets[:-1], self.offsets[1:]):
      yield ''.join(table[i] for i in tgt[a:b])

  def rows(self, idx: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Sentences `idx` with EOS appended, right-padded with PAD to `length`: 2 x [len(idx), length]."""
    src = np.zeros((len(idx), length), np.int32)
    tgt = np.zeros((len(idx), length), np.int32)
    for row, k in enumerate(idx):
      a, b = self.offsets[k], self.offsets[k + 1]
      n = min(b - a, length - 1)
      src[row, :n] = self.src[a:a + n]
      tgt[row, :n] = self.tgt[a:a + n]
      src[row, n] = tgt[row, n] = vocab_lib.EOS
    return src, tgt


def load_split(data_dir: str, corpus: str, split: str) -> Split:
  base = os.path.join(data_dir, corpus, split)
  paths = [f'{base}.{part}.npy' for part in ('src', 'tgt', 'offsets')]
  missing = [p for p in paths if not os.path.exists(p)]
  if missing:
    raise FileNotFoundError(
        f'prepared data not found: {missing[0]}. Prepare it first with '
        f'`python -m pyhanzi_jax.main --config=configs/prepare.py --workdir={data_dir}` '
        f'or point --config.data.dir at a prepared directory.')
  src, tgt, offsets = (np.load(p, mmap_mode='r') for p in paths)
  if src.shape != tgt.shape or offsets[-1] != len(src):
    raise ValueError(f'corrupt prepared data in {base}.*.npy: src/tgt/offsets disagree; '
                     'delete the directory and prepare it again')
  return Split(src, tgt, np.asarray(offsets), name=f'{corpus}/{split}')


def load_train_mixture(data_dir: str, spec: str) -> Split:
  """The training split of one corpus ('general') or of a mixture ('general,domain*2').

  `name*k` repeats a corpus k times, which oversamples a small corpus so that a model trained
  for the general text also sees enough of a specialised one. The mixture is held in memory
  (2 bytes per token: ~60 MB for the whole general corpus).
  """
  parts = []
  for item in (x.strip() for x in spec.split(',')):
    if not item:
      continue
    name, star, repeat = (x.strip() for x in item.partition('*'))
    if not name or (star and not (repeat.isdigit() and int(repeat) >= 1)):
      raise ValueError(f'config.data.train_corpus: {item!r} is not NAME or NAME*K with K >= 1 '
                       "(e.g. 'general,domain*2')")
    parts.append((load_split(data_dir, name, 'train'), int(repeat) if star else 1))
  if not parts:
    raise ValueError("config.data.train_corpus is empty; give a corpus such as 'general'")
  if len(parts) == 1 and parts[0][1] == 1:
    return parts[0][0]
  pieces = [split for split, k in parts for _ in range(k)]
  lengths = np.concatenate([split.lengths for split in pieces])
  return Split(np.concatenate([np.asarray(s.src) for s in pieces]),
               np.concatenate([np.asarray(s.tgt) for s in pieces]),
               np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
               name='+'.join(f'{s.name}*{k}' if k > 1 else s.name for s, k in parts))


def parse_buckets(spec: str, max_len: int) -> tuple[int, ...]:
  buckets = sorted({int(x) for x in spec.split(',') if x.strip()} | {max_len})
  return tuple(b for b in buckets if b <= max_len)


@functools.lru_cache(maxsize=4)
def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch, 0x5EED]).permutation(n)


def _positions_to_index(n: int, seed: int, start: int, count: int) -> np.ndarray:
  """Sentence indices at positions [start, start + count) of the endless shuffled stream."""
  pos = np.arange(start, start + count)
  out = np.empty(count, np.int64)
  for epoch in np.unique(pos // n):
    sel = pos // n == epoch
    out[sel] = _epoch_order(n, seed, int(epoch))[pos[sel] % n]
  return out


@dataclasses.dataclass(frozen=True)
class AbbrevTable:
  """Maps each pinyin id to the id of its initial key (and the one-letter form for zh/ch/sh)."""
  initial: np.ndarray   # [src_vocab] int32, identity for non-syllables
  short: np.ndarray     # [src_vocab] int32, 'zh*' -> 'z*' style alternative, else == initial

  @classmethod
  def from_vocab(cls, pinyin_vocab: vocab_lib.Vocab) -> 'AbbrevTable':
    syllables = set(pinyin.SYLLABLES)
    initial = np.arange(len(pinyin_vocab), dtype=np.int32)
    short = initial.copy()
    for i, tok in enumerate(pinyin_vocab.tokens):
      if tok in syllables:
        key = pinyin.initial_key(tok)
        initial[i] = pinyin_vocab.id(key)
        short[i] = pinyin_vocab.id(key[0] + '*') if len(key) == 3 else initial[i]
    return cls(initial, short)

  def apply(self, src: np.ndarray, rng: np.random.Generator, sentence_prob: float,
            syllable_prob: float, rows: slice | None = None,
            total_rows: int | None = None) -> np.ndarray:
    """Abbreviates some sentences' syllables to initials, as people type `nh` for `ni hao`.

    `src` may be rows `rows` of a batch of `total_rows`: the draws are made for the whole batch
    and sliced, so a row comes out the same however many processes share the batch.
    """
    if sentence_prob <= 0:
      return src
    shape = (total_rows or src.shape[0], src.shape[1])
    sent = rng.random(shape[0]) < sentence_prob
    pick = (rng.random(shape) < syllable_prob) & sent[:, None]
    use_short = rng.random(shape) < 0.5
    if rows is not None:
      pick, use_short = pick[rows], use_short[rows]
    abbreviated = np.where(use_short, self.short[src], self.initial[src])
    return np.where(pick, abbreviated, src)


@dataclasses.dataclass
class TrainBatches:
  """Deterministic training batches: `batch(step)` is a pure function of (seed, step)."""
  split: Split
  global_batch: int
  buckets: tuple[int, ...]
  seed: int = 0
  process_index: int = 0
  process_count: int = 1
  chunk_batches: int = 64
  abbrev: AbbrevTable | None = None
  abbrev_prob: float = 0.0
  abbrev_syllable_prob: float = 0.0

  def __post_init__(self):
    if self.global_batch % self.process_count:
      raise ValueError(f'global batch {self.global_batch} does not split over '
                       f'{self.process_count} processes')
    # Sentences too long for the largest bucket are skipped, not truncated.
    lengths = self.split.lengths + 1  # + EOS
    self._keep = np.flatnonzero(lengths <= self.buckets[-1])
    if len(self._keep) < self.global_batch:
      raise ValueError(f'{self.split.name} has {len(self._keep)} usable sentences, fewer than '
                       f'one batch of {self.global_batch}')
    self._lengths = lengths[self._keep]
    self._chunks = {}

  def _chunk(self, c: int) -> np.ndarray:
    """[chunk_batches, global_batch] sentence indices of chunk c, length-grouped."""
    if c in self._chunks:
      return self._chunks[c]
    size = self.chunk_batches * self.global_batch
    idx = _positions_to_index(len(self._keep), self.seed, c * size, size)
    idx = idx[np.argsort(self._lengths[idx], kind='stable')]
    batches = idx.reshape(self.chunk_batches, self.global_batch)
    order = np.random.default_rng([self.seed, c, 0xBA7C]).permutation(self.chunk_batches)
    self._chunks = {c: batches[order]}  # Steps walk forward: keep only the current chunk.
    return self._chunks[c]

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """This process' rows of global batch `step`: inputs/targets [global_batch/P, length]."""
    c, i = divmod(step, self.chunk_batches)
    rows = self._chunk(c)[i]
    length = next(b for b in self.buckets if b >= self._lengths[rows].max())
    per = self.global_batch // self.process_count
    own = slice(self.process_index * per, (self.process_index + 1) * per)
    src, tgt = self.split.rows(self._keep[rows[own]], length)
    if self.abbrev is not None:
      rng = np.random.default_rng([self.seed, step, 0, 0xAB])  # The same on every process.
      src = self.abbrev.apply(src, rng, self.abbrev_prob, self.abbrev_syllable_prob,
                              rows=own, total_rows=self.global_batch)
    return {'inputs': src, 'targets': tgt}


def eval_batches(split: Split, batch_size: int, length: int, max_batches: int = 0,
                 process_index: int = 0, process_count: int = 1):
  """Fixed, in-order evaluation batches padded to `length`; the last batch is padded with
  empty rows (all PAD), which the metrics ignore. Yields this process' rows."""
  keep = np.flatnonzero(split.lengths + 1 <= length)
  n_batches = -(-len(keep) // batch_size)
  if max_batches:
    n_batches = min(n_batches, max_batches)
  per = batch_size // process_count
  for b in range(n_batches):
    idx = keep[b * batch_size:(b + 1) * batch_size]
    src, tgt = split.rows(idx, length)
    pad = batch_size - len(idx)
    if pad:
      src = np.concatenate([src, np.zeros((pad, length), np.int32)])
      tgt = np.concatenate([tgt, np.zeros((pad, length), np.int32)])
    sl = slice(process_index * per, (process_index + 1) * per)
    yield {'inputs': src[sl], 'targets': tgt[sl]}
