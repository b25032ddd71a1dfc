"""Installing a release model, and the release model shipped in pyhanzi_jax/release."""
import dataclasses
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import convert
from pyhanzi_jax import model as model_lib
from pyhanzi_jax import release

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.isfile(os.path.join(release.RELEASE_DIR, 'bundle.json'))


@pytest.fixture(scope='module')
def source_bundle(untrained_bundle):
  """An untrained float32 bundle on the fixture vocabularies (installing needs no training)."""
  return untrained_bundle('src')


def test_install_writes_a_checked_float16_bundle(source_bundle, tmp_path):
  dest = str(tmp_path / 'release')
  meta = release.install(source_bundle, dest, lexicon='none')
  assert meta['params_dtype'] == 'float16' and meta['provenance']['from'] == 'a test'
  assert len(meta['smoke'][release.SMOKE_INPUT]) == 4  # One character per syllable.
  assert not os.path.exists(dest + '.tmp')
  src = bundle_lib.load_bundle(source_bundle).params
  got = bundle_lib.load_bundle(dest).params
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4), src, got)
  size = sum(os.path.getsize(os.path.join(dest, f)) for f in os.listdir(dest))
  assert size < 0.6 * sum(os.path.getsize(os.path.join(source_bundle, f))
                          for f in os.listdir(source_bundle))


def test_install_of_a_missing_source_is_a_clear_error(tmp_path, capsys):
  assert release.main([str(tmp_path / 'nope'), '--dest', str(tmp_path / 'out')]) == 1
  assert 'does not exist' in capsys.readouterr().err
  assert not os.path.exists(tmp_path / 'out')


def test_install_mixes_the_source_with_a_base(source_bundle, tmp_path, capsys):
  src = bundle_lib.load_bundle(source_bundle)
  moved = jax.tree.map(lambda x: np.asarray(x, np.float32) + 1.0, src.params)
  later = bundle_lib.export_bundle(str(tmp_path / 'later'), moved, src.model_config,
                                   src.pinyin_vocab, src.hanzi_vocab, max_len=64,
                                   dtype='float32', provenance={'from': 'trained further'})
  dest = str(tmp_path / 'mixed')
  meta = release.install(later, dest, dtype='float32', lexicon='none', mix_base=source_bundle,
                         mix=0.25)
  got = bundle_lib.load_bundle(dest).params
  jax.tree.map(lambda a, b: np.testing.assert_allclose(b, np.asarray(a) + 0.25, atol=1e-6),
               src.params, got)
  assert meta['provenance']['mixed'] == {'base': 'a test', 'base_path': source_bundle,
                                         'mix': 0.25}
  # Installed again (to ship it), it still says it is a mixture.
  again = release.install(dest, str(tmp_path / 'again'), dtype='float32', lexicon='none')
  assert again['provenance']['mixed'] == meta['provenance']['mixed']
  with pytest.raises(SystemExit):  # --mix alone would install the source unmixed.
    release.main([later, '--dest', str(tmp_path / 'no0'), '--lexicon', 'none', '--mix', '0.3'])
  assert '--mix needs --mix-base' in capsys.readouterr().err
  # Out of range, or a base of another shape: refused, nothing written.
  assert release.main([later, '--dest', str(tmp_path / 'no1'), '--lexicon', 'none',
                       '--mix-base', source_bundle, '--mix', '1.5']) == 1
  assert 'between 0 and 1' in capsys.readouterr().err
  other_config = dataclasses.replace(src.model_config, mlp_dim=src.model_config.mlp_dim * 2)
  other = bundle_lib.export_bundle(
      str(tmp_path / 'other'), model_lib.init_params(other_config, jax.random.key(1)),
      other_config, src.pinyin_vocab, src.hanzi_vocab, max_len=64, dtype='float32')
  assert release.main([later, '--dest', str(tmp_path / 'no2'), '--lexicon', 'none',
                       '--mix-base', other]) == 1
  assert 'other names or shapes' in capsys.readouterr().err
  assert not any(os.path.exists(tmp_path / d) for d in ('no0', 'no1', 'no2'))


def test_validation_metrics_are_those_of_the_chosen_step(tmp_path):
  rows = [{'step': 500, 'general/char_acc': 0.5, 'train/loss': 2.0},
          {'step': 1000, 'train/loss': 1.0},
          {'step': 1000, 'general/char_acc': 0.7, 'domain/char_acc': 0.6}]
  (tmp_path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
  assert release.validation_metrics(str(tmp_path), 1000) == {'general/char_acc': 0.7,
                                                             'domain/char_acc': 0.6}


# --- The shipped model ------------------------------------------------------------------------

needs_release = pytest.mark.skipif(not SHIPPED, reason='no release model installed')


@needs_release
def test_shipped_model_is_small_and_passes_its_checks():
  size = sum(os.path.getsize(os.path.join(release.RELEASE_DIR, f))
             for f in os.listdir(release.RELEASE_DIR))
  assert size < 50 * 2**20
  bundle = bundle_lib.load_bundle(release.RELEASE_DIR)  # Checksum, vocabularies, shapes.
  assert bundle.meta['params_dtype'] == 'float16'


@pytest.fixture(scope='module')
def shipped():
  return convert.Converter()  # No path: the release model.


@needs_release
@pytest.mark.parametrize('text,want', [
    ('ni hao shi jie', '你好世界'),
    ('women', '我们'),
    ('zhong guo ren min', '中国人民'),
    ('jin tian tian qi hen hao', '今天天气很好'),
    ('jintiantianqihenhao', '今天天气很好'),
])
def test_shipped_model_converts_common_phrases(shipped, text, want):
  assert shipped.convert(text) == want


@needs_release
def test_pyhanzi_uses_the_shipped_model_by_default():
  out = subprocess.run([sys.executable, '-m', 'pyhanzi_jax.cli', 'ni hao shi jie'],
                       capture_output=True, text=True, cwd=ROOT, timeout=300, check=True)
  assert out.stdout.strip() == '你好世界'
