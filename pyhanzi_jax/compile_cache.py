"""Compiled programs kept on disk between processes (JAX's persistent compilation cache).

A `pyhanzi ni hao` spends most of its first second compiling its decoder; with the programs of
an earlier run read from disk, a second run skips that (benchmarks/startup.py measures both).
`pyhanzi` and `pyhanzi serve` call `enable` before they build a Converter.

Where: `$PYHANZI_COMPILE_CACHE`, else `$XDG_CACHE_HOME/pyhanzi_jax/jax`, else
`~/.cache/pyhanzi_jax/jax` (`--compile-cache DIR` overrides it; an empty value, `off` or `0`
turns the cache off), in a subdirectory per JAX and jaxlib version.

Why a stale program cannot be loaded: JAX keys each entry by a hash of the lowered program
(the model's config, shapes and dtypes, and every constant in it), the jaxlib version, the
backend and its version, the XLA flags and the compile options. The parameters are arguments of
the programs, not constants, so two bundles of the same architecture share entries safely, and
one that differs in anything compiled gets its own. The per-version subdirectory adds the jax
version (lowering changes with it, though the key would still differ by the program), and keeps
an upgrade's entries apart from the old ones, which can then be deleted as a whole.

Entries are written as plain files (JAX without a size limit writes in place); one left
truncated by a killed process only costs a compile, each time it is met, and the warning JAX
gives for it is silenced: the `pyhanzi` command's standard error carries its own messages.
"""
from __future__ import annotations

import os
import warnings

ENV = 'PYHANZI_COMPILE_CACHE'
OFF = ('', 'off', '0')
# Programs that compile faster than this are not written: reading a small entry back costs about
# what compiling it does. Measured on the 2-core machine (benchmarks/RESULTS.md, start-up).
MIN_COMPILE_SECONDS = 0.1


def default_dir() -> str:
  """The cache's base directory: $PYHANZI_COMPILE_CACHE if set (possibly 'off'), else the
  per-user cache directory."""
  if ENV in os.environ:
    return os.environ[ENV]
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'pyhanzi_jax', 'jax')


def versioned_dir(base: str) -> str:
  """`base`/<jax version>-<jaxlib version>: one directory per JAX release."""
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  return os.path.join(base, f'jax{jax.__version__}-jaxlib{jaxlib.__version__}')


def enable(base: str | None = None) -> str | None:
  """Turns JAX's persistent compilation cache on in `base`'s versioned subdirectory (default:
  `default_dir()`); returns that directory, or None when it is off ('', 'off', '0') or cannot
  be created (the converter then compiles as without it)."""
  base = default_dir() if base is None else base
  if base.strip().lower() in OFF:
    return None
  import jax  # pylint: disable=g-import-not-at-top
  path = versioned_dir(os.path.expanduser(base))
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return None
  if not os.access(path, os.W_OK | os.X_OK):
    return None
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', MIN_COMPILE_SECONDS)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  for what in ('reading', 'writing'):
    warnings.filterwarnings('ignore', message=f'Error {what} persistent compilation cache')
  return path
