"""Every config in configs/ builds, and a training config sets only fields the trainer knows."""
import glob
import os

import pytest

from pyhanzi_jax import config_defaults

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py')))


def _keys(cfg, prefix=''):
  out = set()
  for k, v in cfg.items():
    out |= _keys(v, f'{prefix}{k}.') if hasattr(v, 'items') else {prefix + k}
  return out


def test_there_are_configs():
  assert len(CONFIGS) >= 5


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_builds_without_unknown_fields(path):
  name = os.path.splitext(os.path.basename(path))[0]
  cfg = config_defaults.load_sibling(name, path)
  if 'train' not in cfg:  # A data-preparation config: configs/prepare*.py.
    assert 'prepare' in cfg, f'{name}: neither a training nor a preparation config'
    return
  # A field the defaults lack would be silently ignored by the trainer (a typo such as
  # num_stepz); the command line refuses those, and so must a config file.
  unknown = _keys(cfg) - _keys(config_defaults.get_config())
  assert not unknown, f'{name} sets fields the trainer does not read: {sorted(unknown)}'
  assert cfg.train.num_steps > 0
