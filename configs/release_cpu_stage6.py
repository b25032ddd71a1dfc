r"""The release model, CPU recipe, stage 6: the next continuation (after configs/release_cpu_stage5.py).

Stage 5 gained +1.1 points of general character accuracy on validation and was still rising
(docs/TRAINING.md). Same recipe from stage 5's best checkpoint, data seed 6, 5,000 steps (~1.3 h
alone on 2 cores); it resumes by itself after any interruption, so it can run across sessions.
Install the result only if it beats the shipped model on validation:

  nohup python -m pyhanzi_jax.main --config=configs/release_cpu_stage6.py \
      --workdir=runs/release_cpu_stage6 > runs/release_cpu_stage6.log 2>&1 &
  python -m pyhanzi_jax.release runs/release_cpu_stage6
"""
from pyhanzi_jax import config_defaults


def get_config():
  c = config_defaults.load_sibling('release_cpu_stage5', __file__)
  c.seed = 6
  c.optim.init_from = 'runs/release_cpu_stage5'
  return c
