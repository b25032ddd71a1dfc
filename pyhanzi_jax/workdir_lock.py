"""One trainer per workdir: an `flock` on WORKDIR/trainer.lock, held while training runs.

Two trainers in one workdir would interleave metrics.jsonl and TensorBoard files and race each
other for the same checkpoint steps. An `flock` belongs to the open file, so the kernel drops it
when its process ends, however it ends (SIGKILL included): the lock file a killed run leaves
behind is taken over by the next one, never a dead end. The file says who holds it (pid, host,
since when, command) for the message a second trainer stops with.

On several processes each locks its own file (trainer.lock for process 0, trainer.lock.N for
process N), so every process of a second run finds its own file busy at once.
"""
from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import sys

from absl import logging

# Filesystems without flock (some FUSE and network mounts) say so with one of these.
_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def lock_path(workdir: str, process_index: int = 0) -> str:
  name = 'trainer.lock' if process_index == 0 else f'trainer.lock.{process_index}'
  return os.path.join(workdir, name)


def describe_holder(text: str) -> str:
  """'pid 123 on host h since 2026-12-02 06:40:01+00:00 (python -m ...)' from a lock file."""
  try:
    h = json.loads(text)
    return f'pid {h["pid"]} on host {h["host"]} since {h["since"]} ({h["command"]})'
  except (ValueError, KeyError, TypeError):
    return 'a process that has not written its name yet'


class WorkdirLock:
  """The lock of one process of a training run; `try_acquire`, then `release` at the end."""

  def __init__(self, workdir: str, process_index: int = 0):
    self.path = lock_path(workdir, process_index)
    self._fd = None

  def try_acquire(self) -> str | None:
    """Takes the lock: None, or (when another trainer holds it) the message to stop with."""
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = describe_holder(_read(fd))
      os.close(fd)
      return (f'the workdir {os.path.dirname(self.path)} is in use by another trainer: {holder}. '
              'Wait for it to end or stop it, or give this run another --workdir')
    except OSError as e:
      if e.errno not in _UNSUPPORTED:
        os.close(fd)
        raise
      logging.warning('cannot lock %s (%s): this filesystem has no flock, so nothing stops a '
                      'second trainer in this workdir; start only one', self.path, e.strerror)
    previous = _read(fd)
    if previous.strip():  # Released locks are emptied: this one's holder died holding it.
      logging.warning('taking over %s from %s, which ended without releasing it', self.path,
                      describe_holder(previous))
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps({
        'pid': os.getpid(), 'host': socket.gethostname(),
        'since': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        'command': ' '.join(sys.argv)}) + '\n').encode(), 0)
    self._fd = fd
    return None

  def release(self) -> None:
    if self._fd is None:
      return
    try:
      os.ftruncate(self._fd, 0)  # Empty: the next holder knows this run ended cleanly.
    except OSError:
      pass  # A full or read-only disk: the kernel still drops the lock below.
    os.close(self._fd)
    self._fd = None


def _read(fd: int) -> str:
  return os.pread(fd, 4096, 0).decode(errors='replace')
