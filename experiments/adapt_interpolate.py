r"""How much of an adapted model to keep: the base's parameters moved a fraction `alpha` of the way
to the adapted ones (weight-space interpolation, as in WiSE-FT), scored on the adapt run's own
held-out sentences and on general text, with the adapted word list throughout.

  python -m experiments.adapt_interpolate runs/adapt_dev/linuxdoc_100K_10min \
      --alphas 0,0.25,0.5,0.75,1 [--split valid] [--sentences 300]

The run's held-out split (OUT.work/data/user/test.tsv) is what the report scores; choosing alpha
belongs on its validation split (`--split valid`) or on another text.
"""
from __future__ import annotations

import argparse
import os

import jax

from experiments import common
from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import convert
from pyhanzi_jax import evaluate


def main(argv=None) -> None:
  ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  ap.add_argument('out', help='the adapted bundle (its work is in OUT.work)')
  ap.add_argument('--base', default='', help='the base bundle (default: the release)')
  ap.add_argument('--alphas', default='0,0.25,0.5,0.75,1')
  ap.add_argument('--split', default='test', choices=('test', 'valid'))
  ap.add_argument('--sentences', type=int, default=300)
  ap.add_argument('--data', default=os.path.join(common.ROOT, 'data'))
  args = ap.parse_args(argv)

  conv = convert.Converter(args.out)
  adapted = conv.params
  base = jax.device_put(bundle_lib.load_model(args.base or bundle_lib.default_model_path()).params)
  user_rows = evaluate.read_tsv(os.path.join(args.out + '.work', 'data', 'user',
                                             f'{args.split}.tsv'))[:args.sentences]
  general_split = 'valid' if args.split == 'valid' else 'test'
  general_rows = evaluate.read_tsv(os.path.join(args.data, 'general',
                                                f'{general_split}.tsv'))[:args.sentences]
  print(f'{args.out}: {len(user_rows)} {args.split} sentences of the text, {len(general_rows)} '
        f'general/{general_split}')
  print('| alpha | your text char | sent | general char | sent |\n|---:|---:|---:|---:|---:|')
  for alpha in (float(a) for a in args.alphas.split(',')):
    conv.params = jax.tree.map(lambda b, a: b + alpha * (a - b), base, adapted)
    cells = []
    for rows in (user_rows, general_rows):
      s = evaluate.evaluate_rows(conv, rows, ['spaced'], 1)[0]['spaced']
      cells += [f'{s["char_acc"]:.4f}', f'{s["sent_acc"]:.3f}']
    print(f'| {alpha:g} | ' + ' | '.join(cells) + ' |', flush=True)


if __name__ == '__main__':
  main()
