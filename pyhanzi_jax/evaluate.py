"""Scoring conversions: character accuracy, sentence accuracy and top-k sentence accuracy.

Character accuracy counts the positions of Chinese characters only (those whose input is a
syllable or an initial); passthrough symbols cannot be wrong under constrained decoding and
would flatter the number. Sentence accuracy asks for the whole line, symbols included.
"""
from __future__ import annotations

import numpy as np

from pyhanzi_jax import candidates as candidates_lib
from pyhanzi_jax import decode as decode_lib
from pyhanzi_jax.data import pipeline
from pyhanzi_jax.data import vocab as vocab_lib


def bucket_length(n: int, step: int = 8) -> int:
  return -(-n // step) * step


def score_predictions(predictions: list[list[int]], targets: list[list[int]],
                      is_char: list[np.ndarray]) -> dict[str, float]:
  """Position-wise character accuracy over `is_char` positions, and exact-match accuracy."""
  chars = correct_chars = sents = 0
  for pred, tgt, mask in zip(predictions, targets, is_char):
    pred = list(pred)[:len(tgt)] + [-1] * max(0, len(tgt) - len(pred))
    ok = np.asarray(pred) == np.asarray(tgt)
    chars += int(mask.sum())
    correct_chars += int((ok & mask).sum())
    sents += int(ok.all() and len(pred) == len(tgt))
  n = max(len(targets), 1)
  return {'greedy_char_acc': correct_chars / max(chars, 1), 'greedy_sent_acc': sents / n}


def decoded_accuracy(model, params, split: pipeline.Split, pinyin_vocab: vocab_lib.Vocab,
                     hanzi_vocab: vocab_lib.Vocab, *, max_sentences: int, max_len: int,
                     batch_size: int = 64, table: candidates_lib.CandidateTable | None = None
                     ) -> dict[str, float]:
  """Constrained greedy decoding of the first `max_sentences` sentences of `split`."""
  table = table or candidates_lib.CandidateTable(pinyin_vocab, hanzi_vocab)
  keep = np.flatnonzero(split.lengths + 1 <= max_len)[:max_sentences]
  is_syllable = np.asarray([t in _abbrev_or_syllable() for t in pinyin_vocab.tokens])
  length = bucket_length(max_len)  # One shape for every batch: one compilation in all.
  preds, tgts, masks = [], [], []
  for start in range(0, len(keep), batch_size):
    idx = keep[start:start + batch_size]
    src, tgt = split.rows(idx, length)
    if len(idx) < batch_size:  # Fixed batch shape too.
      fill = np.zeros((batch_size - len(idx), length), np.int32)
      fill[:, 0] = vocab_lib.EOS
      src = np.concatenate([src, fill])
    constraints = table.for_inputs(src, table.syllable_width)
    seqs, _ = decode_lib.greedy_search(model, params, src, constraints=constraints,
                                       max_len=length)
    seqs = np.asarray(seqs)
    for row, k in enumerate(idx):
      n = int(split.lengths[k])
      preds.append(list(seqs[row, :n]))
      tgts.append(list(tgt[row, :n]))
      masks.append(is_syllable[src[row, :n]])
  return score_predictions(preds, tgts, masks)


def _abbrev_or_syllable() -> frozenset:
  from pyhanzi_jax import pinyin  # pylint: disable=g-import-not-at-top
  return frozenset(pinyin.SYLLABLES) | frozenset(pinyin.INITIAL_KEYS)


def edit_distance(a: str, b: str) -> int:
  prev = list(range(len(b) + 1))
  for i, ca in enumerate(a, 1):
    cur = [i]
    for j, cb in enumerate(b, 1):
      cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
    prev = cur
  return prev[-1]


def score_texts(predictions: list[str], references: list[str],
                nbest: list[list[str]] | None = None) -> dict[str, float]:
  """Text-level scores, the same definitions as the peer harness (shared/peers/README.md):
  char_acc = 1 - sum(edit distance) / sum(len(reference)); sent_acc = exact match; topk_acc =
  the reference among the candidates."""
  dist = sum(edit_distance(p, r) for p, r in zip(predictions, references))
  total = max(sum(len(r) for r in references), 1)
  n = max(len(references), 1)
  out = {'char_acc': 1.0 - dist / total,
         'sent_acc': sum(p == r for p, r in zip(predictions, references)) / n,
         'sentences': len(references)}
  if nbest is not None:
    out['topk_acc'] = sum(r in c for c, r in zip(nbest, references)) / n
  return out


def evaluate_from_config(config, workdir: str) -> dict:
  """mode=evaluate: the workdir's model on each eval corpus' test split, three input forms;
  writes WORKDIR/eval.json."""
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  from pyhanzi_jax import convert  # pylint: disable=g-import-not-at-top
  conv = convert.Converter(workdir)
  report = {}
  for corpus in [c.strip() for c in config.data.eval_corpora.split(',') if c.strip()]:
    path = os.path.join(config.data.dir, corpus, 'test.tsv')
    report[corpus] = convert.evaluate_tsv(conv, path, limit=config.train.eval_decode_sentences)
    print(corpus, json.dumps(report[corpus]), flush=True)
  with open(os.path.join(workdir, 'eval.json'), 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=2)
  return report
