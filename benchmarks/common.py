"""What several benchmarks share: a timing loop and random decoding inputs at the real sizes."""
from __future__ import annotations

import statistics
import time

import numpy as np

from pyhanzi_jax.data.vocab import EOS

# Vocabulary sizes of the decoding benchmarks (their parameters are random: only shapes matter),
# as benchmarks/RESULTS.md recorded them.
SRC_VOCAB, TGT_VOCAB = 500, 7000


def median_seconds(fn, repeats: int, warmup: int = 1) -> float:
  """Median wall seconds of `repeats` calls of fn() (which must wait for its result), after
  `warmup` untimed calls (compilation, caches)."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def random_batch(rng, batch: int, syllables: int, constrained: bool):
  """Inputs [batch, syllables + 1] (EOS last) and constraints [batch, syllables + 1, k] or None.

  Candidate lists are random, ~22 per syllable on average and up to 150: the order of the
  release's lists (candidates.CandidateTable: 16 per syllable of the vocabulary, 30 per syllable
  of typed general text, 110 at most, for yi).
  """
  inputs = np.concatenate([rng.integers(4, SRC_VOCAB, (batch, syllables)),
                           np.full((batch, 1), EOS)], axis=1).astype(np.int32)
  if not constrained:
    return inputs, None
  counts = np.clip(np.round(rng.lognormal(np.log(15), 0.9, (batch, syllables))), 1, 150)
  counts = counts.astype(int)
  k = int(counts.max())
  constraints = np.full((batch, syllables + 1, k), -1, np.int32)
  constraints[:, -1, 0] = EOS
  for b in range(batch):
    for i in range(syllables):
      constraints[b, i, :counts[b, i]] = rng.choice(np.arange(4, TGT_VOCAB), counts[b, i],
                                                    replace=False)
  return inputs, constraints


def same_width(batches: list) -> list:
  """(inputs, constraints) pairs with the constraints padded (-1) to the widest k among them,
  so that they share one compiled shape; unconstrained pairs pass through."""
  if not batches or batches[0][1] is None:
    return batches
  k = max(c.shape[2] for _, c in batches)
  return [(x, np.pad(c, ((0, 0), (0, 0), (0, k - c.shape[2])), constant_values=-1))
          for x, c in batches]
