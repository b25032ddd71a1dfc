r"""Fine-tuning the tiny model on the fixture's domain corpus, encoder frozen (tests use it).

  python -m pyhanzi_jax.main --config=configs/tiny.py --workdir=runs/tiny
  python -m pyhanzi_jax.main --config=configs/finetune_tiny.py --workdir=runs/tiny_ft \
      --config.optim.init_from=runs/tiny
"""
from pyhanzi_jax import config_defaults


def get_config():
  c = config_defaults.load_sibling('tiny', __file__)
  c.data.train_corpus = 'domain'
  c.data.eval_corpora = 'domain,general'
  c.optim.init_from = 'runs/tiny'
  c.optim.frozen = 'encoder/.*'
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 10
  c.train.num_steps = 60
  c.train.eval_every = 60
  c.train.checkpoint_every = 60
  c.train.best_metric = 'domain/greedy_char_acc'
  return c
