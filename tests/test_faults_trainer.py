"""The trainer under faults and bad input: each ends in one line that says what to do and an exit
code a scheduler can act on (pyhanzi_jax/exit_codes.py), never a traceback, and rerunning the same
command after fixing the cause ends where an uninterrupted run ends. docs/RELIABILITY.md lists
every fault with the test here that keeps it so.

The tests marked `faults` kill, fill and lock real runs in subprocesses (minutes on 2 cores); they
are left out of the default suite (setup.cfg) and run by `.ci/run` with `pytest -m faults`.
"""
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import tiny
from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import config_defaults
from pyhanzi_jax import exit_codes
from pyhanzi_jax import main as main_lib
from pyhanzi_jax import metric_writers
from pyhanzi_jax import model as model_lib
from pyhanzi_jax import train
from pyhanzi_jax import workdir_lock
from pyhanzi_jax.data import vocab as vocab_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tiny config cut to what these tests need: one length bucket (one compile of the train
# step), one validation batch on one corpus, no decoding, no export.
FAST = {
    'train.eval_every': 1000, 'train.eval_batches': 1, 'train.eval_decode_sentences': 0,
    'train.best_metric': 'general/token_acc', 'train.export_at_end': False,
    'data.max_len': 32, 'data.length_buckets': '32', 'data.eval_corpora': 'general',
}
TIMEOUT_S = 300


def _config(**overrides):
  c = tiny.get_config()
  for k, v in {**FAST, **overrides}.items():
    node = c
    *path, last = k.split('.')
    for p in path:
      node = node[p]
    node[last] = v
  return c


def _command(workdir, **overrides):
  return [sys.executable, '-m', 'pyhanzi_jax.main', '--config=configs/tiny.py',
          f'--workdir={workdir}'] + [f'--config.{k}={v}' for k, v in {**FAST, **overrides}.items()]


def _env():
  # One CPU device (no 8-device rendezvous on a busy host), the system malloc (no re-exec).
  env = {k: v for k, v in os.environ.items() if not k.startswith(('JAX_', 'XLA_'))}
  env.update(JAX_PLATFORMS='cpu', XLA_FLAGS='--xla_force_host_platform_device_count=1',
             PYHANZI_MALLOC='default')
  return env


def _main(workdir, *extra, **overrides):
  """Runs the trainer's command line to the end -> CompletedProcess (text)."""
  return subprocess.run(_command(workdir, **overrides) + list(extra), cwd=ROOT, env=_env(),
                        capture_output=True, text=True, timeout=TIMEOUT_S)


def _stderr_lines(r):
  """The lines a person reads: not absl's log lines (I/W/E1202 ...) nor their continuations."""
  return [l for l in r.stderr.splitlines() if l.startswith(('error', 'preempted', 'interrupted'))]


def _abstract_params():
  config = tiny.get_config()
  pv, hv = vocab_lib.load_vocabs(config.data.dir)
  mc = model_lib.ModelConfig.from_config(config.model, len(pv), len(hv))
  return jax.eval_shape(lambda: model_lib.init_params(mc, jax.random.key(0)))


def _latest_params(workdir):
  """(params, step) of the newest periodic checkpoint: the run's end state (not its best)."""
  abstract = {'params': _abstract_params()}
  path = os.path.abspath(os.path.join(workdir, 'checkpoints'))
  with ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(read_only=True)) as m:
    step = m.latest_step()
    restored = m.restore(step, args=ocp.args.PyTreeRestore(
        item=abstract, partial_restore=True,
        restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), abstract)))
  return restored['params'], step


def _logged_steps(workdir, key='train/loss'):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [r['step'] for r in map(json.loads, f) if key in r]


def _biggest_file(directory):
  return max((p for p in glob.glob(os.path.join(directory, '**'), recursive=True)
              if os.path.isfile(p)), key=os.path.getsize)


# --- Bad input: one line, exit 2, nothing runs -------------------------------------------------

def test_config_check_names_each_field_out_of_range_and_the_range():
  c = _config(**{'train.batch_size': 0, 'train.log_every': 0, 'train.checkpoint_every': -1,
                 'optim.grad_accum_steps': 0, 'optim.learning_rate': 0.0,
                 'optim.label_smoothing': 1.0, 'train.parallel': 'pjit'})
  with pytest.raises(exit_codes.ConfigError) as e:
    config_defaults.check(c)
  lines = str(e.value).splitlines()
  assert lines == [
      'config.train.batch_size=0: must be an integer >= 1',
      'config.train.log_every=0: must be an integer >= 1',
      'config.train.checkpoint_every=-1: must be an integer >= 1',
      'config.optim.grad_accum_steps=0: must be an integer >= 1',
      'config.optim.learning_rate=0.0: must be a finite number > 0',
      'config.optim.label_smoothing=1.0: must be a finite number in [0, 1)',
      "config.train.parallel='pjit': must be one of 'jit', 'pmap'",
  ]


def test_every_config_passes_the_check():
  for path in sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py'))):
    name = os.path.basename(path)[:-3]
    args = [f'stage={s}' for s in range(2, 10)] if name == 'release_cpu' else [None]
    for arg in args:
      config_defaults.check(config_defaults.load_sibling(name, path, arg))


def test_counts_out_of_range_stop_the_command_with_one_line_each_and_exit_2(tmp_path):
  """Was: ZeroDivisionError tracebacks (checkpoint_every=0, log_every=0) at the first step,
  numpy's 'negative dimensions are not allowed' for a negative batch."""
  workdir = tmp_path / 'run'
  r = _main(workdir, **{'train.checkpoint_every': 0, 'train.log_every': 0,
                        'train.batch_size': -8, 'train.num_steps': 3})
  assert r.returncode == exit_codes.USAGE, r.stderr[-3000:]
  assert 'Traceback' not in r.stderr
  assert _stderr_lines(r) == [
      'error in the command line or config: config.train.batch_size=-8: must be an integer >= 1',
      'error in the command line or config: config.train.log_every=0: must be an integer >= 1',
      'error in the command line or config: config.train.checkpoint_every=0: must be an integer '
      '>= 1']
  assert not workdir.exists()  # Refused before anything was written.


def test_a_mistyped_config_path_is_one_line_and_exit_2(tmp_path):
  """Was: a traceback ending in 'OSError: Configuration is not available ...'."""
  missing = tmp_path / 'configs' / 'tniy.py'
  r = subprocess.run([sys.executable, '-m', 'pyhanzi_jax.main', f'--config={missing}',
                      f'--workdir={tmp_path}/run', '--config.train.num_steps=3'], cwd=ROOT,
                     env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
  assert r.returncode == exit_codes.USAGE
  assert r.stderr.strip().splitlines() == [
      f"error in the command line or config: --config={missing}: there is no file "
      f"'{missing}' (from {ROOT})"]


# --- The workdir lock -------------------------------------------------------------------------

_HOLD = '''
import sys, time
from pyhanzi_jax import workdir_lock
lock = workdir_lock.WorkdirLock(sys.argv[1])
assert lock.try_acquire() is None
print('locked', flush=True)
time.sleep(600)
'''


def test_the_lock_names_its_holder_and_is_taken_over_when_the_holder_dies(tmp_path):
  holder = subprocess.Popen([sys.executable, '-c', _HOLD, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'locked'
    busy = workdir_lock.WorkdirLock(str(tmp_path)).try_acquire()
    assert busy is not None and f'pid {holder.pid} on host ' in busy and ' since 20' in busy
    assert 'another --workdir' in busy
  finally:
    holder.kill()  # SIGKILL: nothing releases the lock but the kernel.
    holder.wait()
  assert '"pid"' in open(workdir_lock.lock_path(str(tmp_path))).read()  # Left behind...
  lock = workdir_lock.WorkdirLock(str(tmp_path))
  assert lock.try_acquire() is None  # ... and taken over.
  assert f'"pid": {os.getpid()}' in open(lock.path).read()
  lock.release()
  assert open(lock.path).read() == ''  # Released cleanly: nothing to take over next time.


def test_a_trainer_stops_at_once_in_a_workdir_another_one_holds(tmp_path):
  """Was: both trainers ran to the end, interleaving metrics.jsonl and TensorBoard files."""
  workdir = str(tmp_path)
  other = workdir_lock.WorkdirLock(workdir)
  assert other.try_acquire() is None  # Another trainer (flock is per open file, so it counts).
  try:
    with pytest.raises(exit_codes.WorkdirBusy, match=f'in use by another trainer: pid '
                       f'{os.getpid()} on host'):
      train.train_and_evaluate(_config(**{'train.num_steps': 2}), workdir)
  finally:
    other.release()
  assert sorted(os.listdir(workdir)) == ['trainer.lock']  # No config.json, no logs, no steps.


# --- Resuming ---------------------------------------------------------------------------------

def test_metric_rows_after_the_resume_step_are_dropped(tmp_path):
  path = str(tmp_path / 'metrics.jsonl')
  rows = [{'step': s, 'train/loss': 1.0} for s in (5, 10, 15, 20)]
  with open(path, 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)
    f.write('{"step": 25, "train/lo')  # Cut short by a kill.
  metric_writers.drop_rows_after(path, 10)
  with open(path) as f:
    assert [json.loads(l)['step'] for l in f] == [5, 10]
  metric_writers.drop_rows_after(path, 10)  # Nothing more to drop.
  with open(path) as f:
    assert len(f.readlines()) == 2


def test_a_damaged_newest_checkpoint_is_set_aside_and_the_rerun_saves_its_step_again(tmp_path):
  """Was: the rerun fell back to the older step, trained back and died with 'Checkpoint for
  step N already exists', every time; metrics.jsonl then held the redone steps twice."""
  workdir = str(tmp_path)
  config = _config(**{'train.num_steps': 4, 'train.checkpoint_every': 2, 'train.log_every': 1,
                      'train.eval_every': 2})
  train.train_and_evaluate(config, workdir)
  want, step = _latest_params(workdir)
  assert step == 4
  # Damaged after they were written (a disk error, a bad copy): the newest periodic checkpoint,
  # and the best one's metrics, which orbax reads on opening best/.
  with open(_biggest_file(os.path.join(workdir, 'checkpoints', '4')), 'r+b') as f:
    f.truncate(1000)
  for path in glob.glob(os.path.join(workdir, 'best', '*', 'metrics', '*')):
    with open(path, 'r+b') as f:
      f.truncate(3)

  train.train_and_evaluate(config, workdir)  # The same command again.
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '4']
  assert sorted(os.listdir(os.path.join(workdir, 'damaged'))) == ['best', 'checkpoints-4']
  assert os.listdir(os.path.join(workdir, 'best')) == ['4']  # Chosen again at step 4.
  got, step = _latest_params(workdir)
  assert step == 4
  jax.tree.map(np.testing.assert_array_equal, want, got)  # Redone bit for bit.
  assert _logged_steps(workdir) == [1, 2, 3, 4]  # Each step logged once.
  assert _logged_steps(workdir, 'general/loss') == [2, 4]

  # A damaged best checkpoint at export (or init_from): the latest periodic one instead. Every
  # data file is cut: this restore reads the parameters only, which need not be in the biggest
  # file (the test passed or failed with how the save happened to split its files).
  for path in glob.glob(os.path.join(workdir, 'best', '4', '**'), recursive=True):
    if os.path.isfile(path) and os.path.getsize(path) > 1000:
      with open(path, 'r+b') as f:
        f.truncate(1000)
  got, step, sub = ckpt_lib.restore_params_from_workdir(workdir, _abstract_params())
  assert (sub, step) == ('checkpoints', 4)
  jax.tree.map(np.testing.assert_array_equal, want, got)

  # None readable (all damaged, or config.model changed): nothing is moved, the error says why.
  for step in ('2', '4'):
    with open(_biggest_file(os.path.join(workdir, 'checkpoints', step)), 'r+b') as f:
      f.truncate(1000)
  with pytest.raises(ckpt_lib.CheckpointError, match=r'\(steps \[2, 4\]\) can be read\. If '
                     r'config\.model or config\.optim changed .* new --workdir'):
    train.train_and_evaluate(config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '4']


def test_a_non_finite_loss_stops_before_it_is_saved_and_names_the_last_checkpoint(tmp_path):
  """Was: the loss was checked at log steps only, so checkpoints between held the garbage, and
  the message pointed at WORKDIR/checkpoints whether or not anything was there."""
  workdir = str(tmp_path)
  # Warm-up from 0: step 1 applies no update, step 2 one of ~5e29, so step 3's loss is not finite.
  config = _config(**{'optim.learning_rate': 1e30, 'optim.warmup_steps': 4,
                      'train.num_steps': 8, 'train.log_every': 1000, 'train.checkpoint_every': 2})
  with pytest.raises(FloatingPointError) as e:
    train.train_and_evaluate(config, workdir)
  assert 'non-finite training loss or gradient at steps 3..4' in str(e.value)
  assert f'The last checkpoint saved before it is step 2 in {workdir}/checkpoints' in str(e.value)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2']


# --- Read-only workdir ------------------------------------------------------------------------

def _read_only(path):
  """Makes `path` (a directory) read-only for this process, or skips: root ignores permission
  bits, so as root a read-only bind mount does it."""
  if os.geteuid() != 0:
    os.chmod(path, 0o555)
    return lambda: os.chmod(path, 0o755)
  r = subprocess.run(f'mount --bind {path} {path} && mount -o remount,bind,ro {path}',
                     shell=True, capture_output=True, text=True)
  if r.returncode:
    subprocess.run(['umount', str(path)], capture_output=True)
    pytest.skip(f'cannot make a read-only mount here: {r.stderr.strip()}')
  return lambda: subprocess.run(['umount', str(path)], check=True)


def test_a_read_only_workdir_is_one_line_and_exit_1(tmp_path):
  """Was: a PermissionError/OSError traceback."""
  parent = tmp_path / 'ro'
  (parent / 'existing').mkdir(parents=True)
  undo = _read_only(parent)
  try:
    for workdir in (parent / 'new', parent / 'existing'):
      r = _main(workdir, **{'train.num_steps': 2})
      assert r.returncode == exit_codes.ERROR, r.stderr[-3000:]
      assert 'Traceback' not in r.stderr
      assert _stderr_lines(r) == [r.stderr.strip().splitlines()[-1]]
      line = _stderr_lines(r)[0]
      assert line.startswith(f'error: cannot write {workdir}'), line
      assert 'Give a --workdir' in line, line
  finally:
    undo()


# --- Faults injected into real runs (pytest -m faults) ----------------------------------------

FAULT_RUN = {'train.num_steps': 24, 'train.checkpoint_every': 3, 'train.log_every': 2,
             'train.eval_every': 6, 'train.keep_checkpoints': 2}


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  """The end state of FAULT_RUN run once without faults: (params, step)."""
  workdir = tmp_path_factory.mktemp('uninterrupted')
  r = _main(workdir, **FAULT_RUN)
  assert r.returncode == 0, r.stderr[-3000:]
  return _latest_params(str(workdir))


def _assert_ends_like(workdir, uninterrupted):
  want, want_step = uninterrupted
  got, step = _latest_params(str(workdir))
  assert step == want_step
  jax.tree.map(np.testing.assert_array_equal, want, got)
  logged = _logged_steps(workdir)
  assert logged == list(range(2, FAULT_RUN['train.num_steps'] + 1, 2)), logged


def _start(workdir, log, **overrides):
  """Starts FAULT_RUN (with `overrides`) in `workdir`, its output going to the file `log`."""
  return subprocess.Popen(_command(workdir, **{**FAULT_RUN, **overrides}), cwd=ROOT, env=_env(),
                          stdout=open(log, 'w'), stderr=subprocess.STDOUT,
                          start_new_session=True)


def _wait_until(ready, p, what):
  """Polls `ready()` until true (-> True) or until `p` ends first (-> False)."""
  deadline = time.time() + TIMEOUT_S
  while not ready():
    if p.poll() is not None:
      return False
    assert time.time() < deadline, f'timed out waiting for {what}'
    time.sleep(0.01)
  return True


def _training(log):
  """Whether the run writing `log` is past its set-up (restore, clean-up) and in its steps."""
  return lambda: 'training steps' in open(log).read()


def _saving(workdir, sub, log):
  """Whether this run (past set-up, so not a killed run's leftovers) is writing a checkpoint."""
  return lambda: _training(log)() and bool(
      glob.glob(os.path.join(workdir, sub, '*orbax-checkpoint-tmp*')))


def _finish(p, log):
  try:
    p.wait(timeout=TIMEOUT_S)
  finally:
    if p.poll() is None:
      os.killpg(p.pid, signal.SIGKILL)
  return open(log).read()


@pytest.mark.faults
def test_sigkill_at_any_moment_then_rerunning_ends_like_an_uninterrupted_run(tmp_path,
                                                                            uninterrupted):
  """Killed (SIGKILL: nothing runs on the way out) while it writes a periodic checkpoint, while
  it writes a best checkpoint, and at random moments; each rerun is the same command."""
  workdir, log = str(tmp_path / 'run'), str(tmp_path / 'log')
  rng = random.Random(18)
  moments = [('a periodic save', lambda: _saving(workdir, 'checkpoints', log)),
             ('a best save', lambda: _saving(workdir, 'best', log))]

  def after(delay):
    since = []
    def ready():
      if not since and _training(log)():
        since.append(time.time())
      return bool(since) and time.time() - since[0] > delay
    return ready
  for delay in (rng.uniform(0, 3) for _ in range(3)):
    moments.append((f'{delay:.1f} s into the steps', lambda delay=delay: after(delay)))
  kills = 0
  for what, moment in moments:
    p = _start(workdir, log)
    if _wait_until(moment(), p, what):
      p.send_signal(signal.SIGKILL)
      kills += 1
    out = _finish(p, log)
    assert 'Traceback' not in out, out[-3000:]
  assert kills >= 3, f'only {kills} runs were caught before they ended'
  # And a Ctrl-C: the step reached is saved, exit 130.
  p = _start(workdir, log)
  if _wait_until(after(rng.uniform(0, 2)), p, 'a Ctrl-C'):
    p.send_signal(signal.SIGINT)
    out = _finish(p, log)
    assert p.returncode == exit_codes.INTERRUPTED, out[-3000:]
    assert out.strip().splitlines()[-1].startswith('interrupted (Ctrl-C): saved step ')
  p = _start(workdir, log)
  out = _finish(p, log)
  assert p.returncode == 0 and 'Traceback' not in out, out[-3000:]
  _assert_ends_like(workdir, uninterrupted)


@pytest.mark.faults
def test_a_damaged_newest_checkpoint_then_rerunning_ends_like_an_uninterrupted_run(
    tmp_path, uninterrupted):
  workdir = tmp_path / 'run'
  r = _main(workdir, **FAULT_RUN)
  assert r.returncode == 0
  for sub in ('checkpoints', 'best'):  # The newest periodic and the best (both step 24).
    steps = sorted(int(s) for s in os.listdir(workdir / sub) if s.isdigit())
    with open(_biggest_file(str(workdir / sub / str(steps[-1]))), 'r+b') as f:
      f.truncate(100)
  # Taken back to step 21: unfinished from there on.
  r = _main(workdir, **FAULT_RUN)
  assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-3000:]
  assert 'resumed from' in r.stderr and 'at step 21' in r.stderr
  assert sorted(os.listdir(workdir / 'damaged')) == ['checkpoints-24']
  _assert_ends_like(workdir, uninterrupted)


def _tmpfs(path, size):
  os.makedirs(path, exist_ok=True)
  r = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(path)],
                     capture_output=True, text=True)
  if r.returncode:
    pytest.skip(f'cannot mount a small tmpfs to fill here: {r.stderr.strip()}')


def test_a_background_threads_error_is_one_log_line(capsys, caplog, monkeypatch):
  """Was: on a full disk an orbax save thread failing after the main thread (its event loop
  closed) printed 'Exception in thread ...' and a traceback beside the one-line error."""
  monkeypatch.setattr(threading, 'excepthook', main_lib.quiet_thread_error)

  def fail():
    raise RuntimeError('Event loop is closed\nand more')

  thread = threading.Thread(target=fail, name='Thread-6.orbax-checkpoint')
  thread.start()
  thread.join()
  assert 'Traceback' not in capsys.readouterr().err
  assert ('background thread Thread-6.orbax-checkpoint stopped: RuntimeError: Event loop is '
          'closed') in caplog.text


def test_an_unraisable_error_is_one_log_line(capsys, caplog, monkeypatch):
  """Was: a coroutine of orbax's reading a damaged checkpoint, collected after the trainer had
  set the checkpoint aside, printed 'Exception ignored in ...' and a traceback."""
  monkeypatch.setattr(sys, 'unraisablehook', main_lib.quiet_unraisable)

  class Reader:
    def __del__(self):
      raise RuntimeError('Encountered error while reading array index\nTensorStore ...')

  Reader()  # Collected at once: its exception can only be reported, not raised.
  assert 'Traceback' not in capsys.readouterr().err
  assert 'RuntimeError: Encountered error while reading array index' in caplog.text


@pytest.mark.faults
def test_a_full_disk_is_one_line_and_rerunning_after_freeing_space_resumes(tmp_path,
                                                                          uninterrupted):
  """Was: hundreds of log lines and tracebacks ('Task exception was never retrieved')."""
  disk = tmp_path / 'disk'
  _tmpfs(disk, '8m')  # Room for two checkpoints of the tiny model and their logs, not three.
  try:
    workdir = disk / 'run'
    r = _main(workdir, **FAULT_RUN)
    assert r.returncode == exit_codes.ERROR, r.stderr[-3000:]
    assert 'Traceback' not in r.stderr and 'never retrieved' not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert _stderr_lines(r) == [last]
    assert last.startswith(f'error: the disk holding {workdir} is full'), last
    assert 'Free space on it, then run the same command again: it resumes from step ' in last
    resumes_from = int(last.split('resumes from step ')[1].split(',')[0])
    assert 0 < resumes_from < FAULT_RUN['train.num_steps']

    subprocess.run(['mount', '-o', 'remount,size=64m', str(disk)], check=True)  # Space freed.
    r = _main(workdir, **FAULT_RUN)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f'at step {resumes_from}' in r.stderr
    _assert_ends_like(workdir, uninterrupted)
  finally:
    subprocess.run(['umount', str(disk)], check=True)


@pytest.mark.faults
def test_a_second_trainer_stops_at_once_and_a_preempted_one_exits_75(tmp_path):
  workdir, log = str(tmp_path / 'run'), str(tmp_path / 'log')
  # Long enough not to end before the second trainer is refused and SIGTERM arrives.
  first = _start(workdir, log, **{'train.num_steps': 100000, 'train.checkpoint_every': 1000})
  try:
    assert _wait_until(_training(log), first, 'the first trainer to start')
    t0 = time.time()
    second = _main(workdir, **FAULT_RUN)
    assert second.returncode == exit_codes.ERROR, second.stderr[-3000:]
    assert _stderr_lines(second) == [second.stderr.strip().splitlines()[-1]]
    line = _stderr_lines(second)[0]
    assert f'is in use by another trainer: pid {first.pid} on host ' in line, line
    assert time.time() - t0 < 60  # At once: before any data, model or compile.
    assert first.poll() is None  # The first one goes on.
    first.send_signal(signal.SIGTERM)  # Preempted: saves the step it reached, then stops.
  finally:
    out = _finish(first, log)
  assert first.returncode == exit_codes.PREEMPTED, out[-3000:]
  saved = int(out.split('SIGTERM: saved step ')[1].split(';')[0])
  assert out.strip().splitlines()[-1] == (
      f'preempted (SIGTERM): saved step {saved} in {workdir}/checkpoints; run the same command '
      'to resume')
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == [str(saved)]
  steps = _logged_steps(workdir)
  assert steps == sorted(set(steps))  # One trainer's rows only.
