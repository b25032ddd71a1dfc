r"""The release model, CPU recipe, stage 7: the next continuation (after configs/release_cpu_stage6.py).

Stage 6 gained +0.9 points of general character accuracy on validation and the curve still
rises by about a point per stage (docs/TRAINING.md). Same recipe, data seed 7, 5,000 steps
(~1.3 h alone on 2 cores), from the bundle that shipped stage 6 (pyhanzi_jax/release as of
commit 2a0d236, whose bundle.json says "from": "runs/release_cpu_stage6/best step 4000"); a
later release replaces that bundle, so to rerun this stage check out its files from that commit.
It resumes by itself after any interruption, so it can run across sessions. Install the
result only if it beats the shipped model on validation (general char_acc 0.8903), then
re-choose the word list's weight on held-out lines (docs/QUALITY.md):

  nohup nice -n 19 python -m pyhanzi_jax.main --config=configs/release_cpu_stage7.py \
      --workdir=runs/release_cpu_stage7 >> runs/release_cpu_stage7.log 2>&1 &
  python -m pyhanzi_jax.release runs/release_cpu_stage7
"""
from pyhanzi_jax import config_defaults


def get_config():
  c = config_defaults.load_sibling('release_cpu_stage5', __file__)
  c.seed = 7
  # The shipped bundle is stage 6's best checkpoint (float16 parameters, widened to float32 on
  # load), so this stage needs no earlier workdir: it runs from a fresh clone.
  c.optim.init_from = 'pyhanzi_jax/release'
  return c
