r"""A trained model with more encoder layers that computes exactly what it computed before.

  python -m experiments.grow_encoder --model runs/base --add 3 --out runs/grown6

The new blocks go after the old ones (before the encoder's final norm) with freshly initialised
weights, except the two projections that write into the residual stream (the attention's `out`
and the MLP's `wo`), which are zero: a pre-norm block whose writes are zero is the identity, so
the grown model's outputs equal the old model's (the model's: the bundle written has no word
list, whatever --model had), and training can then teach the new blocks
alone (`config.optim.frozen` on everything else) what the wider text holds, without moving the
weights the in-source accuracy rests on. The encoder runs once a sentence at conversion (the
decoder once a character per hypothesis), so its layers cost the converter little time.
docs/TRAINING.md has the run.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

from flax import traverse_util
import jax
import numpy as np

from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import model as model_lib

# What a pre-norm block writes into the residual stream (model.EncoderBlock).
WRITES = ('self_attention/out/', 'mlp/wo/')


def grow(params, config: model_lib.ModelConfig, add: int, seed: int = 0):
  """(params, config) with `add` identity blocks after the encoder's last."""
  grown = dataclasses.replace(config, enc_layers=config.enc_layers + add)
  fresh = jax.tree.map(np.asarray, model_lib.init_params(grown, jax.random.key(seed)))
  old = traverse_util.flatten_dict(params, sep='/')
  flat = traverse_util.flatten_dict(fresh, sep='/')
  new_blocks = tuple(f'encoder/layers_{i}/' for i in range(config.enc_layers, grown.enc_layers))
  for name, value in flat.items():
    if name in old:
      flat[name] = np.asarray(old[name], value.dtype)
    elif not name.startswith(new_blocks):
      raise ValueError(f'{name} is new but not in a new encoder block')
    elif any(w in name for w in WRITES):
      flat[name] = np.zeros_like(value)
  return traverse_util.unflatten_dict(flat, sep='/'), grown


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--model', default=bundle_lib.RELEASE_DIR, help='the trained bundle')
  ap.add_argument('--add', type=int, default=3, help='encoder blocks to add')
  ap.add_argument('--out', required=True, help='where to write the grown bundle')
  args = ap.parse_args(argv)
  if args.add < 1:
    ap.error('--add must be at least 1')
  try:
    base = bundle_lib.load_model(args.model)
  except bundle_lib.BundleError as e:
    ap.error(str(e))
  params, config = grow(base.params, base.model_config, args.add)
  # float32: the training run's start (optim.init_from), not a release.
  bundle_lib.export_bundle(
      args.out, params, config, base.pinyin_vocab, base.hanzi_vocab, max_len=base.max_len,
      settings=base.settings, dtype='float32',
      provenance={'from': f'{args.model} with {args.add} identity encoder blocks added'})
  print(f'wrote {args.out}: {config.enc_layers} encoder layers, {config.dec_layers} decoder')
  return 0


if __name__ == '__main__':
  sys.exit(main())
