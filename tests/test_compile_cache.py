"""Where compiled programs are kept between runs (compile_cache.py), and the opt-out."""
import os
import subprocess
import sys

import jax
import jaxlib
import pytest

from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import compile_cache
from pyhanzi_jax import decode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def jax_cache_config():
  """Restores JAX's cache settings that `enable` changes, so other tests compile as before."""
  names = ('jax_compilation_cache_dir', 'jax_persistent_cache_min_compile_time_secs',
           'jax_persistent_cache_min_entry_size_bytes')
  before = {n: getattr(jax.config, n) for n in names}
  executables = decode._EXECUTABLE_DIR['path']  # pylint: disable=protected-access
  shapes = bundle_lib._SHAPE_DIR['path']  # pylint: disable=protected-access
  yield
  for n, v in before.items():
    jax.config.update(n, v)
  decode.set_executable_dir(executables)
  bundle_lib.set_shape_dir(shapes)


def test_the_default_directory_is_per_user_and_can_be_moved(monkeypatch, tmp_path):
  monkeypatch.delenv(compile_cache.ENV, raising=False)
  monkeypatch.delenv('XDG_CACHE_HOME', raising=False)
  monkeypatch.setenv('HOME', str(tmp_path))
  assert compile_cache.default_dir() == str(tmp_path / '.cache' / 'pyhanzi_jax' / 'jax')
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
  assert compile_cache.default_dir() == str(tmp_path / 'xdg' / 'pyhanzi_jax' / 'jax')
  monkeypatch.setenv(compile_cache.ENV, str(tmp_path / 'mine'))
  assert compile_cache.default_dir() == str(tmp_path / 'mine')


def test_each_jax_release_gets_its_own_directory(tmp_path):
  """An upgrade never reads the entries of the version before (JAX's own key also holds the
  jaxlib version and the program)."""
  path = compile_cache.versioned_dir(str(tmp_path))
  assert os.path.dirname(path) == str(tmp_path)
  assert jax.__version__ in os.path.basename(path)
  assert jaxlib.__version__ in os.path.basename(path)


def test_enable_keeps_executables_in_the_versioned_directory(tmp_path, jax_cache_config):  # pylint: disable=unused-argument
  before = jax.config.jax_compilation_cache_dir
  path = compile_cache.enable(str(tmp_path / 'c'))
  assert path == compile_cache.versioned_dir(str(tmp_path / 'c'))
  executables = os.path.join(path, compile_cache.EXECUTABLES)
  assert os.path.isdir(executables)
  assert decode._EXECUTABLE_DIR['path'] == executables  # pylint: disable=protected-access
  assert bundle_lib._SHAPE_DIR['path'] == os.path.join(path, compile_cache.SHAPES)  # pylint: disable=protected-access
  # JAX's own cache stays off: executables read from it serialize without their code.
  assert jax.config.jax_compilation_cache_dir == before


@pytest.mark.parametrize('off', ['', 'off', 'OFF', '0', ' '])
def test_the_cache_can_be_turned_off(off, monkeypatch, tmp_path, jax_cache_config):  # pylint: disable=unused-argument
  compile_cache.enable(str(tmp_path / 'on'))
  assert compile_cache.enable(off) is None
  assert decode._EXECUTABLE_DIR['path'] is None  # pylint: disable=protected-access
  assert bundle_lib._SHAPE_DIR['path'] is None  # pylint: disable=protected-access
  monkeypatch.setenv(compile_cache.ENV, off)
  assert compile_cache.enable() is None
  assert decode._EXECUTABLE_DIR['path'] is None  # pylint: disable=protected-access


def test_a_directory_that_cannot_be_made_leaves_the_cache_off(tmp_path, jax_cache_config):  # pylint: disable=unused-argument
  blocker = tmp_path / 'file'
  blocker.write_text('not a directory')
  assert compile_cache.enable(str(blocker)) is None
  assert decode._EXECUTABLE_DIR['path'] is None  # pylint: disable=protected-access


@pytest.mark.slow
def test_pyhanzi_keeps_its_programs_and_reuses_them(untrained_bundle, tmp_path):
  """Two runs of the command with one cache: the first writes entries, the second converts the
  same from them and adds none; --compile-cache '' writes nothing."""
  model = untrained_bundle('cached')
  env = dict(os.environ)
  env.pop(compile_cache.ENV, None)

  def run(*flags):
    return subprocess.run([sys.executable, '-m', 'pyhanzi_jax.cli', '--model', model, *flags,
                           'shi jie'], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=True)
  cache = str(tmp_path / 'cache')
  first = run('--compile-cache', cache)
  entries = os.listdir(compile_cache.versioned_dir(cache))
  assert entries and first.stderr == ''
  second = run('--compile-cache', cache)
  assert second.stdout == first.stdout and second.stderr == ''
  assert sorted(os.listdir(compile_cache.versioned_dir(cache))) == sorted(entries)
  env[compile_cache.ENV] = str(tmp_path / 'env')
  run('--compile-cache', '')
  assert not os.path.exists(tmp_path / 'env')
  run()
  assert os.listdir(compile_cache.versioned_dir(str(tmp_path / 'env')))
