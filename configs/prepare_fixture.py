r"""Rebuild the committed tiny data (tests/fixtures/tiny_data) from tests/fixtures/corpus/*.txt.

  python -m pyhanzi_jax.main --config=configs/prepare_fixture.py \
      --workdir=tests/fixtures/tiny_data

The corpus files are small excerpts of the real sources (tests/fixtures/corpus/README.md);
configs/tiny.py trains on the result.
"""
import importlib.util
import os

_CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       'tests', 'fixtures', 'corpus')


def _prepare_config():
  # configs/ is not a package: load the sibling file by path, as config_flags does.
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'prepare.py')
  spec = importlib.util.spec_from_file_location('configs_prepare', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def get_config():
  c = _prepare_config()
  c.prepare.text_dir = _CORPUS  # general.txt, domain.txt, hsk.txt, cuv.txt.
  c.prepare.max_len = 48        # configs/tiny.py's data.max_len.
  c.prepare.split_min = 20      # Held-out splits of a few hundred sentences: 20 each.
  c.prepare.coverage = 1.0      # Every character of general/train; domain still has a few OOV.
  c.prepare.num_workers = 1     # Too little text to pay for worker processes.
  return c
