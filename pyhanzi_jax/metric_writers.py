"""Where metrics go: JSON lines in the workdir, TensorBoard event files, and the console.

Only process 0 writes (the others get a writer that drops everything), so a pod run leaves one
set of logs. tensorboardX writes event files without TensorFlow.
"""
from __future__ import annotations

import json
import os
import time

from absl import logging
import jax


class MetricWriter:

  def __init__(self, workdir: str, enabled: bool | None = None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._tb = None
    self._jsonl = None
    if self.enabled:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a', encoding='utf-8')
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))
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
