"""The multi-host path on one machine: 2 processes x 1 CPU device train exactly like 1 process x
2 devices, write one set of logs, and leave checkpoints a single process restores; launch/ scripts.

Processes talk over loopback only (coordinator at 127.0.0.1 on a free port). Every subprocess
has a timeout, so a hang (a process waiting at a barrier the others never reach) fails the test
instead of blocking CI.
"""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import config_defaults
from pyhanzi_jax import model as model_lib
from pyhanzi_jax import optim
from pyhanzi_jax import parallel
from pyhanzi_jax import train
from pyhanzi_jax.data import pipeline
from pyhanzi_jax.data import vocab as vocab_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 4
# The tiny config, shrunk to what the comparison needs: one length bucket (one compile of the
# train step), one validation batch on one corpus (the best checkpoint needs a validation).
OVERRIDES = {
    'train.num_steps': STEPS, 'train.log_every': 1, 'train.eval_every': 1000,
    'train.checkpoint_every': 1000, 'train.eval_batches': 1, 'train.eval_decode_sentences': 0,
    'train.best_metric': 'general/token_acc', 'train.export_at_end': False,
    'data.max_len': 32, 'data.length_buckets': '32', 'data.eval_corpora': 'general',
}
TIMEOUT_S = 240


def _flags(**extra):
  return [f'--config.{k}={v}' for k, v in {**OVERRIDES, **extra}.items()]


def _env(devices_per_process):
  env = {k: v for k, v in os.environ.items() if not k.startswith(('JAX_', 'XLA_', 'SLURM_'))}
  env.update(JAX_PLATFORMS='cpu', XLA_FLAGS=f'--xla_force_host_platform_device_count='
             f'{devices_per_process}', DEVICES_PER_PROCESS=str(devices_per_process))
  return env


def _start(args, env, log_path):
  # A session of its own, so a timeout can stop the launcher and every process under it.
  return subprocess.Popen(args, cwd=ROOT, env=env, stdout=open(log_path, 'wb'),
                          stderr=subprocess.STDOUT, start_new_session=True)


def _finish(p, log_path, what, want=0):
  try:
    rc = p.wait(timeout=TIMEOUT_S)
  except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    rc = f'timeout after {TIMEOUT_S} s (a hang?)'
  with open(log_path, 'rb') as f:
    out = f.read().decode(errors='replace')
  assert rc == want, f'{what} failed ({rc}):\n{out[-6000:]}'
  return out


def _losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(l) for l in f]
  steps = [r['step'] for r in rows if 'train/loss' in r]
  assert steps == sorted(set(steps)), f'steps logged more than once: {steps}'
  return np.array([r['train/loss'] for r in rows if 'train/loss' in r])


def _abstract_state(config):
  """Shapes of the TrainState, replicated over this (single) process' 8 devices."""
  pv, hv = vocab_lib.load_vocabs(config.data.dir)
  mc = model_lib.ModelConfig.from_config(config.model, len(pv), len(hv))
  def init():
    params = model_lib.init_params(mc, jax.random.key(0))
    tx, _ = optim.make_optimizer(config.optim, config.train.num_steps, params)
    return train.TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params))
  return ckpt_lib.abstract_like(jax.eval_shape(init), parallel.replicated(parallel.make_mesh()))


@pytest.mark.slow
def test_two_processes_train_like_one_process_with_two_devices(tmp_path):
  multi, single = str(tmp_path / 'multi'), str(tmp_path / 'single')
  logs = tmp_path / 'process_logs'
  # 2 processes x 1 device through the launcher (which also exports at the end: every process
  # takes part in that restore, only process 0 writes), and 1 process x 2 devices, side by side.
  env = dict(_env(1), LOG_DIR=str(logs))
  p_multi = _start(['bash', 'launch/local_multiprocess.sh', '2', 'configs/tiny.py',
                    f'--workdir={multi}', *_flags(**{'train.export_at_end': True})],
                   env, tmp_path / 'multi.log')
  p_single = _start([sys.executable, '-m', 'pyhanzi_jax.main', '--config=configs/tiny.py',
                     f'--workdir={single}', *_flags()], _env(2), tmp_path / 'single.log')
  out_multi = _finish(p_multi, tmp_path / 'multi.log', '2 processes x 1 device')
  out_single = _finish(p_single, tmp_path / 'single.log', '1 process x 2 devices')

  # The batch is global: the same 16 rows per step, split over processes or over devices.
  assert '2 processes, 2 devices: global batch 16, 8 rows per process, 8 per device' in out_multi
  assert '1 processes, 2 devices: global batch 16, 16 rows per process, 8 per device' in out_single
  assert 'connected to 1 peer ranks' in out_multi  # Cross-process collectives (gloo) were used.

  # Same losses, step by step.
  a, b = _losses(multi), _losses(single)
  assert len(a) == len(b) == STEPS
  np.testing.assert_allclose(a, b, rtol=1e-6)  # Bitwise equal here; a margin for other CPUs.
  assert a[-1] < a[0]

  # Only process 0 wrote logs, TensorBoard events, config.json and the export.
  assert len(glob.glob(os.path.join(multi, 'tensorboard', 'events.*'))) == 1
  assert os.path.isfile(os.path.join(multi, 'config.json'))
  assert 'step 4/4' not in (logs / 'process_1.log').read_text()  # No progress lines either.
  bundle = bundle_lib.load_bundle(os.path.join(multi, 'export'))
  assert bundle.meta['provenance']['from'].endswith('best step 4')

  # The 2-process checkpoint restores here, in one process with 8 devices: the whole state for
  # a resume, resharded, and the parameters alone; both equal the 1-process run's.
  config = tiny.get_config()
  checkpointer = ckpt_lib.Checkpointer(multi, 2, 'general/token_acc')
  state, step = checkpointer.restore_latest(_abstract_state(config))
  checkpointer.close()
  assert step == STEPS and int(state.step) == STEPS
  assert len(jax.tree.leaves(state.params)[0].sharding.device_set) == jax.device_count() == 8
  abstract_params = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                                 _abstract_state(config).params)
  p_multi, step_multi, _ = ckpt_lib.restore_params_from_workdir(multi, abstract_params)
  p_single, step_single, _ = ckpt_lib.restore_params_from_workdir(single, abstract_params)
  assert step_multi == step_single == STEPS
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7),
               p_multi, p_single)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), y),
               state.params, p_multi)


@pytest.mark.slow
def test_sigterm_to_one_process_stops_all_at_one_saved_step(tmp_path):
  """A preemption notice may reach one host only (or the hosts at different steps); a save is
  collective, so all must save the same step. jax.distributed's preemption service agrees on it."""
  workdir, logs = str(tmp_path / 'run'), tmp_path / 'process_logs'
  flags = _flags(**{'train.num_steps': 100000})
  env = dict(_env(1), LOG_DIR=str(logs))
  p = _start(['bash', 'launch/local_multiprocess.sh', '2', 'configs/tiny.py',
              f'--workdir={workdir}', *flags], env, tmp_path / 'run.log')
  log1 = logs / 'process_1.log'
  try:
    deadline = time.time() + TIMEOUT_S
    while not (log1.exists() and 'training steps' in log1.read_text()):
      assert p.poll() is None and time.time() < deadline, (tmp_path / 'run.log').read_text()
      time.sleep(0.5)
    time.sleep(3)  # Some steps in.
    pids = subprocess.run(['pgrep', '-f', 'distributed.process_id=1'], capture_output=True,
                          text=True).stdout.split()
    pid = next(int(q) for q in pids if workdir in open(f'/proc/{q}/cmdline').read())
    os.kill(pid, signal.SIGTERM)  # Process 1 only.
  except BaseException:
    os.killpg(p.pid, signal.SIGKILL)  # Never leave a 100,000-step run behind.
    raise
  # Preempted and saved: exit 75 (exit_codes.PREEMPTED), not 0, so a scheduler requeues it.
  out0 = _finish(p, tmp_path / 'run.log', 'the preempted run', want=75)
  saved = [int(m) for m in re.findall(r'SIGTERM: saved step (\d+)', out0 + log1.read_text())]
  assert len(saved) == 2 and saved[0] == saved[1] > 0, saved
  step = saved[0]
  # Saved once, by both (that a 2-process checkpoint restores is the test above's).
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == [str(step)]


def test_distributed_start_up_decisions(monkeypatch):
  """Single process: nothing happens; clusters are recognised from their environment; an
  incomplete explicit setup is a clear error before anything waits on a coordinator."""
  for k in list(os.environ):
    if k.startswith(('SLURM_', 'OMPI_', 'TPU_', 'MEGASCALE_')):
      monkeypatch.delenv(k)
  cfg = config_defaults.get_config().distributed
  if parallel.cluster_environment() == '':  # (A TPU VM running the tests would say 'tpu'.)
    parallel.maybe_initialize_distributed(cfg)  # 'auto' on a plain machine: a no-op.
    assert not jax.distributed.is_initialized()
    cfg.initialize = 'yes'
    with pytest.raises(ValueError, match='coordinator_address'):
      parallel.maybe_initialize_distributed(cfg)
  cfg.initialize, cfg.coordinator_address, cfg.num_processes, cfg.process_id = (
      'yes', '127.0.0.1:1', 2, 2)
  with pytest.raises(ValueError, match='process_id=2'):
    parallel.maybe_initialize_distributed(cfg)
  cfg.initialize = 'maybe'
  with pytest.raises(ValueError, match="'auto', 'yes' or 'no'"):
    parallel.maybe_initialize_distributed(cfg)
  monkeypatch.setenv('SLURM_JOB_ID', '7')
  monkeypatch.setenv('SLURM_NTASKS', '16')
  assert parallel.cluster_environment() in ('', 'tpu')  # sbatch's shell, not an srun step.
  monkeypatch.setenv('SLURM_STEP_NODELIST', 'gpu[01-02]')
  monkeypatch.setenv('SLURM_PROCID', '3')
  assert parallel.cluster_environment() == 'slurm'
  monkeypatch.setenv('SLURM_NTASKS', '1')  # One task: one process, nothing to start.
  assert parallel.cluster_environment() in ('', 'tpu')
  monkeypatch.setenv('TPU_WORKER_HOSTNAMES', 'w0,w1')
  assert parallel.cluster_environment() == 'tpu'


def test_processes_read_disjoint_rows_of_the_same_global_batch():
  """Row i of a global batch is the same sentence, abbreviated the same way, for any number of
  processes: the precondition for 2 x 1 == 1 x 2 (and for resuming on another topology)."""
  config = tiny.get_config()
  pinyin_vocab, _ = vocab_lib.load_vocabs(config.data.dir)
  split = pipeline.load_split(config.data.dir, 'general', 'train')
  def batches(index, count):
    return pipeline.TrainBatches(
        split, 16, pipeline.parse_buckets('16,32', 48), seed=3, process_index=index,
        process_count=count, abbrev=pipeline.AbbrevTable.from_vocab(pinyin_vocab),
        abbrev_prob=0.5, abbrev_syllable_prob=0.7)
  one, quarters = batches(0, 1), [batches(i, 4) for i in range(4)]
  abbreviated = 0
  for step in (0, 1, 7, 100):
    whole = one.batch(step)
    for k in ('inputs', 'targets'):
      np.testing.assert_array_equal(
          np.concatenate([q.batch(step)[k] for q in quarters]), whole[k], err_msg=f'{step} {k}')
    abbreviated += int((whole['inputs'] != one.split.rows(
        one._keep[one._chunk(step // one.chunk_batches)[step % one.chunk_batches]],
        whole['inputs'].shape[1])[0]).any())
  assert abbreviated  # The comparison covered abbreviated rows.


def test_local_launcher_stops_everyone_when_one_process_fails(tmp_path):
  """A process that fails must not leave the others waiting at a barrier forever."""
  fake = tmp_path / 'fake_python'
  fake.write_text('#!/usr/bin/env bash\n'
                  'case "$*" in *process_id=1*) sleep 1; exit 3 ;; esac\n'
                  'exec sleep 300\n')
  fake.chmod(0o755)
  env = dict(_env(1), PYTHON=str(fake), COORDINATOR_PORT='1', LOG_DIR=str(tmp_path))
  r = subprocess.run(['bash', 'launch/local_multiprocess.sh', '3', 'configs/tiny.py',
                      '--workdir=unused'], cwd=ROOT, env=env, capture_output=True, text=True,
                     timeout=60)
  assert r.returncode == 3, r.stderr
  assert 'process 1 exited with status 3' in r.stderr


def test_launch_scripts_parse():
  for script in ('slurm_gpu.sbatch', 'tpu_pod.sh', 'local_multiprocess.sh'):
    r = subprocess.run(['bash', '-n', os.path.join(ROOT, 'launch', script)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f'{script}: {r.stderr}'


def test_tpu_pod_dry_run_prints_the_gcloud_commands(tmp_path):
  # No gcloud on PATH: a dry run must not need it.
  env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path)}
  r = subprocess.run(
      ['bash', 'launch/tpu_pod.sh', '--dry-run', '--name=hanzi-pod', '--zone=us-central2-b',
       '--accelerator-type=v4-32', '--bucket=gs://my-bucket', '--config=configs/pretrain_gpu.py',
       '--run=pretrain1', '--', '--config.train.batch_size=2048', '--config.optim.learning_rate=2e-3'],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
  assert r.returncode == 0, r.stderr
  out = r.stdout
  assert 'gcloud compute tpus tpu-vm describe hanzi-pod --zone=us-central2-b' in out
  assert 'gcloud compute tpus tpu-vm create hanzi-pod --zone=us-central2-b' in out
  assert '--accelerator-type=v4-32' in out and '--version=tpu-ubuntu2204-base' in out
  ssh = [l for l in out.splitlines() if l.startswith('gcloud compute tpus tpu-vm ssh')]
  assert ssh and all('--worker=all' in l for l in ssh)
  run = ssh[-1]
  for part in ('python -m pyhanzi_jax.main', '--config=configs/pretrain_gpu.py',
               'my-bucket/runs/pretrain1', '--config.distributed.initialize=yes',
               '--config.train.batch_size=2048', '--config.optim.learning_rate=2e-3'):
    assert part in run, (part, run)
  assert 'gcloud compute tpus tpu-vm scp' in out  # The code goes to every worker.


def test_tpu_pod_refuses_missing_flags():
  r = subprocess.run(['bash', 'launch/tpu_pod.sh', '--dry-run', '--zone=z'], cwd=ROOT,
                     capture_output=True, text=True, timeout=30)
  assert r.returncode == 2 and '--name' in r.stderr
