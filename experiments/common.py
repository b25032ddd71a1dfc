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


def read_results(run: str) -> dict:
  """results.json of a quality.py --out directory."""
  with open(os.path.join(run, 'results.json'), encoding='utf-8') as f:
    return json.load(f)


def read_metrics(workdir: str) -> list[dict]:
  """The rows of a training workdir's metrics.jsonl, in the order written."""
  with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
    return [json.loads(line) for line in f if line.strip()]
