"""The word lexicon that re-ranks conversions: scoring, files, bundles, the converter."""
import dataclasses
import gzip
import math
import os

import pytest

from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import cli
from pyhanzi_jax import convert
from pyhanzi_jax import lexicon
from pyhanzi_jax import pinyin
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


def test_long_words_are_found_and_shared_tables_give_the_same_scores():
  # Longer than lexicon.SHORT_WORD: found where the span begins as the long word does.
  counts = {**COUNTS, '中华人民共和国': 50, '中华': 10, '人民': 10, '共和国': 10, '中华人民': 1}
  lm = lexicon.WordLM(counts)
  assert len('中华人民共和国') > lexicon.SHORT_WORD
  assert lm.segment('好中华人民共和国体育场馆') == ['好', '中华人民共和国', '体育', '场馆']
  assert lm.segment('中华人民体育') == ['中华人民', '体育']
  # A word of exactly SHORT_WORD characters that begins no longer word is still looked up.
  assert lexicon.WordLM({**counts, '一心一意': 30}).segment('体育一心一意场馆') == [
      '体育', '一心一意', '场馆']
  # A text that shares its first `keep` characters with another reuses its tables: the same
  # score to the bit, whatever follows (with and without bigrams).
  bigram_lm = lexicon.WordLM(counts, bigrams=lexicon.count_bigrams(
      lm, ['中华人民共和国体育场馆', '体育场馆'], min_count=1))
  text = '体育场中华人民共和国场馆'
  for model in (lm, bigram_lm):
    tables = model._segmentation(text)
    for keep in range(len(text) + 1):
      for tail in ('', '观', '民共和国体育', text[keep:][::-1]):
        other = text[:keep] + tail
        assert model.score(other, tables, keep) == model.score(other), (keep, tail)


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
  counts, readings = lexicon.read(a)
  assert counts == COUNTS and lexicon.read_counts(a) == COUNTS
  assert readings['体育场'] == ('ti', 'yu', 'chang') and readings['馆'] == ('guan',)
  with gzip.open(b, 'wt', encoding='utf-8') as f:  # An earlier version's file: no readings.
    f.write('体育\t40\n场馆\t30\n')
  assert lexicon.read(b) == ({'体育': 40, '场馆': 30}, {})
  assert not lexicon.load(b).has_readings
  with gzip.open(b, 'wt', encoding='utf-8') as f:
    f.write('体育 40\n')
  with pytest.raises(ValueError, match='word<TAB>count'):
    lexicon.read_counts(b)


# --- Word bigrams ------------------------------------------------------------------------------

def test_segment_is_the_best_segmentations_words():
  lm = lexicon.WordLM(COUNTS)
  assert lm.segment('体育场馆') == ['体育', '场馆']
  assert lm.segment('体育场观') == ['体育场', '观']
  assert lm.segment('好体育') == ['好', '体育'] and lm.segment('') == []


def test_bigrams_are_counted_per_run_of_hanzi_and_rare_pairs_dropped():
  lm = lexicon.WordLM(COUNTS)
  texts = ['体育场馆，体育场观', '体育场馆1体育', 'ok体育']
  got = lexicon.count_bigrams(lm, texts, min_count=1)
  # Punctuation, digits and Latin end a run: each run starts again from START.
  assert got.history == {lexicon.START: 5, '体育': 2, '体育场': 1}
  assert got.pairs == {f'{lexicon.START}\t体育': 4, '体育\t场馆': 2, f'{lexicon.START}\t体育场': 1,
                       '体育场\t观': 1}
  pruned = lexicon.count_bigrams(lm, texts, min_count=2)
  assert pruned.pairs == {f'{lexicon.START}\t体育': 4, '体育\t场馆': 2}
  assert pruned.history == got.history  # Totals as counted: a dropped pair's mass stays there.


def test_bigram_score_prefers_the_pair_seen_in_context():
  """Unigrams rank 体育场 + 观 over 体育 + 观 ... ; after 体育 the counted text always had 场馆,
  so under bigrams the known best is 体育场馆, and an unseen history falls back to unigrams."""
  counts = dict(COUNTS, 场观=60)  # A homophone word more frequent than 场馆 (30) alone.
  uni = lexicon.WordLM(counts)
  assert uni.score('体育场观') > uni.score('体育场馆')
  bigrams = lexicon.Bigrams({f'{lexicon.START}\t体育': 9, '体育\t场馆': 9}, {lexicon.START: 9,
                                                                            '体育': 9})
  lm = lexicon.WordLM(counts, bigrams=bigrams)
  assert lm.score('体育场馆') > lm.score('体育场观')
  total = sum(counts.values())
  p = lambda w: counts[w] / total
  k = lexicon.BIGRAM_PRIOR
  want = math.log((9 + k * p('体育')) / (9 + k)) + math.log((9 + k * p('场馆')) / (9 + k))
  assert lm.score('体育场馆') == pytest.approx(want)
  assert lm.score('场馆') == pytest.approx(math.log((0 + k * p('场馆')) / (9 + k)))
  assert lexicon.WordLM(counts, bigrams=lexicon.Bigrams({}, {})).score('体育场观') == (
      pytest.approx(uni.score('体育场观')))
  assert lm.with_words({'场观': ['chang', 'guan']}).bigrams is bigrams


def test_bigram_file_round_trip_is_deterministic_and_malformed_lines_are_refused(tmp_path):
  lm = lexicon.WordLM(COUNTS)
  bigrams = lexicon.count_bigrams(lm, ['体育场馆，体育场观', '体育场馆'], min_count=2)
  a, b = str(tmp_path / 'a.tsv.gz'), str(tmp_path / 'b.tsv.gz')
  lexicon.save_bigrams(a, bigrams)
  lexicon.save_bigrams(b, lexicon.Bigrams(dict(reversed(bigrams.pairs.items())),
                                          dict(reversed(bigrams.history.items()))))
  assert open(a, 'rb').read() == open(b, 'rb').read()
  assert lexicon.read_bigrams(a) == bigrams
  with gzip.open(b, 'wt', encoding='utf-8') as f:
    f.write('体育 场馆 3\n')
  with pytest.raises(ValueError, match='b.tsv.gz:1'):
    lexicon.read_bigrams(b)


READINGS = {'体育': 'ti yu', '体育场': 'ti yu chang', '场馆': 'chang guan', '长官': 'zhang guan',
            '馆': 'guan', '场': 'chang'}


def test_paths_are_the_best_sentences_of_the_word_lattice():
  counts = dict(COUNTS, 长官=25, 官=1, 长=8, 提=3, 鱼=2)
  lm = lexicon.WordLM(counts, {w: r.split() for w, r in READINGS.items()})
  keys = ['ti', 'yu', 'chang', 'guan']
  options = [['提', '体'], ['鱼', '育'], ['场', '长'], ['官', '馆', '观']]
  paths = lm.paths(keys, options, 5)
  # 体育 + 场馆 is the best segmentation of any sentence on this lattice; 长官 is read zhang guan,
  # so it is no edge here, though its characters are allowed.
  assert paths[0] == '体育场馆'
  assert len(paths) == len(set(paths)) == 5
  assert all(len(p) == 4 and all(c in o for c, o in zip(p, options)) for p in paths)
  assert [lm.score(p) for p in paths] == sorted((lm.score(p) for p in paths), reverse=True)
  assert '体育长官' not in paths[:2]
  # A position that is no syllable is never spanned by a word and keeps its only option.
  cut = lm.paths(['ti', None, 'chang', 'guan'], [['提', '体'], ['，'], ['场', '长'],
                                                ['官', '馆', '观']], 3)
  assert cut[0] == '体，场馆' and all(p[1] == '，' for p in cut)
  # Only characters the decoder allows: without 馆, 场馆 cannot be used.
  assert all('馆' not in p for p in lm.paths(keys, options[:3] + [['官', '观']], 5))
  # The sorted single-character edges are kept per candidate list: another list of the same
  # length at the same position gives what a fresh model gives.
  other = options[:1] + [['鱼', '玉']] + options[2:]
  fresh = lexicon.WordLM(counts, {w: r.split() for w, r in READINGS.items()})
  assert lm.paths(keys, other, 5) == fresh.paths(keys, other, 5) != paths


def test_edits_rank_as_full_rescoring_would():
  # edits scores each rewrite reusing the text's tables up to where it starts: the rewrites and
  # their order must be those of scoring every rewrite afresh.
  # 观体 and 育: a rewrite of 提鱼 after 观 (体育) is best cut 观体 + 育, through the table
  # entry of the rewrite's own first character, which the text's tables must not supply.
  counts = dict(COUNTS, 长官=25, 官=1, 长=8, 提=3, 鱼=2, 观场=4, 馆体=2, 观体=200, 育=50)
  readings = {**{w: r.split() for w, r in READINGS.items()}, '观场': ['guan', 'chang'],
              '馆体': ['guan', 'ti'], '观体': ['guan', 'ti']}
  unigrams = lexicon.WordLM(counts, readings)
  lm = lexicon.WordLM(counts, readings, lexicon.count_bigrams(
      unigrams, ['体育场馆体育', '观场体育', '提鱼场观长官'], min_count=1))
  keys = ['ti', 'yu', 'chang', 'guan', 'chang', 'guan', 'ti', 'yu']
  allowed = {'ti': ['提', '体'], 'yu': ['鱼', '育'], 'chang': ['场', '长'], 'guan': ['官', '馆', '观']}
  options = [allowed[k] for k in keys]
  text = '提鱼场观场观提鱼'
  scored = []  # Every (rewrite, its score) edits computes.
  def spy(t, shared=None, keep=0):
    scored.append((t, lexicon.WordLM.score(lm, t, shared, keep)))
    return scored[-1][1]
  lm.score = spy
  got = lm.edits(keys, options, text, 20)
  afresh = lexicon.WordLM(counts, readings, lm.bigrams)
  assert len(got) >= 5 and len(scored) > len(got)
  assert [(t, afresh.score(t)) for t, _ in scored] == scored
  with pytest.raises(ValueError, match='keep'):
    lm.score('体育', lm._segmentation('体'), 2)  # Longer than the tables it shares.

def test_edits_rewrite_one_span_as_a_word_best_gain_first():
  counts = dict(COUNTS, 长官=25, 官=1, 长=8, 提=3, 鱼=2)
  lm = lexicon.WordLM(counts, {w: r.split() for w, r in READINGS.items()})
  keys = ['ti', 'yu', 'chang', 'guan']
  options = [['提', '体'], ['鱼', '育'], ['场', '长'], ['官', '馆', '观']]
  text = '提鱼场观'
  # Spans with a word of their reading: ti yu (体育), ti yu chang (体育场, the same rewrite of
  # this text) and chang guan (场馆); 长官 is read zhang guan and fits none. Best gain first:
  # 体育场 + 观 scores higher than 提 + 鱼 + 场馆.
  edits = lm.edits(keys, options, text, 10)
  assert edits == ['体育场观', '提鱼场馆']
  assert lm.score(edits[0]) > lm.score(edits[1]) > lm.score(text)
  assert lm.edits(keys, options, text, 1) == edits[:1]
  # The text itself is never proposed, a position that is no syllable is never spanned, and
  # only characters the decoder allows are used.
  assert lm.edits(keys, options, '体育场馆', 10) == []
  assert lm.edits(['ti', 'yu', None, 'guan'], options[:2] + [['，']] + options[3:],
                  '提鱼，观', 10) == ['体育，观']
  assert lm.edits(keys, options[:3] + [['官', '观']], text, 10) == ['体育场观']


def test_unseen_proposals_are_the_lattice_and_rewrites_the_beam_missed():
  counts = dict(COUNTS, 长官=25, 官=1, 长=8, 提=3, 鱼=2)
  lm = lexicon.WordLM(counts, {w: r.split() for w, r in READINGS.items()})
  hanzi = ['<pad>', '<s>', '</s>', '<unk>', '提', '体', '鱼', '育', '场', '长', '官', '馆', '观']
  index = {c: i for i, c in enumerate(hanzi)}
  options = [['提', '体'], ['鱼', '育'], ['场', '长'], ['官', '馆', '观']]
  rows = [[[index[c] for c in o] for o in options]]
  lattices = lexicon.lattice_paths(lm, [pinyin.parse('ti yu chang guan')], rows, hanzi, 3)
  keys, got_options, paths = lattices[0]
  assert keys == ['ti', 'yu', 'chang', 'guan'] and got_options == options
  assert paths == lm.paths(keys, options, 3) and paths[0] == '体育场馆'

  def ids(text):
    return tuple(index[c] for c in text)
  beam = {ids('提鱼场观'): -1.0, ids('体育场馆'): -2.0}  # The beam's best first.
  (new,) = lexicon.unseen_proposals(lm, rows, [beam], lattices, hanzi, index, 10)
  # The lattice's paths, then the rewrites of the beam's best, none twice and none it found.
  want = [t for t in dict.fromkeys(paths + lm.edits(keys, options, '提鱼场观', 10))
          if ids(t) not in beam]
  assert [''.join(hanzi[i] for i in n) for n in new] == want and '体育场观' in want
  assert lexicon.unseen_proposals(lm, rows, [{}], lattices, hanzi, index, 10) == [
      [ids(p) for p in paths]]  # No beam: no rewrites.


@pytest.fixture(scope='module')
def bundle(untrained_bundle):
  """An untrained bundle on the fixture vocabularies, with a lexicon."""
  return untrained_bundle('lex', extensions=[lexicon.BundleLexicon(COUNTS)],
                          settings=bundle_lib.ConversionSettings(lm_weight=0.7, lexicon_paths=3,
                                                                 lexicon_edits=2))


def test_bundle_carries_a_checked_lexicon(bundle):
  loaded = bundle_lib.load_bundle(bundle)
  assert loaded.meta['lexicon']['words'] == len(COUNTS)
  assert loaded.settings.lm_weight == 0.7
  assert loaded.lexicon.score('体育场馆') == lexicon.WordLM(COUNTS).score('体育场馆')
  assert convert.Converter(bundle).settings.lm_weight == 0.7
  assert convert.Converter(bundle, lm_weight=0).settings.lm_weight == 0.0


def test_damaged_lexicon_is_a_checkpoint_error(bundle, tmp_path):
  import shutil
  bad = str(tmp_path / 'bad')
  shutil.copytree(bundle, bad)
  with open(os.path.join(bad, lexicon.ARRAYS_FILENAME), 'ab') as f:
    f.write(b'x')
  with pytest.raises(ckpt_lib.CheckpointError, match='lexicon.npz'):
    bundle_lib.load_bundle(bad)


def test_converter_ranks_by_model_plus_weighted_lexicon(bundle):
  plain = convert.Converter(bundle, lm_weight=0)
  cands = plain.candidates('shi jie', k=4)
  assert len(cands) >= 2
  last = cands[-1][0]  # The model's least likely of its 4 best ...
  conv = convert.Converter(bundle)
  conv.lexicon = lexicon.WordLM({last: 10**6, '的': 1})
  conv.settings = dataclasses.replace(conv.settings, lm_weight=5.0)
  assert conv.convert('shi jie') == last  # ... first once the lexicon knows it as a word.
  got = dict(conv.candidates('shi jie', k=4))
  want = dict((t, s + 5.0 * conv.lexicon.score(t)) for t, s in cands)
  assert got.keys() == want.keys()
  for t in got:
    assert got[t] == pytest.approx(want[t], rel=1e-4, abs=1e-4)


@pytest.mark.parametrize('paths,edits', [(4, 0), (0, 4)])
def test_converter_adds_the_lexicons_candidates_scored_by_the_model(bundle, paths, edits):
  beam = convert.Converter(bundle, lm_weight=0, lexicon_paths=0, lexicon_edits=0)
  cands = dict(beam.candidates('shi jie', k=4))
  assert len(cands) >= 2
  narrow = convert.Converter(bundle, beam_size=1, lm_weight=5.0, lexicon_paths=0,
                             lexicon_edits=0)
  top = narrow.convert('shi jie')
  other = next(t for t in cands if t != top)  # Not in the narrow beam's single candidate.
  conv = convert.Converter(bundle, beam_size=1, lm_weight=5.0, lexicon_paths=paths,
                           lexicon_edits=edits)
  # A lattice path, or a rewrite of the beam's best (`top`) whose span is the whole line.
  conv.lexicon = lexicon.WordLM({other: 10**6, '的': 1}, {other: ['shi', 'jie']})
  narrow.lexicon = conv.lexicon
  assert narrow.convert('shi jie') == top  # The beam alone never sees `other` ...
  got = dict(conv.candidates('shi jie', k=5))
  assert next(iter(got)) == other  # ... the lexicon proposes it and it wins,
  # scored by the model as the wide beam scored it, plus the weighted word score.
  assert got[other] == pytest.approx(cands[other] + 5.0 * conv.lexicon.score(other),
                                     rel=1e-4, abs=1e-4)
  assert top in got


def test_release_keeps_or_drops_the_source_lexicon(bundle, tmp_path):
  kept = release.install(bundle, str(tmp_path / 'kept'), lexicon='source')
  assert kept['lexicon']['words'] == len(COUNTS) and kept['settings']['lm_weight'] == 0.7
  assert (kept['settings']['lexicon_paths'], kept['settings']['lexicon_edits']) == (3, 2)
  assert convert.Converter(str(tmp_path / 'kept')).settings.lexicon_edits == 2
  assert bundle_lib.load_bundle(str(tmp_path / 'kept')).lexicon.has_readings
  assert 'lexicon_from' not in kept['provenance']  # The fixture bundle does not say.
  dropped = release.install(bundle, str(tmp_path / 'dropped'), lexicon='none')
  assert 'lexicon' not in dropped
  assert not os.path.exists(tmp_path / 'dropped' / lexicon.ARRAYS_FILENAME)


def test_bundle_carries_checked_bigrams_that_a_release_keeps(untrained_bundle, tmp_path):
  bigrams = lexicon.Bigrams({'体育\t场馆': 5}, {'体育': 5})
  path = untrained_bundle('bigrams', extensions=[lexicon.BundleLexicon(COUNTS, bigrams)])
  loaded = bundle_lib.load_bundle(path)
  assert loaded.meta['lexicon']['bigrams'] == 1
  assert loaded.lexicon.bigrams == bigrams
  kept = release.install(path, str(tmp_path / 'kept'), lexicon='source')
  assert kept['lexicon']['bigrams'] == 1
  assert bundle_lib.load_bundle(str(tmp_path / 'kept')).lexicon.bigrams == bigrams
  with open(os.path.join(path, lexicon.ARRAYS_FILENAME), 'ab') as f:
    f.write(b'x')
  with pytest.raises(ckpt_lib.CheckpointError, match='lexicon.npz'):
    bundle_lib.load_bundle(path)


def test_release_counts_bigrams_over_the_training_splits_only(bundle, tmp_path):
  from pyhanzi_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from pyhanzi_jax.data import vocab as vocab_lib  # pylint: disable=g-import-not-at-top
  data = os.path.join(os.path.dirname(__file__), 'fixtures', 'tiny_data')
  hanzi = bundle_lib.load_bundle(bundle).hanzi_vocab
  got = release.count_bigrams(COUNTS, hanzi, data, ('general',))
  texts = list(pipeline.load_split(data, 'general', 'train').texts(hanzi))
  assert got == lexicon.count_bigrams(lexicon.WordLM(COUNTS), texts)
  assert got.history[lexicon.START] >= len(texts)  # Every training sentence was counted.
  other = vocab_lib.Vocab(list(hanzi.tokens) + ['鑫'])
  with pytest.raises(ValueError, match='another character vocabulary'):
    release.count_bigrams(COUNTS, other, data)
  with pytest.raises(FileNotFoundError, match='--bigram-data none'):
    release.count_bigrams(COUNTS, hanzi, str(tmp_path))


def test_release_bigrams_keep_pairs_by_count_and_name_a_missing_corpus(bundle):
  data = os.path.join(os.path.dirname(__file__), 'fixtures', 'tiny_data')
  hanzi = bundle_lib.load_bundle(bundle).hanzi_vocab
  every = release.count_bigrams(COUNTS, hanzi, data, ('general', 'domain'), min_count=1)
  pruned = release.count_bigrams(COUNTS, hanzi, data, ('general', 'domain'), min_count=2)
  assert pruned.pairs == {k: v for k, v in every.pairs.items() if v >= 2}
  assert pruned.history == every.history  # Counted before pruning.
  # The release's default counts the newer registers too, which the fixture data lacks.
  with pytest.raises(FileNotFoundError, match='tech/train'):
    release.count_bigrams(COUNTS, hanzi, data)


def _cbpack(buckets: dict[int, list[str]]) -> bytes:
  import msgpack  # pylint: disable=g-import-not-at-top
  lists = [buckets.get(i, []) for i in range(max(buckets) + 1)]
  return gzip.compress(msgpack.packb([{'format': 'cB', 'version': 1}, *lists]))


def test_wordfreq_list_is_read_from_its_verified_wheel(tmp_path):
  """The cBpack buckets become counts per SCALE words; non-CJK and unwritable words are dropped;
  a damaged member is a clear error."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  import zipfile  # pylint: disable=g-import-not-at-top
  from pyhanzi_jax.data import sources  # pylint: disable=g-import-not-at-top
  downloads = tmp_path / 'downloads'
  downloads.mkdir()
  wheel = downloads / lexicon.WORDFREQ.filename
  with zipfile.ZipFile(wheel, 'w') as z:
    z.writestr(lexicon.WORDFREQ.members[0], _cbpack({0: ['的'], 100: ['体育', '00', 'ok'],
                                                    200: ['场馆', '鑫']}))
  source = dataclasses.replace(lexicon.WORDFREQ, sha256=sources.sha256_of(str(wheel)))
  counts = lexicon.word_counts(source, str(tmp_path), keep_chars='的体育场馆')
  assert counts == {'的': lexicon.SCALE, '体育': lexicon.SCALE // 10, '场馆': lexicon.SCALE // 100}
  with pytest.raises(ValueError, match='msgpack'):
    list(lexicon.parse_cbpack(b'not gzip', 'large_zh.msgpack.gz'))
  with pytest.raises(ValueError, match='cBpack'):
    list(lexicon.parse_cbpack(gzip.compress(__import__('msgpack').packb([{}, ['的']])), 'x'))
  # The pinned checksum guards the file itself: these bytes are not wordfreq's release.
  with pytest.raises(RuntimeError, match='sha256'):
    lexicon.word_counts(lexicon.WORDFREQ, str(tmp_path))


def test_mix_is_the_mean_of_the_lists_probabilities():
  a, b = {'体育': 30, '场馆': 10}, {'体育': 1, '观': 3}
  mixed = lexicon.mix(a, b)
  assert set(mixed) == {'体育', '场馆', '观'}
  total = sum(mixed.values())
  assert mixed['体育'] / total == pytest.approx((0.75 + 0.25) / 2, rel=1e-6)
  assert mixed['场馆'] / total == pytest.approx(0.25 / 2, rel=1e-6)
  assert mixed['观'] / total == pytest.approx(0.75 / 2, rel=1e-6)
  with pytest.raises(ValueError, match='jieba\\+wordfreq'):
    lexicon.source_counts('jeiba', '/nonexistent')


# --- User words --------------------------------------------------------------------------------

def test_user_word_file_is_read_with_or_without_pinyin(tmp_path):
  path = tmp_path / 'words.txt'
  path.write_text('# names\n\n耶和华 ye he hua\n以色列\n重庆\tchong qing\n', encoding='utf-8')
  assert lexicon.read_user_words(str(path)) == [('耶和华', 'ye he hua'), ('以色列', ''),
                                                ('重庆', 'chong qing')]
  path.write_text('耶和华\nyehehua\n', encoding='utf-8')
  with pytest.raises(ValueError, match=r'words.txt:2: a user word is two or more Chinese'):
    lexicon.read_user_words(str(path))


def test_user_bonus_counts_characters_of_user_words_longest_first():
  lm = lexicon.WordLM(COUNTS).with_words({'体育场': ['ti', 'yu', 'chang'],
                                          '场馆': ['chang', 'guan']}, bonus=2.0)
  assert lm.user_bonus('体育场馆') == 2.0 * 3  # 体育场, then 馆 alone: no overlap.
  assert lm.user_bonus('场馆场馆') == 2.0 * 4
  assert lm.user_bonus('体育') == 0.0
  assert lexicon.WordLM(COUNTS).user_bonus('体育场') == 0.0
  # Each is as frequent as the list's most frequent word, so first for its reading.
  assert lm.counts['场馆'] == max(COUNTS.values())
  assert lm.by_reading[('chang', 'guan')][0][1] == '场馆'


@pytest.mark.parametrize('with_lexicon', [True, False])
def test_user_words_win_where_their_pinyin_is_typed(bundle, untrained_bundle, with_lexicon):
  path = bundle if with_lexicon else untrained_bundle('nolex')
  wide = convert.Converter(path, beam_size=8, lm_weight=0, lexicon_paths=0, lexicon_edits=0)
  cands = dict(wide.candidates('shi jie', k=8))
  narrow = convert.Converter(path, beam_size=1, lm_weight=0, lexicon_paths=0, lexicon_edits=0)
  top = narrow.convert('shi jie')
  word = list(cands)[-1]  # The model's least likely of its 8 best, never the narrow beam's.
  assert word != top
  conv = convert.Converter(path, beam_size=1, lm_weight=0, user_words=[(word, 'shi jie')])
  got = dict(conv.candidates('shi jie', k=3))
  assert next(iter(got)) == word  # Proposed by the lattice, then ranked first by its bonus:
  assert got[word] == pytest.approx(cands[word] + 2 * lexicon.USER_BONUS, rel=1e-4, abs=1e-4)
  assert conv.convert('ni hao') == narrow.convert('ni hao')  # Elsewhere nothing changes.


def test_user_words_that_cannot_be_used_are_named(bundle):
  with pytest.raises(lexicon.UserWordError, match='two or more characters'):
    convert.Converter(bundle, user_words=['世'])
  with pytest.raises(lexicon.UserWordError, match=r"cannot write '鑫'"):
    convert.Converter(bundle, user_words=['世鑫'])
  with pytest.raises(lexicon.UserWordError, match='is not 2 syllables'):
    convert.Converter(bundle, user_words=[('世界', 'shi')])
  with pytest.raises(lexicon.UserWordError, match=r"'界' is not read 'jia'"):
    convert.Converter(bundle, user_words=[('世界', 'shi jia')])


def test_cli_user_words_file_and_its_errors(bundle, tmp_path, capsys):
  good = tmp_path / 'good.txt'
  good.write_text('世界 shi jie\n', encoding='utf-8')
  assert cli.main(['--model', bundle, '--user-words', str(good), 'shi jie']) == 0
  assert capsys.readouterr().out.strip() == '世界'
  bad = tmp_path / 'bad.txt'
  bad.write_text('世界 shi jia\n', encoding='utf-8')
  assert cli.main(['--model', bundle, '--user-words', str(bad), 'shi jie']) == 2
  assert "'界' is not read 'jia'" in capsys.readouterr().err
  assert cli.main(['--model', bundle, '--user-words', str(tmp_path / 'none.txt'),
                       'shi jie']) == 2
  assert 'No such file' in capsys.readouterr().err
