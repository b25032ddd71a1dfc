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


@pytest.fixture(scope='module')
def with_lexicon(untrained_bundle):
  bigrams = lexicon.Bigrams({'世界\t是': 3}, {'世界': 3})
  return untrained_bundle('typed', settings=SETTINGS,
                          extensions=[lexicon.BundleLexicon(COUNTS, bigrams)],
                          provenance={'from': 'a test', 'validation': {'general/greedy_char_acc':
                                                                       0.5}})


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
                                            lexicon.FILENAME, lexicon.BIGRAMS_FILENAME])
  assert b.lexicon.counts == COUNTS and b.lexicon.bigrams.pairs == {'世界\t是': 3}
  assert b.meta['provenance']['from'] == 'a test'


def test_format_1_bundles_are_migrated(with_lexicon, tmp_path):
  """A bundle.json as format 1 wrote it (settings and checksums inside the lexicon section,
  provenance at the top, the trainer's greedy metric named char_acc) loads as the same bundle."""
  def to_v1(meta):
    files, s = meta['files'], meta['settings']
    return {'format': 1, 'model': meta['model'], 'params_dtype': meta['params_dtype'],
            'params_sha256': files['params.npz'], 'num_params': meta['num_params'],
            'pinyin_vocab': bundle_lib.load_bundle(with_lexicon).pinyin_vocab.fingerprint(),
            'hanzi_vocab': bundle_lib.load_bundle(with_lexicon).hanzi_vocab.fingerprint(),
            'lexicon': {'sha256': files[lexicon.FILENAME], 'words': len(COUNTS),
                        'lm_weight': s['lm_weight'], 'paths': s['lexicon_paths'],
                        'edits': s['lexicon_edits'], 'bigrams': 1,
                        'bigrams_sha256': files[lexicon.BIGRAMS_FILENAME]},
            'from': 'a test', 'max_len': 64, 'validation': {'general/char_acc': 0.5}}
  old = _edit_meta(with_lexicon, str(tmp_path / 'v1'), to_v1)
  b = bundle_lib.load_bundle(old)
  # Format 1 had no beam or bonus setting: the converter's defaults.
  assert b.settings == bundle_lib.ConversionSettings(lm_weight=0.4, lexicon_paths=2,
                                                     lexicon_edits=1)
  assert b.lexicon.bigrams.pairs == {'世界\t是': 3}
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


@pytest.mark.parametrize('name', ['params.npz', 'hanzi.txt', lexicon.BIGRAMS_FILENAME])
def test_a_changed_file_fails_its_checksum(with_lexicon, tmp_path, name):
  bad = str(tmp_path / 'bad')
  shutil.copytree(with_lexicon, bad)
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
    (lexicon.FILENAME, lambda p: open(p, 'wb').write(b'\x1f\x8b\x08\x00garbage'),
     'its lexicon is unreadable'),
])
def test_a_damaged_file_with_a_matching_checksum_is_one_clear_error(with_lexicon, tmp_path, name,
                                                                    write, message):
  bad = _rewrite(with_lexicon, str(tmp_path / 'bad'), name, write)
  with pytest.raises(bundle_lib.BundleError, match=message):
    bundle_lib.load_bundle(bad)


@pytest.mark.parametrize('edit,message', [
    (lambda m: dict(m, files={k: v for k, v in m['files'].items() if k != 'hanzi.txt'}),
     'no sha256 of hanzi.txt'),
    (lambda m: dict(m, files={k: v for k, v in m['files'].items() if k != lexicon.FILENAME}),
     f'no sha256 of {lexicon.FILENAME}'),
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
