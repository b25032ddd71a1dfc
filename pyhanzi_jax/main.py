r"""The command line for every job: prepare data, train (pretrain or fine-tune), evaluate, export.

  python -m pyhanzi_jax.main --config=configs/tiny.py --workdir=runs/tiny \
      [--config.train.num_steps=100 ...]

The config is locked: a mistyped field is an error that names it, not a silently new field.
"""
import logging as logging_std
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

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
  raise ValueError(f"config.mode must be 'prepare', 'train' or 'evaluate', got {mode!r}")


class _QuietLibraries(logging_std.Filter):
  """Drops INFO chatter of orbax and jax (dozens of lines per checkpoint); keeps warnings."""

  def filter(self, record):
    noisy = '/orbax/' in record.pathname or '/jax/' in record.pathname
    return record.levelno >= logging_std.WARNING or not noisy


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_QuietLibraries())
  run(_CONFIG.value, _WORKDIR.value)


def _parse_flags(argv):
  """absl's flag parsing, with config typos and bad config files as one clear line."""
  try:
    return FLAGS(argv)
  except (flags.Error, KeyError, AttributeError, TypeError, ValueError) as e:
    cause = e
    while cause.__context__ is not None and not isinstance(cause, KeyError):
      cause = cause.__context__  # absl wraps ml_collections' "Did you mean ..." KeyError.
    msg = cause.args[0] if isinstance(cause, KeyError) and cause.args else e
    print(f'error in the command line or config: {msg}', file=sys.stderr)
    sys.exit(2)


def _friendly_errors(argv):
  """Runs `main`, turning the errors a user can cause into one clear line."""
  try:
    app.run(main, argv, flags_parser=_parse_flags)
  except (FileNotFoundError, ValueError, RuntimeError, FloatingPointError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)


def _with_huge_page_malloc(argv):
  """Re-executes this command once with huge-page malloc (pyhanzi_jax/malloc.py says why);
  PYHANZI_MALLOC=default opts out."""
  import os  # pylint: disable=g-import-not-at-top
  from pyhanzi_jax import malloc  # pylint: disable=g-import-not-at-top
  if os.environ.get('PYHANZI_MALLOC') != 'default':
    malloc.reexec_with_huge_pages([sys.executable, '-m', 'pyhanzi_jax.main', *argv[1:]])


if __name__ == '__main__':
  _with_huge_page_malloc(sys.argv)
  _friendly_errors(sys.argv)
