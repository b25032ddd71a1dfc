r"""Default configuration: the general corpus at the default model size.

  python -m pyhanzi_jax.main --config=configs/default.py --workdir=runs/default \
      --config.data.dir=data

The fields, one comment each, are in pyhanzi_jax/config_defaults.py.
"""
from pyhanzi_jax import config_defaults


def get_config():
  return config_defaults.get_config()
