r"""The release model, CPU recipe, stage 4: one more continuation (after configs/release_cpu_long.py).

Stage 3's validation curve still rose at its end (docs/TRAINING.md), and train NLL stayed above
validation NLL, so the 8M-parameter model is not yet overfitting its ~1.2 epochs of text. This
stage starts from stage 3's best checkpoint with a lower peak learning rate and a new data seed:
stages 2 and 3 both used seed 0 and so began with the same batches; seed 4 gives another order.
About 1.1 h alone on 2 cores (planned as 5,000 steps; cut to 4,000 at step 456 so that it
ends within the session, which shared the CPU with other work); it resumes by itself:

  nohup python -m pyhanzi_jax.main --config=configs/release_cpu_stage4.py \
      --workdir=runs/release_cpu_stage4 > runs/release_cpu_stage4.log 2>&1 &
  python -m pyhanzi_jax.release runs/release_cpu_stage4
"""
from pyhanzi_jax import config_defaults


def get_config():
  c = config_defaults.load_sibling('release_cpu_long', __file__)
  c.seed = 4
  c.optim.init_from = 'runs/release_cpu_long'
  c.optim.learning_rate = 3e-4
  c.optim.warmup_steps = 200
  c.train.num_steps = 4000
  c.train.eval_every = 1000
  return c
