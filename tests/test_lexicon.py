"""The word lexicon that re-ranks conversions: scoring, files, bundles, the converter."""
import gzip
import math
import os

import pytest

from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import convert
from pyhanzi_jax import lexicon
from pyhanzi_jax import release

COUNTS = {'体育': 40, '体育场': 20, '场馆': 30, '馆': 5, '观': 5, '场': 10, '体': 5, '育': 5}


def test_score_is_the_best_segmentation():
  lm = lexicon.WordLM(COUNTS)
  total = sum(COUNTS.values())
  logp = lambda w: math.log(COUNTS[w] / total)
  # 体育 + 场馆 beats 体育场 + 馆 and every split into single characters.
  assert lm.score('体育场馆') == pytest.approx(logp('体育') + logp('场馆'))
  assert lm.score('体育场观') == pytest.approx(logp('体育场') + logp('观'))
  # A character that is no word costs half a count.
  assert lm.score('体育好') == pytest.approx(logp('体育') + math.log(0.5 / total))
  assert lm.score('') == 0.0


def test_rerank_adds_the_weighted_word_score():
  lm = lexicon.WordLM(COUNTS)
  cands = [('体育场观', -1.0), ('体育场馆', -1.5)]
  assert lm.rerank(cands, 0.0) == cands
  reranked = lm.rerank(cands, 1.0)
  assert [t for t, _ in reranked] == ['体育场馆', '体育场观']
  assert reranked[0][1] == pytest.approx(-1.5 + lm.score('体育场馆'))


def test_file_round_trip_is_deterministic_and_malformed_lines_are_refused(tmp_path):
  a, b = str(tmp_path / 'a.tsv.gz'), str(tmp_path / 'b.tsv.gz')
  lexicon.save(a, COUNTS)
  lexicon.save(b, dict(reversed(list(COUNTS.items()))))
  assert open(a, 'rb').read() == open(b, 'rb').read()
  assert lexicon.read_counts(a) == COUNTS
  with gzip.open(b, 'wt', encoding='utf-8') as f:
    f.write('体育 40\n')
  with pytest.raises(ValueError, match='word<TAB>count'):
    lexicon.read_counts(b)


@pytest.fixture(scope='module')
def bundle(untrained_bundle):
  """An untrained bundle on the fixture vocabularies, with a lexicon."""
  return untrained_bundle('lex', lexicon_counts=COUNTS, lm_weight=0.7)


def test_bundle_carries_a_checked_lexicon(bundle):
  loaded = ckpt_lib.load_bundle(bundle)
  assert loaded.meta['lexicon']['words'] == len(COUNTS)
  assert loaded.meta['lexicon']['lm_weight'] == 0.7
  assert loaded.lexicon.score('体育场馆') == lexicon.WordLM(COUNTS).score('体育场馆')
  assert convert.Converter(bundle).lm_weight == 0.7
  assert convert.Converter(bundle, lm_weight=0).lm_weight == 0.0


def test_damaged_lexicon_is_a_checkpoint_error(bundle, tmp_path):
  import shutil
  bad = str(tmp_path / 'bad')
  shutil.copytree(bundle, bad)
  with open(os.path.join(bad, lexicon.FILENAME), 'ab') as f:
    f.write(b'x')
  with pytest.raises(ckpt_lib.CheckpointError, match='lexicon.tsv.gz'):
    ckpt_lib.load_bundle(bad)


def test_converter_ranks_by_model_plus_weighted_lexicon(bundle):
  plain = convert.Converter(bundle, lm_weight=0)
  cands = plain.candidates('shi jie', k=4)
  assert len(cands) >= 2
  last = cands[-1][0]  # The model's least likely of its 4 best ...
  conv = convert.Converter(bundle)
  conv.lexicon = lexicon.WordLM({last: 10**6, '的': 1})
  conv.lm_weight = 5.0
  assert conv.convert('shi jie') == last  # ... first once the lexicon knows it as a word.
  got = dict(conv.candidates('shi jie', k=4))
  want = dict((t, s + 5.0 * conv.lexicon.score(t)) for t, s in cands)
  assert got.keys() == want.keys()
  for t in got:
    assert got[t] == pytest.approx(want[t], rel=1e-4, abs=1e-4)


def test_release_keeps_or_drops_the_source_lexicon(bundle, tmp_path):
  kept = release.install(bundle, str(tmp_path / 'kept'), lexicon='source')
  assert kept['lexicon']['words'] == len(COUNTS) and kept['lexicon']['lm_weight'] == 0.7
  dropped = release.install(bundle, str(tmp_path / 'dropped'), lexicon='none')
  assert 'lexicon' not in dropped
  assert not os.path.exists(tmp_path / 'dropped' / lexicon.FILENAME)
