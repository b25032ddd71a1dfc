"""The training batch pipeline on the committed fixture: mixtures and step-purity."""
import os

import numpy as np
import pytest

from pyhanzi_jax.data import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, 'tests', 'fixtures', 'tiny_data')


def _sentences(split):
  return [(tuple(split.src[a:b]), tuple(split.tgt[a:b]))
          for a, b in zip(split.offsets[:-1], split.offsets[1:])]


def test_mixture_repeats_each_corpus_k_times():
  general = pipeline.load_split(TINY, 'general', 'train')
  domain = pipeline.load_split(TINY, 'domain', 'train')
  mix = pipeline.load_train_mixture(TINY, 'general, domain*3')
  assert len(mix) == len(general) + 3 * len(domain)
  assert mix.name == 'general/train+domain/train*3'
  assert _sentences(mix) == _sentences(general) + 3 * _sentences(domain)
  # A single corpus is the memory-mapped split itself, not a copy.
  assert isinstance(pipeline.load_train_mixture(TINY, 'general').src, np.memmap)


@pytest.mark.parametrize('spec', ['', 'general,domain*0', 'general*x', '*2', 'domain*'])
def test_bad_mixture_is_a_clear_error(spec):
  with pytest.raises(ValueError, match='train_corpus'):
    pipeline.load_train_mixture(TINY, spec)


def test_unknown_corpus_says_how_to_prepare():
  with pytest.raises(FileNotFoundError, match='configs/prepare.py'):
    pipeline.load_train_mixture(TINY, 'general,nosuchcorpus')


def test_batches_of_a_mixture_are_a_pure_function_of_the_step():
  mix = pipeline.load_train_mixture(TINY, 'general,domain*2')
  make = lambda: pipeline.TrainBatches(mix, 8, (16, 32, 48), seed=3, chunk_batches=4)
  a, b = make(), make()
  later = [a.batch(s) for s in (9, 2, 5)]           # Out of order on one ...
  fresh = [b.batch(s) for s in (9, 2, 5)]           # ... and a fresh object.
  for x, y in zip(later, fresh):
    np.testing.assert_array_equal(x['inputs'], y['inputs'])
    np.testing.assert_array_equal(x['targets'], y['targets'])
  assert all(x['inputs'].shape[1] in (16, 32, 48) for x in later)
