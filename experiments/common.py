"""What several experiments share: where things are, the quality report's test sample, run logs.

Kept here rather than in one experiment that the others import, so each script depends on this
module and the library only.
"""
from __future__ import annotations

import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # The repository.
# The prepared test sets, data/SET/test.tsv. The out-of-source sets come first: each is cut from a
# source held out of all training (docs/DATA_CARD.md), so they measure text the model never read.
OUT_OF_SOURCE_SETS = ('dev_tech', 'dev_dialogue', 'dev_narrative', 'hsk', 'cuv')
IN_SOURCE_SETS = ('general', 'domain')  # Test splits of corpora the model trained on.
SETS = OUT_OF_SOURCE_SETS + IN_SOURCE_SETS
SEED = 0


def peers_dir() -> str:
  """The peer-engine harness (run_peer.sh, setup.sh): $PEERS_DIR, else ../shared/peers beside
  the repository, where a checkout of the project finds it."""
  return os.environ.get('PEERS_DIR') or os.path.normpath(
      os.path.join(ROOT, '..', 'shared', 'peers'))


def sample_indices(count: int, n: int, key: str, seed: int = SEED) -> list[int]:
  """`n` of a file's `count` line indices (all if fewer), sorted, seeded with `seed` and `key`."""
  return sorted(random.Random(f'{seed}:{key}').sample(range(count), min(n, count)))


def sample_key(set_name: str) -> str:
  """The key quality.py seeds a set's sample with: its test file's path in the data directory.

  Relative ('SET/test.tsv'), so every checkout samples the same lines, and the same whatever
  --data says, so quality.py and lexicon_weight.py (which holds these lines out) agree.
  """
  return f'{set_name}/test.tsv'


# quality.py's sample sizes whose lines dev_rows never uses: the documented run's and its default.
QUALITY_LINES = (200, 500)


def dev_rows(data: str, corpus: str, lines: int, offset: int) -> list:
  """`lines` held-out (pinyin, hanzi) rows of `corpus` after skipping `offset`: its validation
  split in file order, or for a set with only a test file, a seeded shuffle of the test lines
  whose text is none of quality.py's sampled lines'."""
  # Imported here: the library's evaluate brings jax (~1.3 s, 170 MB), which the experiments
  # that only read results (curve, quality_summary, adapt_grid) never need.
  from pyhanzi_jax import evaluate  # pylint: disable=g-import-not-at-top
  valid = os.path.join(data, corpus, 'valid.tsv')
  if os.path.isfile(valid):
    return evaluate.read_tsv(valid)[offset:offset + lines]
  rows = evaluate.read_tsv(os.path.join(data, corpus, 'test.tsv'))
  # quality.py's lines, by their texts: the file repeats some lines.
  key = sample_key(corpus)
  tested = {rows[i][1] for n in QUALITY_LINES for i in sample_indices(len(rows), n, key)}
  held = [i for i, (_, hanzi) in enumerate(rows) if hanzi not in tested]
  random.Random(f'dev:{corpus}').shuffle(held)
  return [rows[i] for i in held[offset:offset + lines]]


def read_results(run: str) -> dict:
  """results.json of a quality.py --out directory."""
  with open(os.path.join(run, 'results.json'), encoding='utf-8') as f:
    return json.load(f)


def read_metrics(workdir: str) -> list[dict]:
  """The rows of a training workdir's metrics.jsonl, in the order written."""
  with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
    return [json.loads(line) for line in f if line.strip()]
