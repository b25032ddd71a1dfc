"""Test-session setup: 8 fake CPU devices, so every test runs the data-parallel code path."""
import os
import sys

# Must happen before jax is imported anywhere.
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)


import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope='session')
def untrained_bundle(tmp_path_factory):
  """export(name, **bundle.export_bundle kwargs) -> an untrained float32 bundle of a tiny model
  on the fixture vocabularies (for tests of bundles, releases and the converter that need no
  training)."""
  import jax  # pylint: disable=g-import-not-at-top
  from pyhanzi_jax import bundle as bundle_lib  # pylint: disable=g-import-not-at-top
  from pyhanzi_jax import model as model_lib  # pylint: disable=g-import-not-at-top
  from pyhanzi_jax.data import vocab as vocab_lib  # pylint: disable=g-import-not-at-top

  pinyin_vocab, hanzi_vocab = vocab_lib.load_vocabs(os.path.join(ROOT, 'tests', 'fixtures',
                                                                 'tiny_data'))
  config = model_lib.ModelConfig(len(pinyin_vocab), len(hanzi_vocab), emb_dim=32, num_heads=2,
                                 enc_layers=1, dec_layers=1, mlp_dim=64)
  params = model_lib.init_params(config, jax.random.key(0))

  def export(name, **kwargs):
    out = str(tmp_path_factory.mktemp(name) / 'bundle')
    kwargs = {'max_len': 64, 'dtype': 'float32', 'provenance': {'from': 'a test'}, **kwargs}
    return bundle_lib.export_bundle(out, params, config, pinyin_vocab, hanzi_vocab, **kwargs)
  return export


@pytest.fixture(scope='module')
def served():
  """`pyhanzi serve` with the release model on a free port (a server.ServerProcess: `.url`), one
  per test module; skips when the release model is absent."""
  from pyhanzi_jax import bundle as bundle_lib  # pylint: disable=g-import-not-at-top
  from pyhanzi_jax import server  # pylint: disable=g-import-not-at-top

  try:
    bundle_lib.default_model_path()
  except bundle_lib.BundleError as e:
    pytest.skip(str(e))
  with server.ServerProcess(['--port', '0', '--warmup-syllables', '0', '--timeout', '300'],
                            timeout_s=300) as proc:
    yield proc
