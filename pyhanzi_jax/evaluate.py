"""Evaluation at two levels, with names that say which.

The trainer's validation (`decoded_accuracy`): constrained greedy decoding of the model alone
over prepared id arrays; `greedy_char_acc` is the share of character positions right (positions
whose input is a syllable or an initial: passthrough symbols cannot be wrong under constrained
decoding and would flatter it), `greedy_sent_acc` whole lines right. It picks the best
checkpoint.

The converter's (`evaluate_tsv`, `pyhanzi --eval`, experiments/quality.py): the whole
Converter (beam, word list) on "pinyin<TAB>hanzi" lines typed in three input forms, scored as
the peer harness scores input-method engines: `char_acc` = 1 - edit distance / reference
characters, `sent_acc` exact lines, `topk_acc` the reference among the k best.
"""
from __future__ import annotations

import json
import os
import time
from typing import Iterable, Sequence

import numpy as np

from pyhanzi_jax import candidates as candidates_lib
from pyhanzi_jax import convert
from pyhanzi_jax import decode as decode_lib
from pyhanzi_jax import pinyin
from pyhanzi_jax.data import pipeline
from pyhanzi_jax.data import vocab as vocab_lib


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
  length = decode_lib.round_up(max_len, 8)  # One shape for every batch: one compilation in all.
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


# --- The converter on a TSV of (pinyin, hanzi) lines ------------------------------------------

FORMS = ('spaced', 'runtogether', 'initials')


def input_form(syllables: Sequence[str], form: str) -> str:
  """The same sentence as a person would type it: 'ni hao', 'nihao' or 'nh'.

  Run-together and initials text keeps an apostrophe only where the parser would otherwise
  read the letters differently (as people type xi'an, or x'a for it), so the test measures
  conversion, not the ambiguity of unmarked letters.
  """
  if form == 'spaced':
    return ' '.join(syllables)
  if form == 'runtogether':
    pieces, want = list(syllables), list(syllables)
  elif form == 'initials':
    want = [pinyin.initial_key(s) if s in pinyin.SYLLABLES else s for s in syllables]
    pieces = [k[:-1] if k.endswith('*') else k for k in want]
  else:
    raise ValueError(f'unknown input form {form!r}; choose from {FORMS}')
  out = ''
  for i, piece in enumerate(pieces):
    trial = out + piece
    out = trial if i == 0 or _keys(trial) == want[:i + 1] else out + "'" + piece
  if _keys(out) != want:  # A later piece re-read an earlier boundary: mark every boundary.
    out = "'".join(pieces)
  return out


def _keys(text: str) -> list[str] | None:
  try:
    return [t.key for t in pinyin.parse(text)]
  except pinyin.PinyinError:
    return None


def read_tsv(path: str) -> list[tuple[list[str], str]]:
  rows = []
  with open(path, encoding='utf-8') as f:
    for n, line in enumerate(f, 1):
      line = line.rstrip('\n')
      if not line:
        continue
      if '\t' not in line:
        raise ValueError(f'{path}:{n}: expected "pinyin<TAB>hanzi"')
      py, hz = line.split('\t', 1)
      rows.append((py.split(), hz))
  return rows


def evaluate_tsv(conv: convert.Converter, path: str, forms: Iterable[str] = FORMS, k: int = 5,
                 limit: int = 0) -> dict[str, dict[str, float]]:
  return evaluate_rows(conv, read_tsv(path)[:limit or None], forms, k)[0]


def evaluate_rows(conv: convert.Converter, rows: Sequence[tuple[list[str], str]],
                  forms: Iterable[str] = FORMS, k: int = 5
                  ) -> tuple[dict[str, dict[str, float]], dict[str, list[list[str]]]]:
  """Scores per input form, and each form's k-best texts per row."""
  report, outputs = {}, {}
  for form in forms:
    texts = [input_form(py, form) for py, _ in rows]
    t0 = time.perf_counter()
    nbest = conv.candidates_batch(texts, k)
    seconds = time.perf_counter() - t0
    outputs[form] = [[t for t, _ in c] for c in nbest]
    report[form] = score_texts([c[0] for c in outputs[form]], [hz for _, hz in rows],
                               outputs[form])
    report[form]['ms_per_sentence'] = 1000 * seconds / max(len(rows), 1)
  return report, outputs


def evaluate_from_config(config, workdir: str) -> dict:
  """mode=evaluate: the workdir's model on each eval corpus' test split, three input forms;
  writes WORKDIR/eval.json."""
  conv = convert.Converter(workdir)
  report = {}
  for corpus in [c.strip() for c in config.data.eval_corpora.split(',') if c.strip()]:
    path = os.path.join(config.data.dir, corpus, 'test.tsv')
    report[corpus] = evaluate_tsv(conv, path, limit=config.train.eval_decode_sentences)
    print(corpus, json.dumps(report[corpus]), flush=True)
  with open(os.path.join(workdir, 'eval.json'), 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=2)
  return report
