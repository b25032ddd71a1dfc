"""The error a model that cannot be loaded raises, apart from the modules that raise it.

checkpoint.py (training checkpoints) needs orbax, which costs a conversion ~0.3 s of start-up and
~40 MB; bundle.py's BundleError derives from CheckpointError, and a bundle is read without orbax.
"""


class CheckpointError(RuntimeError):
  """A checkpoint or bundle that is missing, incomplete or does not match the model."""
