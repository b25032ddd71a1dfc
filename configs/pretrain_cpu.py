r"""Pretraining on the general corpus, sized for about 1.5 hours on a 2-core CPU.

About 8.3M parameters (d256, 3+3 layers). Less than one epoch fits in that time, so no dropout.
It resumes by itself: run the same command again after any interruption. This is stage 1 of
the release run; configs/release_cpu.py continues it and configs/finetune.py fine-tunes it.

  nohup python -m pyhanzi_jax.main --config=configs/pretrain_cpu.py \
      --workdir=runs/pretrain_cpu > runs/pretrain_cpu.log 2>&1 &
"""
from pyhanzi_jax import config_defaults


def get_config():
  c = config_defaults.get_config()
  c.data.dir = 'data'
  c.data.train_corpus = 'general'
  c.data.eval_corpora = 'general,domain'
  c.model.emb_dim = 256
  c.model.num_heads = 4
  c.model.enc_layers = 3
  c.model.dec_layers = 3
  c.model.mlp_dim = 1024
  c.model.dropout_rate = 0.0
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 500
  c.optim.schedule = 'cosine'
  c.optim.label_smoothing = 0.05
  c.train.batch_size = 64
  c.train.num_steps = 3000      # ~70 min at ~1,300 target tokens/s on 2 cores.
  c.train.log_every = 50
  c.train.eval_every = 500
  c.train.eval_batches = 10
  c.train.eval_decode_sentences = 256
  c.train.checkpoint_every = 250
  return c
