r"""The release model, CPU recipe, stage 2: continued training on general + domain text.

Stage 1 is configs/pretrain_cpu.py (3,000 steps on the general corpus, ~1.3 h on 2 cores).
This stage starts from its best checkpoint with a fresh warmup and cosine decay, and trains on
a mixture in which the small HK legal/financial corpus is repeated twice (~16% of sentences),
so one shipped model serves both kinds of text. All parameters train: on a single model that
must stay good on general text, the frozen-encoder fine-tune (configs/finetune.py) trades
general accuracy for domain accuracy (docs/FINETUNE.md), and the mixture avoids that trade.
It resumes by itself; then export and install the bundle:

  python -m pyhanzi_jax.main --config=configs/pretrain_cpu.py --workdir=runs/pretrain_cpu
  nohup python -m pyhanzi_jax.main --config=configs/release_cpu.py \
      --workdir=runs/release_cpu > runs/release_cpu.log 2>&1 &
  python -m pyhanzi_jax.release runs/release_cpu   # -> pyhanzi_jax/release/ (the default model)
"""
from pyhanzi_jax import config_defaults


def get_config():
  c = config_defaults.load_sibling('pretrain_cpu', __file__)
  c.data.train_corpus = 'general,domain*2'
  c.data.eval_corpora = 'general,domain'
  c.optim.init_from = 'runs/pretrain_cpu'
  c.optim.learning_rate = 7e-4
  c.optim.warmup_steps = 200
  c.train.num_steps = 3000      # ~1.1 h on 2 cores.
  c.train.eval_every = 500
  c.train.eval_decode_sentences = 256
  c.train.best_metric = 'general/char_acc'
  return c
