"""Training checkpoints (orbax); the inference bundles made from them are bundle.py's.

`WORKDIR/checkpoints/` holds the last `keep` periodic saves, written asynchronously; `WORKDIR/best/` holds the one with the best validation metric. orbax
writes each step into a temporary directory and renames it only when complete, so a run killed
mid-save leaves no half-written checkpoint that could be taken for a good one; on restore a
checkpoint that still fails to read is skipped for the one before it, loudly.
"""
from __future__ import annotations

import os
from typing import Any

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """A checkpoint or bundle that is missing, incomplete or does not match the model."""


class Checkpointer:
  """Periodic async checkpoints plus the best one by a validation metric, with resume."""

  def __init__(self, workdir: str, keep: int, best_metric: str):
    self.best_metric = best_metric
    # Periodic checkpoints: async, so training goes on while they are written.
    self.periodic = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, 'checkpoints')),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True,
                                             cleanup_tmp_directories=True,
                                             multiprocessing_options=_barriers('periodic')))
    self.best = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, 'best')),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, best_fn=lambda m: m[best_metric], best_mode='max',
            keep_checkpoints_without_metrics=False, enable_async_checkpointing=True,
            cleanup_tmp_directories=True, multiprocessing_options=_barriers('best')))

  def save(self, step: int, state, force: bool = False) -> None:
    self.periodic.save(step, args=ocp.args.StandardSave(state), force=force)

  def save_if_best(self, step: int, state, metrics: dict[str, float]) -> None:
    if self.best_metric not in metrics:
      raise ValueError(f'config.train.best_metric={self.best_metric!r} is not a validation '
                       f'metric; choose one of {sorted(metrics)}')
    self.best.save(step, args=ocp.args.StandardSave(state),
                   metrics={self.best_metric: float(metrics[self.best_metric])})

  def restore_latest(self, abstract_state) -> tuple[Any, int] | None:
    """The newest readable periodic checkpoint as (state, step), or None to start fresh."""
    return _restore_newest(self.periodic, abstract_state)

  def wait(self) -> None:
    self.periodic.wait_until_finished()
    self.best.wait_until_finished()

  def close(self) -> None:
    self.periodic.close()
    self.best.close()


def _barriers(name: str):
  # Both managers may save the same step (eval and checkpoint steps coincide); on several
  # processes their async saves would then meet at the same cross-process barrier names
  # ('Barrier _async_write_complete.<step> is already ongoing') unless each has its own prefix.
  return ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name)


def _restore_newest(manager: ocp.CheckpointManager, abstract_state):
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      state = manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
      return state, step
    except Exception as e:  # pylint: disable=broad-except
      # A damaged checkpoint must not stop a resume while an older good one exists.
      logging.error('checkpoint %d in %s cannot be read (%s: %s); trying an older one',
                    step, manager.directory, type(e).__name__, e)
  if manager.all_steps():
    raise CheckpointError(f'no checkpoint in {manager.directory} could be read; move the '
                          'directory away to start fresh, or restore it from a backup')
  return None


def abstract_like(tree, sharding=None):
  """ShapeDtypeStructs for `tree` (optionally with one sharding for all leaves) for restores."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding),
                      tree)


def restore_params_from_workdir(workdir: str, abstract_params):
  """Parameters of a training workdir: the best checkpoint if there is one, else the latest."""
  for sub in ('best', 'checkpoints'):
    path = os.path.abspath(os.path.join(workdir, sub))
    if not os.path.isdir(path):
      continue
    with ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(read_only=True)) as m:
      if not m.all_steps():
        continue
      step = m.best_step() if sub == 'best' else m.latest_step()
      # Read only the params subtree: no optimizer state is needed (or shaped alike) here.
      restored = m.restore(step, args=ocp.args.PyTreeRestore(
          item={'params': abstract_params},
          restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray),
                                    {'params': abstract_params}),
          partial_restore=True))
      return restored['params'], step, sub
  raise CheckpointError(f'no checkpoint found in {workdir} (looked in best/ and checkpoints/): '
                        'is this the workdir of a training run?')
