"""The trainer on jitted steps: overfitting, compile-once, jit == pmap == 1 device, resume,
the learning rate with gradient accumulation."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import model as model_lib
from pyhanzi_jax import optim
from pyhanzi_jax import parallel
from pyhanzi_jax import train
from pyhanzi_jax.data import pipeline
from pyhanzi_jax.data import vocab as vocab_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny_config(**overrides):
  c = tiny.get_config()
  c.train.export_at_end = False
  c.train.eval_decode_sentences = 0
  c.train.best_metric = 'general/token_acc'
  for k, v in overrides.items():
    node = c
    *path, last = k.split('.')
    for p in path:
      node = node[p]
    node[last] = v
  return c


def _losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(l) for l in f]
  return {r['step']: r['train/loss'] for r in rows if 'train/loss' in r}


def _step_setup(config, n_sentences):
  """A jitted train step on the first `n_sentences` of the fixture, outside the full loop."""
  pv, hv = vocab_lib.load_vocabs(config.data.dir)
  mc = model_lib.ModelConfig.from_config(config.model, len(pv), len(hv))
  model = model_lib.Transformer(mc)
  split = pipeline.load_split(config.data.dir, 'general', 'train')
  idx = np.arange(n_sentences)
  src, tgt = split.rows(idx, 32)
  params = model_lib.init_params(mc, jax.random.key(0))
  tx, labels = optim.make_optimizer(config.optim, config.train.num_steps, params)
  state = train.TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params))
  return model, tx, labels, state, {'inputs': src, 'targets': tgt}


def _reference_token_losses(logits, targets, label_smoothing):
  """The textbook form: materialised log-softmax, autodiff through everything."""
  logp = jax.nn.log_softmax(logits)
  nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
  return (1.0 - label_smoothing) * nll - label_smoothing * logp.mean(axis=-1), nll


@pytest.mark.parametrize('label_smoothing', [0.0, 0.1])
def test_token_losses_and_gradients_match_the_reference(label_smoothing):
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.standard_normal((3, 5, 40)) * 4, jnp.float32)
  targets = jnp.asarray(rng.integers(0, 40, (3, 5)), jnp.int32)
  w_smoothed, w_nll = (jnp.asarray(rng.standard_normal((3, 5)), jnp.float32) for _ in range(2))

  def objective(fn):
    def f(logits):
      smoothed, nll = fn(logits, targets, label_smoothing)
      return (smoothed * w_smoothed).sum() + (nll * w_nll).sum()
    return jax.jit(jax.value_and_grad(f))

  value, grad = objective(train.token_losses)(logits)
  ref_value, ref_grad = objective(_reference_token_losses)(logits)
  np.testing.assert_allclose(value, ref_value, rtol=1e-5)
  np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)


def test_train_step_gradients_match_the_reference_loss():
  """The whole step's gradients (model included) with the fused loss equal autodiff's."""
  config = _tiny_config()
  model, _, _, state, batch = _step_setup(config, 8)

  def grads(token_losses):
    def loss(params):
      logits = model.apply({'params': params}, batch['inputs'], batch['targets'])
      smoothed, _ = token_losses(logits, batch['targets'], 0.1)
      return (smoothed * (batch['targets'] != 0)).sum()
    return jax.jit(jax.grad(loss))(state.params)

  got, want = grads(train.token_losses), grads(_reference_token_losses)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-5)


def test_target_is_max_agrees_with_argmax():
  rng = np.random.default_rng(1)
  logits = jnp.asarray(rng.standard_normal((4, 6, 30)), jnp.float32)
  targets = jnp.asarray(rng.integers(0, 30, (4, 6)), jnp.int32)
  targets = targets.at[0].set(logits[0].argmax(-1))  # Some hits.
  np.testing.assert_array_equal(train.target_is_max(logits, targets),
                                logits.argmax(-1) == targets)


def test_tiny_model_overfits_a_handful_of_pairs():
  config = _tiny_config(**{'optim.warmup_steps': 10, 'train.num_steps': 150})
  model, tx, labels, state, batch = _step_setup(config, 8)
  step = jax.jit(train.make_train_step(model, tx, labels, 0.0))
  rng = jax.random.key(1)
  first = None
  for _ in range(150):
    state, sums = step(state, batch, rng)
    nll = float(sums['nll_sum'] / sums['tokens'])
    first = nll if first is None else first
  assert first > 3.0, first  # Starts near log(vocab).
  assert nll < 0.05, f'loss {nll} after 150 steps on 8 pairs'
  assert float(sums['correct'] / sums['tokens']) == 1.0


def test_train_step_compiles_once():
  config = _tiny_config()
  model, tx, labels, state, batch = _step_setup(config, 8)
  traces = []
  fn = train.make_train_step(model, tx, labels, 0.0)

  def counted(*args):
    traces.append(1)  # Runs only while tracing.
    return fn(*args)

  step = jax.jit(counted, donate_argnums=(0,))
  rng = jax.random.key(0)
  for i in range(5):
    shifted = {k: np.roll(v, i, axis=0) for k, v in batch.items()}
    state, _ = step(state, shifted, rng)
  assert len(traces) == 1


def test_jit_and_pmap_on_8_devices_match_one_device(tmp_path):
  assert jax.device_count() == 8
  overrides = {'train.num_steps': 12, 'train.log_every': 1, 'train.eval_every': 1000,
               'train.checkpoint_every': 1000}
  jit_dir, pmap_dir, one_dir = (str(tmp_path / n) for n in ('jit', 'pmap', 'one'))
  train.train_and_evaluate(_tiny_config(**overrides), jit_dir)
  train.train_and_evaluate(_tiny_config(**overrides, **{'train.parallel': 'pmap'}), pmap_dir)
  # One device: a fresh process, since the device count is fixed when JAX starts.
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  args = [f'--config.{k}={v}' for k, v in overrides.items()] + [
      '--config.train.export_at_end=False', '--config.train.eval_decode_sentences=0',
      '--config.train.best_metric=general/token_acc']
  subprocess.run([sys.executable, '-m', 'pyhanzi_jax.main', '--config=configs/tiny.py',
                  f'--workdir={one_dir}', *args], cwd=ROOT, env=env, check=True,
                 capture_output=True)
  a, b, c = _losses(jit_dir), _losses(pmap_dir), _losses(one_dir)
  assert sorted(a) == list(range(1, 13))
  for s in a:
    np.testing.assert_allclose([b[s], c[s]], a[s], rtol=2e-4, err_msg=f'step {s}')
  assert a[12] < a[1]


def test_pmap_and_jit_steps_agree_with_accumulation():
  """With accumulation the pmap step sums the same loss and gradients as the jit step."""
  config = _tiny_config(**{'optim.grad_accum_steps': 2, 'optim.warmup_steps': 0})
  model, tx, labels, state, batch = _step_setup(config, 32)
  host_state = parallel.to_host(state)
  out = {}
  for kind in ('jit', 'pmap'):
    devices = parallel.data_parallel(kind, parallel.make_mesh())
    step = devices.compile(train.make_train_step(model, tx, labels, 0.0, 2, devices.axis_name))
    replicated = jax.device_put(host_state, parallel.replicated(parallel.make_mesh()))
    after, sums = step(devices.place_state(replicated), devices.place_batch(batch),
                       jax.random.key(0))
    out[kind] = parallel.to_host(devices.unreplicate((after, sums)))
  (a_state, a_sums), (b_state, b_sums) = out['jit'], out['pmap']
  assert int(a_state.step) == int(b_state.step) == 1
  assert float(a_sums['tokens']) == float(np.sum(batch['targets'] != vocab_lib.PAD))
  for k in a_sums:  # Loss, accuracy and the gradient's norm, over both micro-batches.
    np.testing.assert_allclose(a_sums[k], b_sums[k], rtol=1e-5, err_msg=k)


def _run(workdir, *extra, **kw):
  return subprocess.Popen(
      [sys.executable, '-m', 'pyhanzi_jax.main', '--config=configs/tiny.py', f'--workdir={workdir}',
       '--config.train.num_steps=60', '--config.train.checkpoint_every=5',
       '--config.train.eval_every=1000', '--config.train.export_at_end=False',
       '--config.train.eval_decode_sentences=0', '--config.train.best_metric=general/token_acc',
       *extra],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def _final_params(workdir):
  config = _tiny_config()
  pv, hv = vocab_lib.load_vocabs(config.data.dir)
  mc = model_lib.ModelConfig.from_config(config.model, len(pv), len(hv))
  abstract = jax.eval_shape(lambda: model_lib.init_params(mc, jax.random.key(0)))
  params, step, _ = ckpt_lib.restore_params_from_workdir(workdir, abstract)
  return params, step


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
  full, killed = str(tmp_path / 'full'), str(tmp_path / 'killed')
  p = _run(full)
  assert p.wait(timeout=300) == 0, p.stdout.read().decode()
  p = _run(killed)
  ckpt_dir = os.path.join(killed, 'checkpoints')
  deadline = time.time() + 240
  # Kill it hard once a checkpoint past step 10 exists and before it finishes.
  while time.time() < deadline:
    steps = [int(d) for d in os.listdir(ckpt_dir) if d.isdigit()] if os.path.isdir(ckpt_dir) else []
    if steps and max(steps) >= 10:
      break
    time.sleep(0.05)
  p.send_signal(signal.SIGKILL)
  p.wait()
  assert max(steps) < 60, 'the run finished before it could be killed'
  p = _run(killed)
  out = p.communicate(timeout=300)[0].decode()
  assert p.returncode == 0, out
  assert 'resumed from' in out
  a, sa = _final_params(full)
  b, sb = _final_params(killed)
  assert sa == sb == 60
  jax.tree.map(np.testing.assert_array_equal, a, b)
  # The steps redone after the resume are logged once (the killed run's later rows are dropped).
  with open(os.path.join(killed, 'metrics.jsonl')) as f:
    logged = [r['step'] for r in map(json.loads, f) if 'train/loss' in r]
  assert logged == [20, 40, 60], logged


def test_config_typo_is_a_clear_error():
  r = subprocess.run([sys.executable, '-m', 'pyhanzi_jax.main', '--config=configs/tiny.py',
                      '--workdir=/tmp/unused', '--config.train.nmu_steps=3'],
                     cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 2
  assert 'Did you mean "num_steps"' in r.stderr
  assert 'Traceback' not in r.stderr


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='a glibc tunable')
@pytest.mark.parametrize('opt_out', [False, True])
def test_main_runs_with_huge_page_malloc_unless_told_not_to(tmp_path, opt_out):
  # The config file runs in the job's process: it reports the tunables that process got.
  cfg = tmp_path / 'report.py'
  cfg.write_text('import os\nfrom pyhanzi_jax import config_defaults\n'
                 'def get_config():\n  c = config_defaults.get_config()\n'
                 "  c.mode = 'tunables=' + os.environ.get('GLIBC_TUNABLES', '')\n  return c\n")
  env = {k: v for k, v in os.environ.items() if k not in ('GLIBC_TUNABLES', 'PYHANZI_MALLOC')}
  if opt_out:
    env['PYHANZI_MALLOC'] = 'default'
  r = subprocess.run([sys.executable, '-m', 'pyhanzi_jax.main', f'--config={cfg}',
                      f'--workdir={tmp_path}'], cwd=ROOT, env=env, capture_output=True, text=True)
  assert r.returncode == 2 and "must be 'prepare', 'train' or 'evaluate'" in r.stderr
  assert ('glibc.malloc.hugetlb=1' in r.stderr) != opt_out


def test_missing_data_dir_is_a_clear_error(tmp_path):
  r = subprocess.run([sys.executable, '-m', 'pyhanzi_jax.main', '--config=configs/tiny.py',
                      f'--workdir={tmp_path}', f'--config.data.dir={tmp_path}/nothing'],
                     cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 1
  assert 'configs/prepare.py' in r.stderr and 'Traceback' not in r.stderr


def test_with_accumulation_the_last_step_applies_the_floor_rate_and_logs_it(tmp_path):
  """A trainer step is one optimizer update, so the schedule, built for num_steps updates, ends
  at its floor on the last step, and train/learning_rate is the rate that step applied."""
  steps, peak = 6, 3e-3
  config = _tiny_config(**{
      'optim.grad_accum_steps': 2, 'optim.warmup_steps': 2, 'optim.learning_rate': peak,
      'optim.schedule': 'cosine', 'optim.clip_norm': 0.0, 'train.num_steps': steps,
      'train.log_every': 1, 'train.eval_every': 1000, 'train.checkpoint_every': 1000})
  train.train_and_evaluate(config, str(tmp_path))
  with open(tmp_path / 'metrics.jsonl') as f:
    logged = {r['step']: r['train/learning_rate'] for r in map(json.loads, f)
              if 'train/learning_rate' in r}
  assert sorted(logged) == list(range(1, steps + 1))
  # The trainer's optimizer counted one update per step (Adam's count is its only int leaf).
  _, tx, _, state, _ = _step_setup(config, 8)
  checkpointer = ckpt_lib.Checkpointer(str(tmp_path), 2, config.train.best_metric)
  saved, _ = checkpointer.restore_latest(ckpt_lib.abstract_like(
      state, parallel.replicated(parallel.make_mesh())))
  checkpointer.close()
  counts = {int(x) for x in jax.tree.leaves(saved.opt_state) if x.dtype == jnp.int32}
  assert int(saved.step) == steps and counts == {steps}, counts

  # The rate each step applies, measured on the optimizer the trainer builds: under a constant
  # gradient of 1, Adam's bias-corrected direction is 1 / (1 + eps) at every update, so a leaf
  # without weight decay (1-d) moves by -learning_rate.
  params = state.params
  ones = jax.tree.map(jnp.ones_like, params)
  one_d = next(i for i, p in enumerate(jax.tree.leaves(params)) if p.ndim == 1)
  opt_state, applied, update = tx.init(params), [], jax.jit(tx.update)
  for _ in range(steps):  # One update per trainer step.
    updates, opt_state = update(ones, opt_state, params)
    applied.append(-float(jax.tree.leaves(updates)[one_d][0]))
  np.testing.assert_allclose(applied[-1], 0.05 * peak, rtol=1e-5)  # Cosine's floor: alpha * peak.
  np.testing.assert_allclose([logged[s] for s in range(1, steps + 1)], applied, rtol=1e-5)
