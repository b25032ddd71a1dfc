r"""Rebuild the committed tiny data (tests/fixtures/tiny_data) from tests/fixtures/corpus/*.txt.

  python -m pyhanzi_jax.main --config=configs/prepare_fixture.py \
      --workdir=tests/fixtures/tiny_data

The corpus files are small excerpts of the real sources (tests/fixtures/corpus/README.md);
configs/tiny.py trains on the result.
"""
import os

from pyhanzi_jax import config_defaults

_CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       'tests', 'fixtures', 'corpus')


def get_config():
  c = config_defaults.load_sibling('prepare', __file__)
  c.prepare.text_dir = _CORPUS  # general.txt, domain.txt, hsk.txt, cuv.txt.
  c.prepare.max_len = 48        # configs/tiny.py's data.max_len.
  c.prepare.split_min = 20      # Held-out splits of a few hundred sentences: 20 each.
  c.prepare.coverage = 1.0      # Every character of general/train; domain still has a few OOV.
  c.prepare.num_workers = 1     # Too little text to pay for worker processes.
  return c
