"""Inference bundles: the typed bundle.json, its format number and migration, its checks (every
way a bundle can be damaged is one BundleError naming the file)."""
import json
import os
import shutil

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import lexicon
from pyhanzi_jax.data import sources

COUNTS = {'世界': 50, '时节': 10, '是': 5, '世': 5, '界': 5}
SETTINGS = bundle_lib.ConversionSettings(beam_size=3, lm_weight=0.4, lexicon_paths=2,
                                         lexicon_edits=1, user_bonus=2.5)


BIGRAMS = lexicon.Bigrams({'世界\t是': 3, '<s>\t世界': 2, '是\t他': 1}, {'世界': 3, '<s>': 4, '是': 1})


class TsvLexicon:
  """The word list as bundles of format 2 and older carried it: lexicon.tsv.gz and
  bigrams.tsv.gz, a section without a version (pyhanzi adapt still writes it)."""
  name = lexicon.BundleLexicon.name

  def __init__(self, counts, bigrams=None):
    self.counts, self.bigrams = counts, bigrams

  def write(self, directory):
    lexicon.save(os.path.join(directory, lexicon.FILENAME), self.counts)
    files, section = [lexicon.FILENAME], {'words': len(self.counts)}
    if self.bigrams is not None:
      lexicon.save_bigrams(os.path.join(directory, lexicon.BIGRAMS_FILENAME), self.bigrams)
      files.append(lexicon.BIGRAMS_FILENAME)
      section['bigrams'] = len(self.bigrams.pairs)
    return files, section


@pytest.fixture(scope='module')
def with_lexicon(untrained_bundle):
  return untrained_bundle('typed', settings=SETTINGS,
                          extensions=[lexicon.BundleLexicon(COUNTS, BIGRAMS)],
                          provenance={'from': 'a test', 'validation': {'general/greedy_char_acc':
                                                                       0.5}})


@pytest.fixture(scope='module')
def with_tsv_lexicon(untrained_bundle, tmp_path_factory):
  """The same bundle as format 2 wrote it."""
  path = untrained_bundle('tsv', settings=SETTINGS, extensions=[TsvLexicon(COUNTS, BIGRAMS)],
                          provenance={'from': 'a test', 'validation': {'general/greedy_char_acc':
                                                                       0.5}})
  return _edit_meta(path, str(tmp_path_factory.mktemp('v2') / 'bundle'),
                    lambda m: dict(m, format=2))


def _edit_meta(src, dst, edit):
  shutil.copytree(src, dst)
  path = os.path.join(dst, 'bundle.json')
  with open(path, encoding='utf-8') as f:
    meta = json.load(f)
  meta = edit(meta)
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(meta, f)
  return dst


def test_settings_model_and_files_round_trip(with_lexicon):
  b = bundle_lib.load_bundle(with_lexicon)
  assert b.settings == SETTINGS
  assert b.model_config.emb_dim == 32 and b.max_len == 64
  assert b.meta['format'] == bundle_lib.BUNDLE_FORMAT
  assert sorted(b.meta['files']) == sorted(['params.npz', 'pinyin.txt', 'hanzi.txt',
                                            lexicon.ARRAYS_FILENAME])
  assert b.meta['lexicon'] == {'version': 2, 'words': len(COUNTS), 'bigrams': 3}
  assert b.lexicon.counts == COUNTS and b.lexicon.bigrams == BIGRAMS
  assert b.meta['provenance']['from'] == 'a test'


def test_the_word_list_arrays_load_as_the_word_list_that_was_written(with_lexicon,
                                                                       with_tsv_lexicon):
  """lexicon.npz gives the same counts, readings, bigrams, lattice edges and scores as the
  TSV files of format 2 (parsed) and as a WordLM built in memory."""
  arrays = bundle_lib.load_bundle(with_lexicon).lexicon
  tsv = bundle_lib.load_bundle(with_tsv_lexicon).lexicon
  assert tsv.counts == COUNTS and tsv.bigrams == BIGRAMS
  built = lexicon.WordLM(COUNTS, tsv.readings, BIGRAMS)
  assert dict(arrays.readings) == dict(tsv.readings) and arrays.readings['世界'] == ('shi', 'jie')
  assert dict(arrays.by_reading) == built.by_reading and arrays.max_reading == built.max_reading
  assert arrays.by_reading[('shi', 'jie')] == [(built.logp[w], w) for w in ('世界', '时节')]
  assert arrays.by_reading.get(('shi', 'shi')) is None
  assert arrays.logp == built.logp and arrays.max_word == built.max_word
  for text in ('世界是他', '时节世界', '是是', '他'):
    assert arrays.score(text) == built.score(text) == tsv.score(text)
    assert arrays.segment(text) == built.segment(text)
  assert arrays.bigrams.lookup('世界', '是') == (3, 3)
  assert arrays.bigrams.lookup('他', '是') == (0, 0)  # No history: the unigram probability.
  keys, options = ['shi', 'jie'], [['世', '是', '时'], ['界', '节']]
  assert arrays.paths(keys, options, 3) == built.paths(keys, options, 3)
  assert arrays.edits(keys, options, '是节', 3) == built.edits(keys, options, '是节', 3)
  user = arrays.with_words({'是界': ['shi', 'jie']})
  assert user.by_reading[('shi', 'jie')][0][1] == '是界' and user.bigrams == BIGRAMS


def test_word_list_readings_are_read_when_asked_for_and_checked(with_lexicon, tmp_path):
  """A converter does not hold the readings (only a new word list needs them); damaged, they
  are a clear ValueError when asked for."""
  bad = _rewrite(with_lexicon, str(tmp_path / 'bad'), lexicon.ARRAYS_FILENAME,
                 _lexicon_arrays(lambda a: dict(a, readings=a['readings'][:7])))
  lm = bundle_lib.load_bundle(bad).lexicon
  assert lm.score('世界是他') == bundle_lib.load_bundle(with_lexicon).lexicon.score('世界是他')
  with pytest.raises(ValueError, match='2 readings for 5 words'):
    lm.with_words({'是界': ['shi', 'jie']})


def test_the_word_list_arrays_are_the_same_bytes_every_time(tmp_path):
  a, b = str(tmp_path / 'a.npz'), str(tmp_path / 'b.npz')
  readings = {'世界': ('shi', 'jie'), '时节': ('shi', 'jie')}
  lexicon.save_arrays(a, COUNTS, readings, BIGRAMS)
  lexicon.save_arrays(b, dict(reversed(COUNTS.items())), dict(reversed(readings.items())),
                      lexicon.Bigrams(dict(reversed(BIGRAMS.pairs.items())), BIGRAMS.history))
  assert open(a, 'rb').read() == open(b, 'rb').read()
  with np.load(a, allow_pickle=False) as z:  # Plain integer arrays: nothing to execute.
    assert all(z[k].dtype.kind in 'ui' for k in z.files)
  with pytest.raises(ValueError, match='tab or line break'):
    lexicon.save_arrays(a, {'世\n界': 1}, {})


def test_a_release_of_a_format_2_bundle_writes_the_arrays(with_tsv_lexicon, tmp_path):
  from pyhanzi_jax import release  # pylint: disable=g-import-not-at-top
  meta = release.install(with_tsv_lexicon, str(tmp_path / 'new'), lexicon='source')
  assert meta['format'] == bundle_lib.BUNDLE_FORMAT and meta['lexicon']['version'] == 2
  new = bundle_lib.load_bundle(str(tmp_path / 'new'))
  old = bundle_lib.load_bundle(with_tsv_lexicon)
  assert new.lexicon.counts == COUNTS and new.lexicon.bigrams == BIGRAMS
  assert dict(new.lexicon.readings) == dict(old.lexicon.readings)
  assert new.settings == old.settings


def test_format_1_bundles_are_migrated(with_tsv_lexicon, tmp_path):
  """A bundle.json as format 1 wrote it (settings and checksums inside the lexicon section,
  provenance at the top, the trainer's greedy metric named char_acc) loads as the same bundle."""
  def to_v1(meta):
    files, s = meta['files'], meta['settings']
    return {'format': 1, 'model': meta['model'], 'params_dtype': meta['params_dtype'],
            'params_sha256': files['params.npz'], 'num_params': meta['num_params'],
            'pinyin_vocab': bundle_lib.load_bundle(with_tsv_lexicon).pinyin_vocab.fingerprint(),
            'hanzi_vocab': bundle_lib.load_bundle(with_tsv_lexicon).hanzi_vocab.fingerprint(),
            'lexicon': {'sha256': files[lexicon.FILENAME], 'words': len(COUNTS),
                        'lm_weight': s['lm_weight'], 'paths': s['lexicon_paths'],
                        'edits': s['lexicon_edits'], 'bigrams': 1,
                        'bigrams_sha256': files[lexicon.BIGRAMS_FILENAME]},
            'from': 'a test', 'max_len': 64, 'validation': {'general/char_acc': 0.5}}
  old = _edit_meta(with_tsv_lexicon, str(tmp_path / 'v1'), to_v1)
  b = bundle_lib.load_bundle(old)
  # Format 1 had no beam or bonus setting: the converter's defaults.
  assert b.settings == bundle_lib.ConversionSettings(lm_weight=0.4, lexicon_paths=2,
                                                     lexicon_edits=1)
  assert b.lexicon.bigrams == BIGRAMS and b.meta['lexicon']['version'] == 1
  assert b.meta['provenance']['validation'] == {'general/greedy_char_acc': 0.5}
  # A format 1 vocabulary that does not match its fingerprint is still caught.
  with open(os.path.join(old, 'hanzi.txt'), 'a', encoding='utf-8') as f:
    f.write('鑫\n')
  with pytest.raises(bundle_lib.BundleError, match='vocabulary files do not match'):
    bundle_lib.load_bundle(old)


@pytest.mark.parametrize('edit,message', [
    (lambda m: dict(m, format=99), 'bundle format 99'),
    (lambda m: [m], 'holds a list'),
    (lambda m: {k: v for k, v in m.items() if k != 'model'}, r"lacks \['model'\]"),
    (lambda m: dict(m, model=dict(m['model'], hidden=3)), r"unknown field\(s\) \['hidden'\]"),
    (lambda m: dict(m, model=dict(m['model'], dtype='float99')), "unknown dtype 'float99'"),
    (lambda m: dict(m, settings=dict(m['settings'], beam_size=0)), 'beam_size must be at '
     'least 1'),
    (lambda m: dict(m, settings=dict(m['settings'], lm_weight='high')), 'lm_weight must be a '
     'finite number'),
    (lambda m: {k: v for k, v in m.items() if k != 'files'}, r"lacks \['files'\]"),
    (lambda m: dict(m, files={}), 'must map each file'),
])
def test_an_edited_bundle_json_is_one_clear_error(with_lexicon, tmp_path, edit, message):
  bad = _edit_meta(with_lexicon, str(tmp_path / 'bad'), edit)
  with pytest.raises(bundle_lib.BundleError, match=message):
    bundle_lib.load_bundle(bad)


@pytest.mark.parametrize('name,tsv', [('params.npz', False), ('hanzi.txt', False),
                                      (lexicon.ARRAYS_FILENAME, False),
                                      (lexicon.FILENAME, True), (lexicon.BIGRAMS_FILENAME, True)])
def test_a_changed_file_fails_its_checksum(with_lexicon, with_tsv_lexicon, tmp_path, name, tsv):
  bad = str(tmp_path / 'bad')
  shutil.copytree(with_tsv_lexicon if tsv else with_lexicon, bad)
  with open(os.path.join(bad, name), 'ab') as f:
    f.write(b'x')
  with pytest.raises(bundle_lib.BundleError, match=f'{name} is missing or does not match'):
    bundle_lib.load_bundle(bad)


def test_parameter_shapes_must_match_the_model(with_lexicon, tmp_path):
  def wider(meta):
    return dict(meta, model=dict(meta['model'], mlp_dim=meta['model']['mlp_dim'] * 2))
  bad = _edit_meta(with_lexicon, str(tmp_path / 'bad'), wider)
  with pytest.raises(bundle_lib.BundleError, match='parameter shapes do not match'):
    bundle_lib.load_bundle(bad)


def test_export_replaces_a_bundle_atomically(untrained_bundle):
  path = untrained_bundle('again')
  b = bundle_lib.load_bundle(path)
  bundle_lib.export_bundle(path, b.params, b.model_config, b.pinyin_vocab, b.hanzi_vocab,
                           max_len=b.max_len, dtype='float32')
  assert not os.path.exists(path + '.tmp')
  again = bundle_lib.load_bundle(path)
  assert again.lexicon is None and again.settings == bundle_lib.ConversionSettings()
  for x, y in zip(jax.tree.leaves(b.params), jax.tree.leaves(again.params)):
    np.testing.assert_array_equal(x, y)


# --- Every way a bundle can be damaged is one clear error, before any use ----------------------

def _rewrite(src, dst, name, write):
  """A copy of the bundle with file `name` rewritten by write(path) and its checksum updated,
  as someone who edits a bundle by hand would: only the content is wrong."""
  shutil.copytree(src, dst)
  write(os.path.join(dst, name))
  meta_path = os.path.join(dst, 'bundle.json')
  with open(meta_path, encoding='utf-8') as f:
    meta = json.load(f)
  meta['files'][name] = sources.sha256_of(os.path.join(dst, name))
  with open(meta_path, 'w', encoding='utf-8') as f:
    json.dump(meta, f)
  return dst


def _params(transform):
  def write(path):
    with np.load(path) as z:
      flat = {k: z[k] for k in z.files}
    np.savez(path, **transform(flat))
  return write


def _truncate(path):
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


def _lexicon_arrays(transform):
  def write(path):
    with np.load(path) as z:
      arrays = {k: z[k] for k in z.files}
    with open(path, 'wb') as f:
      np.savez(f, **transform(arrays))
  return write


def _first(flat):
  return sorted(flat)[0]


@pytest.mark.parametrize('name, write, message', [
    ('params.npz', _truncate, r'params.npz is unreadable \(BadZipFile'),
    ('params.npz', _params(lambda f: {k: np.full_like(v, np.nan) for k, v in f.items()}),
     'has NaN or infinite values'),
    ('params.npz', _params(lambda f: dict(f, **{_first(f): np.full_like(f[_first(f)], np.inf)})),
     'has NaN or infinite values'),
    ('params.npz', _params(lambda f: dict(f, **{_first(f): f[_first(f)].astype(np.int32)})),
     'is int32, not a float array'),
    ('params.npz', _params(lambda f: dict(f, extra=np.zeros(3, np.float32))),
     r"parameter names do not match .*unexpected \['extra'\]"),
    ('params.npz', _params(lambda f: {k: v for k, v in f.items() if k != _first(f)}),
     'parameter names do not match .*missing'),
    ('params.npz', _params(lambda f: dict(f, **{_first(f): f[_first(f)][..., :1]})),
     'parameter shapes do not match'),
    ('params.npz', _params(lambda f: dict(f, **{_first(f): np.array([object()])})),
     'params.npz is unreadable'),
    ('hanzi.txt', lambda p: open(p, 'wb').write(b'\xff\xfe\n'), 'hanzi.txt is not a vocabulary'),
    ('pinyin.txt', lambda p: open(p, 'w').write('a\nb\n'), 'pinyin.txt is not a vocabulary'),
    (lexicon.ARRAYS_FILENAME, lambda p: open(p, 'wb').write(b'PK\x03\x04garbage'),
     'its lexicon is unreadable .*not a readable .npz'),
    (lexicon.ARRAYS_FILENAME, _truncate, 'its lexicon is unreadable'),
    (lexicon.ARRAYS_FILENAME, _lexicon_arrays(lambda a: dict(a, counts=a['counts'][:2])),
     'its lexicon is unreadable .*reading_words has an id past the 2 words'),
    (lexicon.ARRAYS_FILENAME, _lexicon_arrays(lambda a: dict(a, reading_words=a['reading_words']
                                                             + 100)),
     'reading_words has an id past'),
    (lexicon.ARRAYS_FILENAME, _lexicon_arrays(lambda a: dict(a, pair_starts=a['pair_starts'][:-1])),
     'pair_starts does not index'),
    (lexicon.ARRAYS_FILENAME, _lexicon_arrays(lambda a: dict(a, counts=a['counts'] * 0)),
     'a count is not positive'),
    (lexicon.ARRAYS_FILENAME, _lexicon_arrays(lambda a: dict(a, counts=a['counts'] * 0.5)),
     'counts is float64, not integers'),
    (lexicon.ARRAYS_FILENAME, _lexicon_arrays(lambda a: {k: v for k, v in a.items()
                                                         if k != 'words'}),
     r"lacks \['words'\]"),
    (lexicon.ARRAYS_FILENAME, _lexicon_arrays(lambda a: {k: v for k, v in a.items()
                                                         if k != 'pair_words'}),
     'only .* of the bigram arrays'),
])
def test_a_damaged_file_with_a_matching_checksum_is_one_clear_error(with_lexicon, tmp_path, name,
                                                                    write, message):
  bad = _rewrite(with_lexicon, str(tmp_path / 'bad'), name, write)
  with pytest.raises(bundle_lib.BundleError, match=message):
    bundle_lib.load_bundle(bad)


@pytest.mark.parametrize('edit,message', [
    (lambda m: dict(m, files={k: v for k, v in m['files'].items() if k != 'hanzi.txt'}),
     'no sha256 of hanzi.txt'),
    (lambda m: dict(m, files={k: v for k, v in m['files'].items()
                              if k != lexicon.ARRAYS_FILENAME}),
     f'no sha256 of {lexicon.ARRAYS_FILENAME}'),
    (lambda m: dict(m, lexicon=dict(m['lexicon'], version=3)),
     '"lexicon": lexicon version 3 is not one this version of pyhanzi reads'),
    (lambda m: dict(m, lexicon=dict(m['lexicon'], version=1)), f'no sha256 of {lexicon.FILENAME}'),
    (lambda m: dict(m, files=dict(m['files'], **{'../bundle.json': 'x'})), "'../bundle.json'"),
    (lambda m: dict(m, files=dict(m['files'], **{'params.npz': None})), 'sha256 strings'),
    (lambda m: dict(m, files=['params.npz']), 'must map each file'),
    (lambda m: dict(m, max_len='64'), 'max_len must be a whole number'),
    (lambda m: dict(m, max_len=1), 'max_len must be a whole number'),
    (lambda m: dict(m, model=dict(m['model'], num_heads=0)), 'num_heads=0 is out of range'),
    (lambda m: dict(m, model=dict(m['model'], emb_dim=-32, num_heads=2)), 'emb_dim=-32'),
    (lambda m: dict(m, model=dict(m['model'], param_dtype='int32')), "unknown dtype 'int32'"),
    (lambda m: dict(m, model=dict(m['model'], dropout_rate=2)), 'dropout_rate=2'),
    (lambda m: dict(m, model='big'), 'expected an object'),
    (lambda m: dict(m, settings=dict(m['settings'], beam_size=65)), 'beam_size must be at most'),
    (lambda m: dict(m, settings=dict(m['settings'], lexicon_paths=100000)), 'at most 64'),
    (lambda m: dict(m, settings=dict(m['settings'], lm_weight=float('nan'))), 'finite'),
    (lambda m: dict(m, settings=None), 'expected an object'),
    (lambda m: dict(m, lexicon=[]), '"lexicon": expected an object'),
])
def test_more_edits_of_bundle_json_are_one_clear_error(with_lexicon, tmp_path, edit, message):
  bad = _edit_meta(with_lexicon, str(tmp_path / 'bad'), edit)
  with pytest.raises(bundle_lib.BundleError, match=message):
    bundle_lib.load_bundle(bad)


def test_a_deeply_nested_bundle_json_is_unreadable_not_a_crash(with_lexicon, tmp_path):
  bad = str(tmp_path / 'bad')
  shutil.copytree(with_lexicon, bad)
  with open(os.path.join(bad, 'bundle.json'), 'w') as f:
    f.write('[' * 100000 + ']' * 100000)
  with pytest.raises(bundle_lib.BundleError, match='unreadable'):
    bundle_lib.load_bundle(bad)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) |
                     st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_edit_of_bundle_json_loads_or_is_a_bundle_error(with_lexicon, tmp_path_factory, data):
  """Fuzz: one field of bundle.json (or of its model, settings, files) replaced by any JSON
  value; load_bundle returns a usable bundle or raises BundleError, nothing else."""
  path = str(tmp_path_factory.mktemp('fuzz') / 'b')
  section = data.draw(st.sampled_from([None, 'model', 'settings', 'files', 'lexicon']))

  def edit(meta):
    target = meta if section is None else meta[section]
    key = data.draw(st.sampled_from(sorted(target) + ['new']))
    target[key] = data.draw(_JSON)
    return meta
  bad = _edit_meta(with_lexicon, path, edit)
  try:
    b = bundle_lib.load_bundle(bad)
  except bundle_lib.BundleError:
    return
  assert b.settings.beam_size >= 1 and b.max_len >= 2
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(b.params))


def test_model_shapes_are_kept_between_processes(with_lexicon, tmp_path, monkeypatch):
  bundle_lib.set_shape_dir(str(tmp_path / 'shapes'))
  try:
    traced = bundle_lib.load_bundle(with_lexicon)
    (saved,) = os.listdir(tmp_path / 'shapes')

    def no_trace(*args, **kwargs):
      raise AssertionError('traced the model again')
    monkeypatch.setattr(bundle_lib.model_lib, 'init_params', no_trace)
    kept = bundle_lib.load_bundle(with_lexicon)  # From the file: no trace.
    for a, b in zip(jax.tree.leaves(traced.params), jax.tree.leaves(kept.params)):
      np.testing.assert_array_equal(a, b)
    # The file's shapes are what the check uses: a wrong one refuses the bundle ...
    path = tmp_path / 'shapes' / saved
    good = json.loads(path.read_text())
    wrong = json.loads(path.read_text())
    name = sorted(wrong['shapes'])[0]
    wrong['shapes'][name] = [d + 1 for d in wrong['shapes'][name]]
    path.write_text(json.dumps(wrong))
    with pytest.raises(bundle_lib.BundleError, match='parameter shapes do not match'):
      bundle_lib.load_bundle(with_lexicon)
    # ... and a damaged or stale one is traced again and replaced.
    monkeypatch.undo()
    for damaged in ('{"key": "x"', json.dumps(dict(good, key='another'))):
      path.write_text(damaged)
      bundle_lib.load_bundle(with_lexicon)
      assert json.loads(path.read_text()) == good
  finally:
    bundle_lib.set_shape_dir(None)
