r"""The release model, CPU recipe, stage 3: a longer continuation of stage 2 (configs/release_cpu.py).

Stage 2's validation curve was still rising at its end (docs/TRAINING.md). This stage starts
from stage 2's best checkpoint with a fresh warmup and a 5,000-step cosine (~1.4 h alone on
2 cores), on the same general + domain mixture. (Planned as 12,000 steps; shortened to 6,000 at
step 500 and to 5,000 at step 1,689, so that it ends within one session; the learning rate only
steps down at each change.) It resumes by itself, so it can be run across
several sessions; install the result when it beats the shipped model on docs/QUALITY.md:

  nohup python -m pyhanzi_jax.main --config=configs/release_cpu_long.py \
      --workdir=runs/release_cpu_long > runs/release_cpu_long.log 2>&1 &
  python -m pyhanzi_jax.release runs/release_cpu_long
"""
from pyhanzi_jax import config_defaults


def get_config():
  c = config_defaults.load_sibling('release_cpu', __file__)
  c.optim.init_from = 'runs/release_cpu'
  c.optim.learning_rate = 5e-4
  c.optim.warmup_steps = 200
  c.train.num_steps = 5000
  c.train.eval_every = 1000
  return c
