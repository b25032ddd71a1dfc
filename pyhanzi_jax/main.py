r"""The command line for every job: prepare data, train (pretrain or fine-tune), evaluate, export.

  python -m pyhanzi_jax.main --config=configs/tiny.py --workdir=runs/tiny \
      [--config.train.num_steps=100 ...]

The config is locked: a mistyped field is an error that names it, not a silently new field.
Training resumes by itself from the workdir's last checkpoint, so the answer to any stop is to
run the same command again (after fixing what the message says). Exit codes, for schedulers
(exit_codes.py; docs/RELIABILITY.md lists the faults behind them):

  0    finished
  1    an error the one-line message explains: full disk, read-only or busy workdir (another
       trainer holds it: pid, host and start are named), missing data, non-finite loss,
       unreadable checkpoints
  2    a command-line or config error (unknown field, value out of range, no such config
       file); nothing ran
  75   preempted (SIGTERM): the step reached was saved; rerun to resume
  130  interrupted (Ctrl-C): the step reached was saved (a second Ctrl-C stops at once);
       rerun to resume
"""
import errno
import logging as logging_std
import os
import sys
import threading

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from pyhanzi_jax import exit_codes

FLAGS = flags.FLAGS
_CONFIG = config_flags.DEFINE_config_file('config', None, 'A configs/*.py file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for the job\'s outputs.')
flags.mark_flags_as_required(['config', 'workdir'])


def run(config, workdir: str):
  """Dispatches on `config.mode`; importable so tests and notebooks skip the flags."""
  mode = config.get('mode', 'train')
  if mode == 'prepare':
    from pyhanzi_jax.data import prepare  # pylint: disable=g-import-not-at-top
    return prepare.prepare(config, workdir)
  if mode == 'train':
    from pyhanzi_jax import train  # pylint: disable=g-import-not-at-top
    return train.train_and_evaluate(config, workdir)
  if mode == 'evaluate':
    from pyhanzi_jax import evaluate  # pylint: disable=g-import-not-at-top
    return evaluate.evaluate_from_config(config, workdir)
  raise exit_codes.ConfigError(f"config.mode={mode!r}: must be 'prepare', 'train' or 'evaluate'")


def _first_line(message) -> str:
  """A message's first line, at most 300 characters: what one log line shows of it."""
  return (str(message).strip().splitlines() or [''])[0][:300]


class _QuietLibraries(logging_std.Filter):
  """Drops INFO chatter of orbax and jax (dozens of lines per checkpoint); keeps their warnings
  and errors, in one line each, since the error that stops the job is explained once, at the
  end: a full disk made orbax log the same tensorstore error with a traceback four times over,
  and asyncio (which only orbax uses here) 'Task exception was never retrieved' dozens of times.
  """

  def filter(self, record):
    if '/asyncio/' in record.pathname:
      return False
    if not any(s in record.pathname for s in ('/orbax/', '/jax/')):
      return True
    if record.levelno < logging_std.WARNING:
      return False
    record.msg = _first_line(record.getMessage())
    record.args, record.exc_info, record.exc_text, record.stack_info = (), None, None, None
    return True


def quiet_thread_error(args) -> None:
  """threading.excepthook: a background thread's exception as one log line, not a traceback.

  orbax's async save threads can fail after the main thread has (a full disk: the event loop
  they report to is already closed); the main thread's one-line error says what to do."""
  if args.exc_type is SystemExit:
    return
  name = args.thread.name if args.thread is not None else '?'
  detail = _first_line(args.exc_value)
  logging.warning('background thread %s stopped: %s: %s', name, args.exc_type.__name__, detail)


def quiet_unraisable(unraisable) -> None:
  """sys.unraisablehook: an exception Python can only ignore (a coroutine of orbax's reading a
  damaged checkpoint, collected after its error was handled) as one log line."""
  detail = _first_line(unraisable.exc_value)
  logging.warning('ignored (%s): %s: %s', unraisable.err_msg or 'Exception ignored',
                  getattr(unraisable.exc_type, '__name__', '?'), detail)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_QuietLibraries())
  threading.excepthook = quiet_thread_error
  sys.unraisablehook = quiet_unraisable
  run(_CONFIG.value, _WORKDIR.value)


def _config_file_problem(argv) -> str | None:
  """What is wrong with --config's file, if it cannot be found (config_flags says so only in
  a traceback, when the config is first used)."""
  names = [a.split('=', 1)[1] for a in argv[1:] if a.startswith('--config=')]
  names += [b for a, b in zip(argv[1:], argv[2:]) if a == '--config']
  for name in names:
    path = name.split(':', 1)[0]
    if not os.path.isfile(path):
      return f'--config={name}: there is no file {path!r} (from {os.getcwd()})'
  return None


def _usage_error(message) -> None:
  for line in str(message).splitlines() or ['']:
    print(f'error in the command line or config: {line}', file=sys.stderr)
  sys.exit(exit_codes.USAGE)


def _parse_flags(argv):
  """absl's flag parsing, with config typos and bad config files as one clear line."""
  problem = _config_file_problem(argv)
  if problem:
    _usage_error(problem)
  try:
    return FLAGS(argv)
  except (flags.Error, KeyError, AttributeError, TypeError, ValueError) as e:
    cause = e
    while cause.__context__ is not None and not isinstance(cause, KeyError):
      cause = cause.__context__  # absl wraps ml_collections' "Did you mean ..." KeyError.
    msg = cause.args[0] if isinstance(cause, KeyError) and cause.args else e
    _usage_error(msg)


def _os_error_message(e: OSError) -> str:
  """One line for an OSError a user can fix, naming the path."""
  where = e.filename or 'the workdir'
  if e.errno in (errno.ENOSPC, errno.EDQUOT):
    return (f'the disk is full (writing {where}): free space on it, then run the same command '
            'again; training resumes from its last finished checkpoint')
  if e.errno == errno.EROFS:
    return f'cannot write {where}: read-only file system. Give a --workdir on a writable disk'
  if e.errno in (errno.EACCES, errno.EPERM):
    return (f'cannot write {where}: permission denied. Give a --workdir this user may write to, '
            'or change its permissions')
  if e.strerror and e.filename:
    return f'{e.strerror}: {e.filename}'
  return str(e)


def _friendly_errors(argv):
  """Runs `main`, turning the errors a user can cause into one clear line and an exit code."""
  try:
    app.run(main, argv, flags_parser=_parse_flags)
  except exit_codes.ConfigError as e:
    _usage_error(e)
  except exit_codes.Preempted as e:
    print(e, file=sys.stderr)
    sys.exit(e.exit_code)
  except KeyboardInterrupt:
    # Outside the training steps (those save and stop at a Ctrl-C): nothing is lost but the
    # start-up. Python's own exit then could crash in the middle of a JAX call it interrupted.
    print('interrupted: run the same command to resume from the last finished checkpoint',
          file=sys.stderr, flush=True)
    os._exit(exit_codes.INTERRUPTED)  # pylint: disable=protected-access
  except OSError as e:
    # FileNotFoundErrors raised with a message (a missing data dir) print as that message.
    print(f'error: {_os_error_message(e) if e.errno else e}', file=sys.stderr)
    sys.exit(exit_codes.ERROR)
  except (ValueError, RuntimeError, FloatingPointError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(exit_codes.ERROR)


def _with_huge_page_malloc(argv):
  """Re-executes this command once with huge-page malloc (pyhanzi_jax/malloc.py says why);
  PYHANZI_MALLOC=default opts out."""
  from pyhanzi_jax import malloc  # pylint: disable=g-import-not-at-top
  if os.environ.get('PYHANZI_MALLOC') != 'default':
    malloc.reexec_with_huge_pages([sys.executable, '-m', 'pyhanzi_jax.main', *argv[1:]])


if __name__ == '__main__':
  _with_huge_page_malloc(sys.argv)
  _friendly_errors(sys.argv)
