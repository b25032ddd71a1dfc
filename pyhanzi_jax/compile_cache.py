"""Compiled programs kept on disk between processes: the decoder's serialized executables.

A `pyhanzi ni hao` spends most of its first second compiling its decoder; with the programs of
an earlier run read from disk, a second run skips that (benchmarks/startup.py measures both).
`pyhanzi` and `pyhanzi serve` call `enable` before they build a Converter.

Where: `$PYHANZI_COMPILE_CACHE`, else `$XDG_CACHE_HOME/pyhanzi_jax/jax`, else
`~/.cache/pyhanzi_jax/jax` (`--compile-cache DIR` overrides it; an empty value, `off` or `0`
turns the cache off), in a subdirectory per JAX and jaxlib version, whose `executables`
directory holds one file per compiled beam search or proposals' scorer (decode.py,
`set_executable_dir`), and whose `shapes` directory the parameter shapes of each model config
that a bundle's parameters are checked against (bundle.py, `model_shapes`: found by tracing the
model's init otherwise, 0.15-0.6 s).

Why not JAX's persistent compilation cache, which this module used at first: JAX must trace and
lower a program to find it there (~0.5 s for each of the two, most of a warm `pyhanzi ni
hao`'s first line), where a serialized executable loads without tracing (0.07 s). The two do
not mix: an executable that JAX read from its cache serializes without its compiled functions
(jaxlib 0.10.2, XLA:CPU: "Function broadcast_select_fusion.3 not found" when the next process
runs it), so JAX's cache stays off and decode.py writes no executable while it is on.

Why a stale program cannot be loaded: a file's name is a hash of the program's name, options,
model config and argument shapes and dtypes, and of a fingerprint of everything else it depends
on (the versions of jax, jaxlib, flax and numpy, the source of decode.py and model.py, the
backend and its devices, XLA's flags and the host CPU's features). The parameters are arguments
of the programs, not constants, so two bundles of the same architecture share files safely.
The per-version subdirectory keeps an upgrade's files apart from the old ones, which can then
be deleted as a whole. Each file is written whole or not at all and carries a checksum; one
that cannot be read, loaded or run is compiled again and replaced.
"""
from __future__ import annotations

import os

import jax
import jaxlib

from pyhanzi_jax import bundle
from pyhanzi_jax import decode

ENV = 'PYHANZI_COMPILE_CACHE'
OFF = ('', 'off', '0')
EXECUTABLES = 'executables'  # Subdirectory of the decoder's serialized executables.
SHAPES = 'shapes'            # Subdirectory of bundle.model_shapes' files.


def default_dir() -> str:
  """The cache's base directory: $PYHANZI_COMPILE_CACHE if set (possibly 'off'), else the
  per-user cache directory."""
  if ENV in os.environ:
    return os.environ[ENV]
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'pyhanzi_jax', 'jax')


def versioned_dir(base: str) -> str:
  """`base`/<jax version>-<jaxlib version>: one directory per JAX release."""
  return os.path.join(base, f'jax{jax.__version__}-jaxlib{jaxlib.__version__}')


def enable(base: str | None = None) -> str | None:
  """Keeps the decoder's compiled programs in `base`'s versioned subdirectory (default:
  `default_dir()`); returns that directory, or None when it is off ('', 'off', '0') or cannot
  be created (the converter then compiles as without it)."""
  decode.set_executable_dir(None)
  bundle.set_shape_dir(None)
  base = default_dir() if base is None else base
  if base.strip().lower() in OFF:
    return None
  path = versioned_dir(os.path.expanduser(base))
  executables = os.path.join(path, EXECUTABLES)
  try:
    os.makedirs(executables, exist_ok=True)
  except OSError:
    return None
  if not os.access(executables, os.W_OK | os.X_OK):
    return None
  decode.set_executable_dir(executables)
  bundle.set_shape_dir(os.path.join(path, SHAPES))
  return path
