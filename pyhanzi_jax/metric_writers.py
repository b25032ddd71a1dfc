"""Where metrics go: JSON lines in the workdir, TensorBoard event files, and the console.

Only process 0 writes (the others get a writer that drops everything), so a pod run leaves one
set of logs. tensorboardX writes event files without TensorFlow.

A resumed run redoes the steps after its checkpoint, so the writer first forgets what was logged
after it: rows of metrics.jsonl past `resume_step` are dropped, and TensorBoard is told to hide
the old event files' points from there on (its purge_step), so every step is logged once.
"""
from __future__ import annotations

import json
import os
import time

from absl import logging
import jax


class MetricWriter:

  def __init__(self, workdir: str, enabled: bool | None = None, resume_step: int = 0):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._tb = None
    self._jsonl = None
    if self.enabled:
      os.makedirs(workdir, exist_ok=True)
      path = os.path.join(workdir, 'metrics.jsonl')
      drop_rows_after(path, resume_step)
      self._jsonl = open(path, 'a', encoding='utf-8')
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'),
                                 purge_step=resume_step + 1)
      except ImportError:  # TensorBoard files are a convenience; JSON lines are the record.
        logging.warning('tensorboardX is not installed: writing metrics.jsonl only')

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self.enabled:
      return
    self._jsonl.write(json.dumps({'step': int(step), 'time': time.time(),
                                  **{k: float(v) for k, v in metrics.items()}}) + '\n')
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in metrics.items():
        self._tb.add_scalar(k, float(v), int(step))

  def close(self) -> None:
    if self._jsonl:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()


def drop_rows_after(path: str, step: int) -> None:
  """Keeps the rows of a metrics.jsonl up to `step` (and drops a line cut short by a crash)."""
  if not os.path.exists(path):
    return
  with open(path, encoding='utf-8') as f:
    lines = f.readlines()
  keep = []
  for line in lines:
    try:
      if json.loads(line)['step'] <= step and line.endswith('\n'):
        keep.append(line)
    except (ValueError, KeyError, TypeError):
      pass
  if len(keep) < len(lines):
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
      f.writelines(keep)
    os.replace(path + '.tmp', path)
    logging.info('%s: dropped %d rows logged after step %d, which training redoes', path,
                 len(lines) - len(keep), step)


def progress_line(step: int, num_steps: int, metrics: dict[str, float], elapsed: float,
                  steps_done: int) -> str:
  """'step 1200/20000  loss 1.234  acc 0.812  12,345 tok/s  ETA 1h02m'."""
  eta = ''
  if steps_done:
    s = int(elapsed / steps_done * (num_steps - step))
    eta = f'  ETA {s // 3600}h{s % 3600 // 60:02d}m' if s >= 3600 else f'  ETA {s // 60}m{s % 60:02d}s'
  return (f'step {step}/{num_steps}  loss {metrics.get("train/loss", float("nan")):.4f}  '
          f'acc {metrics.get("train/token_acc", float("nan")):.4f}  '
          f'{metrics.get("train/tokens_per_sec", 0):,.0f} tok/s{eta}')
