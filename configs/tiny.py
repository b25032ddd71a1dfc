r"""Tiny: seconds on a laptop CPU, on the fixture corpus shipped in tests/fixtures.

The tests and the README quick start use it; it runs the same code path as a pod run.

  python -m pyhanzi_jax.main --config=configs/tiny.py --workdir=runs/tiny
"""
import os

from pyhanzi_jax import config_defaults

_FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        'tests', 'fixtures', 'tiny_data')


def get_config():
  c = config_defaults.get_config()
  c.data.dir = _FIXTURE
  c.data.eval_corpora = 'general,domain'
  c.data.max_len = 48
  c.data.length_buckets = '16,32'
  c.model.emb_dim = 64
  c.model.num_heads = 2
  c.model.enc_layers = 2
  c.model.dec_layers = 2
  c.model.mlp_dim = 128
  c.model.dropout_rate = 0.0
  c.model.max_len = 64
  c.optim.learning_rate = 3e-3
  c.optim.warmup_steps = 20
  c.optim.label_smoothing = 0.0
  c.train.batch_size = 16
  c.train.num_steps = 200
  c.train.log_every = 20
  c.train.eval_every = 100
  c.train.eval_batches = 4
  c.train.eval_decode_sentences = 32
  c.train.checkpoint_every = 100
  c.train.keep_checkpoints = 2
  return c
