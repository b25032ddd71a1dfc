r"""Fine-tuning on the HK financial/legal domain with the encoder frozen.

Starts from a pretraining run's parameters (its best checkpoint) with fresh optimizer state and
the pretraining model settings; the encoder, its embedding included, gets no update and no
optimizer state (optax.partition with set_to_zero). The vocabulary is the pretrained one:
domain characters outside it are reported at preparation (manifest.json) and at start-up.

  python -m pyhanzi_jax.main --config=configs/finetune.py --workdir=runs/finetune \
      --config.optim.init_from=runs/pretrain_cpu

The variants compared in docs/FINETUNE.md, everything trainable and from scratch on domain:

  python -m pyhanzi_jax.main --config=configs/finetune.py --workdir=runs/finetune_all \
      --config.optim.init_from=runs/pretrain_cpu --config.optim.frozen=''
  python -m pyhanzi_jax.main --config=configs/finetune.py --workdir=runs/domain_scratch \
      --config.optim.init_from='' --config.optim.frozen=''
"""
from pyhanzi_jax import config_defaults


def get_config():
  c = config_defaults.load_sibling('pretrain_cpu', __file__)
  c.data.train_corpus = 'domain'
  c.data.eval_corpora = 'domain,general'
  c.optim.init_from = 'runs/pretrain_cpu'
  c.optim.frozen = 'encoder/.*'
  c.optim.learning_rate = 3e-4
  c.optim.warmup_steps = 100
  c.train.num_steps = 1500
  c.train.eval_every = 250
  c.train.best_metric = 'domain/greedy_char_acc'
  return c
