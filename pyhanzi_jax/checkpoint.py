"""Training checkpoints (orbax); the inference bundles made from them are bundle.py's.

`WORKDIR/checkpoints/` holds the last `keep` periodic saves, written asynchronously; `WORKDIR/best/`
holds the one with the best validation metric. orbax writes each step into a temporary directory
and renames it only when complete, so a run killed mid-save leaves no half-written checkpoint
that could be taken for a good one (the next start deletes the temporary directory).

A checkpoint damaged after it was written (a truncated file) is skipped on restore for the one
before it, loudly, and moved to `WORKDIR/damaged/`, so that training back to its step can save
that step again. Only steps newer than one that reads are moved: when none reads (the model
config changed, say) nothing is touched and the error says what to do.
"""
from __future__ import annotations

import os
import time
from typing import Any

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from pyhanzi_jax.errors import CheckpointError  # pylint: disable=unused-import  (re-exported)


class Checkpointer:
  """Periodic async checkpoints plus the best one by a validation metric, with resume."""

  def __init__(self, workdir: str, keep: int, best_metric: str):
    self.workdir = workdir
    self.best_metric = best_metric
    self.keep = keep
    self.periodic = self._open_periodic()
    best_dir = os.path.abspath(os.path.join(workdir, 'best'))
    best_options = ocp.CheckpointManagerOptions(
        max_to_keep=1, best_fn=lambda m: m[best_metric], best_mode='max',
        keep_checkpoints_without_metrics=False, enable_async_checkpointing=True,
        cleanup_tmp_directories=True, multiprocessing_options=_barriers('best'))
    try:
      self.best = ocp.CheckpointManager(best_dir, options=best_options)
    except Exception as e:  # pylint: disable=broad-except
      # orbax reads every best checkpoint's metrics on opening; a damaged metrics file would
      # stop every rerun here. The best is chosen again at the next validations.
      logging.error('%s cannot be opened (%s)', best_dir, _brief(e))
      _set_aside(workdir, [best_dir])
      self.best = ocp.CheckpointManager(best_dir, options=best_options)

  def _open_periodic(self) -> ocp.CheckpointManager:
    # Periodic checkpoints: async, so training goes on while they are written.
    return ocp.CheckpointManager(
        os.path.abspath(os.path.join(self.workdir, 'checkpoints')),
        options=ocp.CheckpointManagerOptions(max_to_keep=self.keep,
                                             enable_async_checkpointing=True,
                                             cleanup_tmp_directories=True,
                                             multiprocessing_options=_barriers('periodic')))

  def save(self, step: int, state, force: bool = False) -> None:
    self.periodic.save(step, args=ocp.args.StandardSave(state), force=force)

  def save_if_best(self, step: int, state, metrics: dict[str, float]) -> None:
    if self.best_metric not in metrics:
      raise ValueError(f'config.train.best_metric={self.best_metric!r} is not a validation '
                       f'metric; choose one of {sorted(metrics)}')
    self.best.save(step, args=ocp.args.StandardSave(state),
                   metrics={self.best_metric: float(metrics[self.best_metric])})

  def restore_latest(self, abstract_state) -> tuple[Any, int] | None:
    """The newest readable periodic checkpoint as (state, step), or None to start fresh.

    Unreadable periodic steps newer than the one restored move to WORKDIR/damaged/, and best
    checkpoints newer than it are deleted: training redoes those steps and saves them again
    (orbax refuses to save a step that exists).
    """
    restored, damaged = _restore_newest(self.periodic, abstract_state)
    if damaged:
      # Reopened: a manager that failed a restore may keep a wrong idea of the layout.
      directory = str(self.periodic.directory)
      self.periodic.close()
      _set_aside(self.workdir, [os.path.join(directory, str(s)) for s in damaged])
      self.periodic = self._open_periodic()
    start = 0 if restored is None else restored[1]
    for step in self.best.all_steps():
      if step > start:
        logging.warning('best/%d is newer than step %d, where training resumes: deleted; it is '
                        'saved again if still the best when training gets there', step, start)
        self.best.delete(step)
    return restored

  def finished_steps(self) -> list[int]:
    """Periodic steps complete on disk (an async save in flight or failed is not one)."""
    self.periodic.reload()
    return sorted(self.periodic.all_steps())

  def wait(self) -> None:
    self.periodic.wait_until_finished()
    self.best.wait_until_finished()

  def close(self) -> None:
    self.periodic.close()
    self.best.close()


def _reader():
  """Options of a manager that only reads, set as read_only sets them (orbax warns of each it
  has to change)."""
  return ocp.CheckpointManagerOptions(read_only=True, save_interval_steps=0, create=False,
                                      max_to_keep=None, cleanup_tmp_directories=False)


def _barriers(name: str):
  # Both managers may save the same step (eval and checkpoint steps coincide); on several
  # processes their async saves would then meet at the same cross-process barrier names
  # ('Barrier _async_write_complete.<step> is already ongoing') unless each has its own prefix.
  return ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name)


def _brief(e: Exception) -> str:
  """An orbax/tensorstore error in one line: its text runs to pages of spec otherwise."""
  first = (str(e).strip().splitlines() or [''])[0].split(' See full TensorStore details')[0]
  return f'{type(e).__name__}: {first[:300]}'


def _restore_newest(manager: ocp.CheckpointManager, abstract_state):
  """-> ((state, step) or None, the newer steps that could not be read)."""
  failed = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      if failed:
        # A manager that failed on a step whose layout it could not make sense of went on
        # failing on the good steps before it: a fresh one for each further attempt.
        with ocp.CheckpointManager(manager.directory, options=_reader()) as reader:
          state = reader.restore(step, args=ocp.args.StandardRestore(abstract_state))
      else:
        state = manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
      return (state, step), failed
    except Exception as e:  # pylint: disable=broad-except
      # A damaged checkpoint must not stop a resume while an older good one exists.
      logging.error('checkpoint %d in %s cannot be read (%s); trying an older one', step,
                    manager.directory, _brief(e))
      failed.append(step)
  if failed:
    raise CheckpointError(
        f'none of the checkpoints in {manager.directory} (steps {sorted(failed)}) can be read. '
        'If config.model or config.optim changed since they were written, train in a new '
        '--workdir; otherwise move that directory away to start from scratch')
  return None, []


def _set_aside(workdir: str, paths: list[str]) -> None:
  """Moves damaged checkpoint directories to WORKDIR/damaged/ (process 0; all wait for it)."""
  if jax.process_index() == 0:
    os.makedirs(os.path.join(workdir, 'damaged'), exist_ok=True)
    for path in paths:
      if not os.path.exists(path):
        continue
      name = os.path.relpath(path, workdir).replace(os.sep, '-')  # checkpoints/150 -> ...-150
      dest = os.path.join(workdir, 'damaged', name)
      if os.path.exists(dest):  # Damaged at the same step before.
        dest += time.strftime('-%Y%m%d-%H%M%S')
      os.rename(path, dest)
      logging.error('moved the unreadable %s to %s (delete it when done looking)', path, dest)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices('pyhanzi_set_aside_damaged')


def abstract_like(tree, sharding=None):
  """ShapeDtypeStructs for `tree` (optionally with one sharding for all leaves) for restores."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding),
                      tree)


def restore_params_from_workdir(workdir: str, abstract_params):
  """Parameters of a training workdir -> (params, step, 'best' or 'checkpoints'): the best
  checkpoint if there is one, else the latest; an unreadable one is skipped for the next."""
  unreadable = []
  for sub in ('best', 'checkpoints'):
    path = os.path.abspath(os.path.join(workdir, sub))
    if not os.path.isdir(path):
      continue
    with ocp.CheckpointManager(path, options=_reader()) as m:
      steps = sorted(m.all_steps(), reverse=True)
    for step in steps[:1] if sub == 'best' else steps:
      try:
        with ocp.CheckpointManager(path, options=_reader()) as m:
          # Read only the params subtree: no optimizer state is needed (or shaped alike) here.
          restored = m.restore(step, args=ocp.args.PyTreeRestore(
              item={'params': abstract_params},
              restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray),
                                        {'params': abstract_params}),
              partial_restore=True))
        return restored['params'], step, sub
      except Exception as e:  # pylint: disable=broad-except
        logging.error('%s/%d cannot be read (%s); trying the next one', path, step, _brief(e))
        unreadable.append(f'{sub}/{step}')
  if unreadable:
    raise CheckpointError(f'no checkpoint in {workdir} can be read (tried {", ".join(unreadable)}):'
                          ' does config.model match the run that wrote them?')
  raise CheckpointError(f'no checkpoint found in {workdir} (looked in best/ and checkpoints/): '
                        'is this the workdir of a training run?')
