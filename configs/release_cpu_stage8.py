r"""The release model, CPU recipe, stage 8: a continuation at half the peak learning rate.

Stage 7 (configs/release_cpu_stage7.py) gained +0.45 points of general character accuracy on
validation, but spent its first ~2,500 steps climbing back from the warm restart to a peak of
3e-4 (0.8903 -> 0.8716 at step 1,000, back to 0.8895 at step 3,000; docs/TRAINING.md). This
stage halves the peak (1.5e-4, 100 warmup steps) so that less of it goes to recovering, with
data seed 8, 4,000 steps (~1 h alone on 2 cores), from the shipped bundle (stage 7's best,
float16; pyhanzi_jax/release as of commit 61dce47). Averaging the stage 6 and 7 bundles instead
(end-of-cycle snapshots) was measured first and lost on general and domain (docs/TRAINING.md).
Install the result only if it beats the shipped model on validation (general char_acc
0.8948), then re-choose the word list's weight on held-out lines (docs/QUALITY.md). Run in the
eighth session: 0.8945 at step 4,000, a tie, not installed (docs/TRAINING.md).

  nohup nice -n 19 python -m pyhanzi_jax.main --config=configs/release_cpu_stage8.py \
      --workdir=runs/release_cpu_stage8 >> runs/release_cpu_stage8.log 2>&1 &
  python -m pyhanzi_jax.release runs/release_cpu_stage8
"""
from pyhanzi_jax import config_defaults


def get_config():
  c = config_defaults.load_sibling('release_cpu_stage7', __file__)
  c.seed = 8
  c.optim.init_from = 'pyhanzi_jax/release'
  c.optim.learning_rate = 1.5e-4
  c.optim.warmup_steps = 100
  c.train.num_steps = 4000
  c.train.eval_every = 1000
  return c
