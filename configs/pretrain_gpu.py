r"""Pretraining on the general corpus for one GPU (or a TPU/GPU slice: the batch is global).

About 50M parameters (d512, 6+6 layers), bf16 computation with fp32 parameters.

  python -m pyhanzi_jax.main --config=configs/pretrain_gpu.py --workdir=runs/pretrain_gpu
"""
from pyhanzi_jax import config_defaults


def get_config():
  c = config_defaults.get_config()
  c.data.dir = 'data'
  c.data.eval_corpora = 'general,domain'
  c.model.emb_dim = 512
  c.model.num_heads = 8
  c.model.enc_layers = 6
  c.model.dec_layers = 6
  c.model.mlp_dim = 2048
  c.model.dropout_rate = 0.1
  c.model.dtype = 'bfloat16'
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 2000
  c.optim.label_smoothing = 0.05
  c.train.batch_size = 1024
  c.train.num_steps = 30000
  c.train.log_every = 100
  c.train.eval_every = 2000
  c.train.eval_decode_sentences = 1000
  c.train.checkpoint_every = 1000
  return c
