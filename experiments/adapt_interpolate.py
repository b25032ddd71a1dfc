r"""How far an adapted model should move from the base (`pyhanzi adapt --strength`): the base's
parameters moved a share `alpha` of the way to the fine-tuned checkpoint of an adapt run
(bundle.interpolate, weight-space interpolation as in WiSE-FT), scored on the run's validation
sentences and general/valid, with the adapted word list throughout.

  python -m experiments.adapt_interpolate runs/adapt_dev/linuxdoc_100K_10min \
      --alphas 0,0.25,0.5,0.75,1 [--split test] [--sentences 300]

The default split is the one to choose on: the run's validation sentences (OUT.work/data/user/
valid.tsv) and general/valid. `--split test` scores the held-out sentences adapt's report
scores (and general/test), to see a choice's effect, not to make it.
"""
from __future__ import annotations

import argparse
import os

import jax

from experiments import common
from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import convert
from pyhanzi_jax import evaluate


def main(argv=None) -> None:
  ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  ap.add_argument('out', help='the adapted bundle (its work is in OUT.work)')
  ap.add_argument('--base', default='', help='the base bundle (default: the release)')
  ap.add_argument('--alphas', default='0,0.25,0.5,0.75,1')
  ap.add_argument('--split', default='valid', choices=('valid', 'test'))
  ap.add_argument('--sentences', type=int, default=300)
  ap.add_argument('--data', default=os.path.join(common.ROOT, 'data'))
  args = ap.parse_args(argv)

  conv = convert.Converter(args.out)  # Its word list; the parameters are set below.
  base = bundle_lib.load_model(args.base or bundle_lib.default_model_path()).params
  tuned, step, _ = ckpt_lib.restore_params_from_workdir(
      os.path.join(args.out + '.work', 'train'), ckpt_lib.abstract_like(base))
  user_rows = evaluate.read_tsv(os.path.join(args.out + '.work', 'data', 'user',
                                             f'{args.split}.tsv'))[:args.sentences]
  general_split = 'valid' if args.split == 'valid' else 'test'
  general_rows = evaluate.read_tsv(os.path.join(args.data, 'general',
                                                f'{general_split}.tsv'))[:args.sentences]
  print(f'{args.out} (checkpoint step {step}): {len(user_rows)} {args.split} sentences of the '
        f'text, {len(general_rows)} general/{general_split}')
  print('| alpha | your text char | sent | general char | sent |\n|---:|---:|---:|---:|---:|')
  for alpha in (float(a) for a in args.alphas.split(',')):
    conv.params = jax.device_put(bundle_lib.interpolate(base, tuned, alpha))
    cells = []
    for rows in (user_rows, general_rows):
      s = evaluate.evaluate_rows(conv, rows, ['spaced'], 1)[0]['spaced']
      cells += [f'{s["char_acc"]:.4f}', f'{s["sent_acc"]:.3f}']
    print(f'| {alpha:g} | ' + ' | '.join(cells) + ' |', flush=True)


if __name__ == '__main__':
  main()
