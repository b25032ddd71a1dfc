"""Token vocabularies: one token per line on disk, ids by line number.

Both vocabularies (pinyin tokens for the encoder, characters for the decoder) start with the
same special tokens, so PAD/BOS/EOS/UNK ids are shared constants.
"""
from __future__ import annotations

import hashlib
import os
from typing import Iterable, Sequence

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ('<pad>', '<s>', '</s>', '<unk>')


class Vocab:
  """An immutable token <-> id map."""

  def __init__(self, tokens: Sequence[str]):
    tokens = list(tokens)
    if tuple(tokens[:len(SPECIALS)]) != SPECIALS:
      raise ValueError(f'a vocabulary must start with {SPECIALS}, got {tokens[:4]}')
    if len(set(tokens)) != len(tokens):
      raise ValueError('a vocabulary has duplicate tokens')
    self.tokens = tokens
    self.index = {t: i for i, t in enumerate(tokens)}

  @classmethod
  def from_tokens(cls, tokens: Iterable[str]) -> 'Vocab':
    """SPECIALS followed by `tokens` (duplicates and specials skipped, order kept)."""
    out = list(SPECIALS)
    seen = set(out)
    for t in tokens:
      if t not in seen:
        seen.add(t)
        out.append(t)
    return cls(out)

  @classmethod
  def load(cls, path: str | os.PathLike) -> 'Vocab':
    with open(path, encoding='utf-8') as f:
      return cls([line.rstrip('\n') for line in f])

  def save(self, path: str | os.PathLike) -> None:
    tmp = f'{path}.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(''.join(t + '\n' for t in self.tokens))
    os.replace(tmp, path)

  def __len__(self) -> int:
    return len(self.tokens)

  def __contains__(self, token: str) -> bool:
    return token in self.index

  def id(self, token: str) -> int:
    return self.index.get(token, UNK)

  def decode(self, ids: Iterable[int]) -> list[str]:
    return [self.tokens[int(i)] for i in ids]

  def fingerprint(self) -> str:
    """A short hash of the token list; bundles record it to catch a mismatched vocab."""
    return hashlib.sha256('\n'.join(self.tokens).encode('utf-8')).hexdigest()[:16]


def load_vocabs(data_dir: str | os.PathLike) -> tuple[Vocab, Vocab]:
  """(pinyin, hanzi) vocabularies of a prepared data directory (DATA_DIR/vocab/*.txt)."""
  paths = [os.path.join(data_dir, 'vocab', f) for f in ('pinyin.txt', 'hanzi.txt')]
  for p in paths:
    if not os.path.isfile(p):
      raise FileNotFoundError(
          f'{p} not found: {str(data_dir)!r} is not prepared data. Run '
          f'`python -m pyhanzi_jax.main --config=configs/prepare.py --workdir={data_dir}` first.')
  return Vocab.load(paths[0]), Vocab.load(paths[1])
