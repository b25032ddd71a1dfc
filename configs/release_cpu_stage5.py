r"""The release model, CPU recipe, stage 5: another continuation (after configs/release_cpu_stage4.py).

Stage 4 still gained +1.3 points of general character accuracy on validation (docs/TRAINING.md).
This stage starts from stage 4's best checkpoint, again with a fresh warmup, peak 3e-4 and a new
data seed (5), for 5,000 steps (~1.3 h alone on 2 cores). It resumes by itself after any
interruption, so it can run across sessions; install the result only if it beats the shipped
model on validation:

  nohup python -m pyhanzi_jax.main --config=configs/release_cpu_stage5.py \
      --workdir=runs/release_cpu_stage5 > runs/release_cpu_stage5.log 2>&1 &
  python -m pyhanzi_jax.release runs/release_cpu_stage5
"""
from pyhanzi_jax import config_defaults


def get_config():
  c = config_defaults.load_sibling('release_cpu_stage4', __file__)
  c.seed = 5
  c.optim.init_from = 'runs/release_cpu_stage4'
  c.train.num_steps = 5000
  return c
