r"""`pyhanzi adapt`: a user's own text makes their model, in minutes, on their own CPU.

  pyhanzi adapt notes/*.txt --out mymodel             # ~10 minutes of training, then
  pyhanzi --model mymodel ni hao                      # or convert.Converter('mymodel')
  python -m pyhanzi_jax.adapt book.txt --out mymodel --minutes 5 --general-data data

  >>> path, report = adapt(['notes.txt'], 'mymodel', minutes=5)
  >>> print(report.to_text())

What a run does (docs/ADAPT.md has the measurements):
1. text: the files are cleaned and paired as the corpora were (adapt_text.py), with the base
   model's vocabularies, and split by content hash into held-out test sentences (the report),
   validation sentences (the best checkpoint) and the sentences to adapt on;
2. words: the base's word list learns the text's words, word pairs and new terms
   (adapt_words.py);
3. the base converter is measured on the held-out sentences, and on general held-out text;
4. training: the trainer (train.train_and_evaluate, with a config built here) fine-tunes the
   decoder from the base with the encoder frozen (`encoder/.*`, docs/FINETUNE.md), on the
   adaptation sentences mixed with GENERAL_SHARE of general text (`--general-data DIR`'s
   general/train, else the sample in the package: adapt_sample.py), so that the rest is not
   forgotten. The number of steps is what fits `--minutes`: one step is measured first
   (`measure_step`, `plan_steps`); a run that still overruns by TIME_SLACK is stopped through
   the trainer's SIGTERM path, which saves and stops cleanly;
5. the best checkpoint becomes a bundle in OUT with the adapted word list, and the adapted
   converter is measured on the same held-out sentences.

The work lives beside the bundle, in OUT.work/ (`adapt.json`: the settings and what is done;
`data/`: the prepared splits; `train/`: the trainer's checkpoints and logs). Rerunning the same
command resumes where it stopped (the trainer restores its latest checkpoint; nothing already
measured is measured again). Ctrl-C during training stops at the next step and writes the best
checkpoint so far to OUT; a second Ctrl-C stops at once.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import io
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
from typing import Any, Callable, Sequence

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from pyhanzi_jax import adapt_sample
from pyhanzi_jax import adapt_text
from pyhanzi_jax import adapt_words
from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import config_defaults
from pyhanzi_jax import convert
from pyhanzi_jax import evaluate
from pyhanzi_jax import exit_codes
from pyhanzi_jax import model as model_lib
from pyhanzi_jax import optim
from pyhanzi_jax import train
from pyhanzi_jax.data import pipeline
from pyhanzi_jax.data import prepare
from pyhanzi_jax.data import vocab as vocab_lib

AdaptError = adapt_text.AdaptError

STATE_VERSION = 1        # Bump when adapt.json or the data layout changes.
MINUTES = 10.0           # Default training budget.
GENERAL_SHARE = 0.3      # Share of the training sentences that are general text.
EVAL_SENTENCES = 150     # Held-out sentences of each kind the report converts per model.
BATCH_SIZE = 64
LEARNING_RATE = 3e-4     # docs/FINETUNE.md's fine-tuning rate.
# The bundle's decoder moves this share of the way from the base's to the fine-tuned one
# (weight-space interpolation, as WiSE-FT): the fine-tuned weights alone forgot 1.9 points of
# general text on a dev text (docs/ADAPT.md), and part of the way keeps most of the gain.
STRENGTH = 0.25
LABEL_SMOOTHING = 0.05   # The base's (configs/pretrain_cpu.py, release stages).
LENGTH_BUCKET = 32       # Batches pad to 32 tokens, or to the bundle's max_len: two compiles.
MIN_STEPS = 20           # Fewer updates than this do not adapt anything worth the wait.
# A budget's steps are capped at this many passes over the training mixture (the text's
# sentences and the general ones in their share): a small text given ten minutes was seen ~100
# times and forgot general text at any strength (docs/ADAPT.md, "Passes over a small text").
MAX_PASSES = 8.0
# What a step plan adds to the measured step (plan_steps): a batch padded to 64 tokens costs
# about 2.3x one of 32 (measured on the release model, 2 busy cores); the trainer compiles its
# step for each length, its validation step and greedy decoding, ~COMPILES x the measured
# compile, and starts up (parameters, data) in ~STARTUP_S.
LONG_BATCH_COST = 2.3
COMPILES = 3.5
STARTUP_S = 15.0
VALIDATIONS = 3          # Validations (and checkpoints) in a run, the last one at its end.
MEASURED_STEPS = 5       # Timed steps of the plan's measurement (their median).
TIME_SLACK = 1.25        # A run still training at this x its budget (+ 30 s) is stopped.


# --- The report -------------------------------------------------------------------------------

@dataclasses.dataclass
class Scores:
  """The converter's metric (evaluate.score_texts) on held-out lines, spaced pinyin input."""
  char_acc: float
  sent_acc: float
  sentences: int


@dataclasses.dataclass
class AdaptReport:
  """What `adapt` did, and what the adapted model gained and lost."""
  bundle: str
  base: str
  workdir: str
  files: list[str]
  chinese_chars: int              # In the files as given.
  sentences: int                  # Usable sentences (after cleaning).
  split: dict[str, int]           # Sentences to adapt on ('train'), validate and hold out.
  left_out: str                   # What cleaning dropped, in words ('' when nothing).
  outside_vocab: list[tuple[str, int]]  # Characters the model cannot write (top 20).
  new_words: list[tuple[str, int]]      # Terms the word list learned (top 20) ...
  new_word_count: int                   # ... and how many in all.
  general: str                    # Where the general text came from.
  general_share: float
  steps: int                      # Updates done ...
  num_steps: int                  # ... of those planned.
  status: str                     # 'finished', 'time limit', 'interrupted' (Ctrl-C) or
                                  # 'stopped' (SIGTERM).
  train_seconds: float            # Training wall time, all runs together.
  user_base: Scores | None = None
  user_adapted: Scores | None = None
  general_base: Scores | None = None
  general_adapted: Scores | None = None

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, obj: dict) -> 'AdaptReport':
    obj = dict(obj)
    for k in ('user_base', 'user_adapted', 'general_base', 'general_adapted'):
      obj[k] = Scores(**obj[k]) if obj.get(k) else None
    for k in ('outside_vocab', 'new_words'):
      obj[k] = [tuple(x) for x in obj[k]]
    return cls(**obj)

  def to_text(self) -> str:
    lines = [f'Adapted model: {self.bundle}  (from {self.base})']
    n_files = f'{len(self.files)} file' + ('s' if len(self.files) != 1 else '')
    lines.append(f'Text: {n_files}, {self.chinese_chars:,} Chinese characters -> '
                 f'{self.sentences:,} sentences ({self.split["train"]:,} to adapt on, '
                 f'{self.split["valid"]:,} to validate, {self.split["test"]:,} held out)')
    if self.left_out:
      lines.append(f'  {self.left_out}')
    if self.outside_vocab:
      lines.append('  characters the model cannot write: ' + ' '.join(
          f'{c}{n}' for c, n in self.outside_vocab))
    if self.new_word_count:
      lines.append(f'New words in the word list ({self.new_word_count:,}): ' + ' '.join(
          f'{w}{n}' for w, n in self.new_words))
    lines.append(f'Training: {self.steps}/{self.num_steps} steps in '
                 f'{_duration(self.train_seconds)} ({self.status}); decoder only, encoder '
                 f'frozen; {self.general_share:.0%} general text ({self.general})')
    if self.user_base or self.general_base:
      lines.append('Held-out accuracy (the converter on spaced pinyin), base -> adapted:')
      for name, base, new in (('your text', self.user_base, self.user_adapted),
                              ('general text', self.general_base, self.general_adapted)):
        if base is None:
          continue
        cells = []
        for metric, label in (('char_acc', 'characters'), ('sent_acc', 'sentences')):
          b = getattr(base, metric)
          a = None if new is None else getattr(new, metric)
          cells.append(f'{label} {b:.4f}' + ('' if a is None else
                                             f' -> {a:.4f} ({100 * (a - b):+.2f} pt)'))
        lines.append(f'  {name + f" ({base.sentences} lines)":24s} ' + '   '.join(cells))
    if self.status != 'finished':
      lines.append(f'Stopped early ({self.status}): OUT holds the best checkpoint so far; run '
                   'the same command again to finish.')
    return '\n'.join(lines)


def _duration(seconds: float) -> str:
  s = int(round(seconds))
  return f'{s // 3600}h{s % 3600 // 60:02d}m' if s >= 3600 else f'{s // 60}m{s % 60:02d}s'


# --- Progress on stderr -----------------------------------------------------------------------

class Progress:
  """One status line on stderr: a bar while training, the stage otherwise, with an ETA.

  On a terminal the line is redrawn in place; elsewhere (a log file, a pipe) each stage is one
  line and training prints a line every tenth of its steps.
  """

  def __init__(self, stream=None, enabled: bool = True):
    self.stream = stream or sys.stderr
    self.enabled = enabled
    self.tty = enabled and hasattr(self.stream, 'isatty') and self.stream.isatty()
    self._last_tenth = -1
    self._width = 0

  def _show(self, text: str, final: bool = False) -> None:
    if not self.enabled:
      return
    if self.tty:
      pad = max(0, self._width - len(text))
      self.stream.write('\r' + text + ' ' * pad + ('\n' if final else ''))
      self._width = 0 if final else len(text)
    else:
      self.stream.write(text + '\n')
    self.stream.flush()

  def stage(self, text: str, eta_s: float | None = None) -> None:
    if self.tty and self._width:
      self._show('', final=True)
    eta = f'  (about {_duration(eta_s)} left in all)' if eta_s else ''
    self._show(f'adapt: {text}{eta}', final=True)

  def step(self, step: int, total: int, eta_s: float | None) -> None:
    eta = f'  ETA {_duration(eta_s)}' if eta_s is not None else ''
    if self.tty:
      filled = int(30 * step / max(total, 1))
      self._show(f'adapt: [{"#" * filled}{"." * (30 - filled)}] step {step}/{total}{eta}',
                 final=step >= total)
      return
    tenth = 10 * step // max(total, 1)
    if tenth != self._last_tenth:
      self._last_tenth = tenth
      self._show(f'adapt: step {step}/{total}{eta}')


class _TrainerOutput(io.TextIOBase):
  """Stands in for stdout while the trainer runs: its progress lines ('step 12/180 ...') go
  to `on_step` and every line to the run's train.log."""
  _STEP = re.compile(r'^step (\d+)/(\d+)')

  def __init__(self, log_path: str, on_step: Callable[[int, int], None]):
    self._log = open(log_path, 'a', encoding='utf-8')
    self._on_step = on_step
    self._buffer = ''

  def write(self, text: str) -> int:
    self._buffer += text
    while '\n' in self._buffer:
      line, self._buffer = self._buffer.split('\n', 1)
      self._log.write(line + '\n')
      self._log.flush()
      m = self._STEP.match(line)
      if m:
        self._on_step(int(m.group(1)), int(m.group(2)))
    return len(text)

  def close(self) -> None:
    self._log.close()
    super().close()


# --- Stopping: Ctrl-C and the time limit ------------------------------------------------------

class _Stopper:
  """The time limit stops the trainer through its SIGTERM path (train._Preemption: it saves the
  step and raises exit_codes.Preempted), so that what was trained is kept. Ctrl-C needs nothing
  here: the trainer takes it the same way in its loop, and hands a second one back to Python.

  Outside the trainer's loop SIGTERM reaches this object's own handler, which only records the
  request (the default action would kill the process mid-export). Off the main thread (a
  notebook worker) no handler can be installed, and the run trains its planned steps.
  """

  def __init__(self):
    self.reason: str | None = None
    self._previous = None
    self._timer: threading.Timer | None = None

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
    except ValueError:  # Not the main thread.
      self._previous = None
    return self

  def __exit__(self, *exc):
    if self._timer is not None:
      self._timer.cancel()
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)

  def deadline(self, seconds: float) -> None:
    """Stops the trainer `seconds` from now."""
    if self._previous is not None:
      self._timer = threading.Timer(seconds, self._time_up)
      self._timer.daemon = True
      self._timer.start()

  def _time_up(self) -> None:
    self.reason = 'time limit'
    os.kill(os.getpid(), signal.SIGTERM)  # The trainer's handler in its loop, else ours.

  def _on_sigterm(self, signum, frame):  # pylint: disable=unused-argument
    self.reason = self.reason or 'stopped'


# --- Planning the steps -----------------------------------------------------------------------

def measure_step(base: bundle_lib.Bundle, split: pipeline.Split, batch_size: int,
                 optim_config) -> tuple[float, float]:
  """(compile seconds, seconds per step) of the fine-tuning step at LENGTH_BUCKET tokens, from
  one compiled step and the median of MEASURED_STEPS timed ones on the text's own sentences
  (the mean of two was 0.38 s in one run and 0.68 s in the next on the same machine and text,
  planning 1,122 and 610 steps of what then ran at ~0.7 s)."""
  model = model_lib.Transformer(dataclasses.replace(base.model_config, dropout_rate=0.0))
  params = jax.tree.map(jnp.asarray, base.params)
  tx, labels = optim.make_optimizer(optim_config, 100, params)
  state = train.TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params))
  step = jax.jit(train.make_train_step(model, tx, labels, LABEL_SMOOTHING))
  fits = np.flatnonzero(split.lengths + 1 <= LENGTH_BUCKET)
  idx = np.resize(fits if len(fits) else np.arange(len(split)), batch_size)
  src, tgt = split.rows(idx, LENGTH_BUCKET)
  batch = {'inputs': src, 'targets': tgt}
  rng = jax.random.key(0)
  t0 = time.perf_counter()
  state, _ = step(state, batch, rng)
  jax.block_until_ready(state)
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(MEASURED_STEPS):
    t0 = time.perf_counter()
    state, _ = step(state, batch, rng)
    jax.block_until_ready(state)
    times.append(time.perf_counter() - t0)
  return compile_s, float(np.median(times))


def plan_steps(budget_s: float, compile_s: float, step_s: float, long_fraction: float) -> int:
  """Updates that fit `budget_s` seconds of training: the budget less the trainer's start-up
  and compiles, over the expected step (a share `long_fraction` of batches padded longer)."""
  step = step_s * (1.0 + (LONG_BATCH_COST - 1.0) * long_fraction)
  # Each validation decodes the validation sentences: about a compile's worth the first time,
  # a few steps' worth after.
  overhead = STARTUP_S + COMPILES * compile_s + VALIDATIONS * 3 * step
  return max(0, int((budget_s - overhead) / step))


def passes_cap(max_passes: float, batch_size: int, mixture_sentences: int) -> int:
  """Steps that show the model each sentence of the training mixture (the text's and the
  general sentences in their share) about `max_passes` times (0: no cap; at least MIN_STEPS)."""
  if not max_passes:
    return 0
  return max(MIN_STEPS, math.ceil(max_passes * mixture_sentences / batch_size))


# --- The run ----------------------------------------------------------------------------------

def train_config(base: bundle_lib.Bundle, data_dir: str, init_from: str, train_corpus: str,
                 num_steps: int, *, batch_size: int, learning_rate: float, seed: int,
                 valid_sentences: int) -> ml_collections.ConfigDict:
  """The trainer's config for fine-tuning `base`'s decoder on `data_dir`'s 'user' corpus."""
  c = config_defaults.get_config()
  c.seed = seed
  c.data.dir = data_dir
  c.data.train_corpus = train_corpus
  c.data.eval_corpora = 'user'
  c.data.max_len = base.max_len
  c.data.length_buckets = str(LENGTH_BUCKET)
  mc = base.model_config
  for field in ('emb_dim', 'num_heads', 'enc_layers', 'dec_layers', 'mlp_dim',
                'attention_dropout_rate', 'max_len'):
    c.model[field] = getattr(mc, field)
  c.model.dropout_rate = 0.0  # As the release was trained (configs/release_cpu.py).
  c.model.dtype = jnp.dtype(mc.dtype).name
  c.model.param_dtype = jnp.dtype(mc.param_dtype).name
  c.optim.init_from = init_from
  c.optim.frozen = 'encoder/.*'
  c.optim.learning_rate = learning_rate
  c.optim.warmup_steps = max(1, min(50, num_steps // 10))
  c.optim.label_smoothing = LABEL_SMOOTHING
  c.train.batch_size = batch_size
  c.train.num_steps = num_steps
  c.train.log_every = 1  # Every step's line feeds the progress bar.
  c.train.eval_every = -(-num_steps // VALIDATIONS)  # The last validation at the end.
  c.train.eval_batches = 2
  c.train.eval_decode_sentences = min(64, valid_sentences)
  c.train.checkpoint_every = c.train.eval_every
  c.train.keep_checkpoints = 1
  c.train.best_metric = 'user/greedy_char_acc'
  c.train.export_at_end = False  # The bundle is written here, with the word list.
  c.distributed.initialize = 'no'
  return c


def _disk_needed(base: bundle_lib.Bundle) -> int:
  """Bytes a run writes at most: the trainer's state (float32 parameters and the decoder's Adam
  moments, at most 3x the parameters) in up to three checkpoints (latest, best, one being
  written), a copy of the base, the bundle and its word list, the prepared data."""
  params = 4 * sum(int(np.size(x)) for x in jax.tree.leaves(base.params))
  return 3 * 3 * params + 2 * params + 100 * 2**20


def _check_disk(path: str, need: int) -> None:
  probe = os.path.abspath(path)
  while not os.path.exists(probe):
    probe = os.path.dirname(probe)
  free = shutil.disk_usage(probe).free
  if free < need:
    raise AdaptError(f'not enough disk space for {path}: {free / 2**20:,.0f} MB free, about '
                     f'{need / 2**20:,.0f} MB needed (checkpoints, the bundle, the data); free '
                     'some space or choose --out on another disk')


def _is_disk_full(e: BaseException) -> bool:
  while e is not None:
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
      return True
    if 'No space left on device' in str(e):
      return True
    e = e.__cause__ or e.__context__
  return False


def _save_arrays(data_dir: str, corpus: str, split: str, src, tgt, offsets) -> None:
  os.makedirs(os.path.join(data_dir, corpus), exist_ok=True)
  for part, arr in (('src', src), ('tgt', tgt), ('offsets', offsets)):
    np.save(os.path.join(data_dir, corpus, f'{split}.{part}.npy'), arr)


def _general_mix(general_data: str | None, share: float, n_user: int, seed: int,
                 pinyin_vocab: vocab_lib.Vocab, hanzi_vocab: vocab_lib.Vocab, data_dir: str
                 ) -> tuple[str, int, int]:
  """Writes data_dir/general/train, about share / (1 - share) x n_user sentences (repeated when
  the source has fewer); returns (where it came from, sentences written, repeats)."""
  needed = round(share / (1.0 - share) * n_user) if share > 0 else 0
  if general_data:
    source = pipeline.load_split(general_data, 'general', 'train')
    where = f'{general_data}/general/train'
    available = len(source)
  else:
    pairs = [p for p in adapt_sample.read_sample('train')
             if all(c in hanzi_vocab for c in p.hanzi)]
    where, available = 'the sample in the package', len(pairs)
  if not needed or not available:
    return where, 0, 0
  repeats = math.ceil(needed / available)
  n = min(available, round(needed / repeats))
  if general_data:
    idx = np.sort(np.random.default_rng([seed, 0x6E7]).choice(len(source), n, replace=False))
    lengths = source.lengths[idx]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    src = np.concatenate([np.asarray(source.src[a:b]) for a, b in
                          zip(source.offsets[idx], source.offsets[idx + 1])])
    tgt = np.concatenate([np.asarray(source.tgt[a:b]) for a, b in
                          zip(source.offsets[idx], source.offsets[idx + 1])])
    _save_arrays(data_dir, 'general', 'train', src.astype(np.uint16), tgt.astype(np.uint16),
                 offsets)
  else:
    prepare.write_split(data_dir, 'general', 'train', pairs[:n], pinyin_vocab, hanzi_vocab,
                        tsv=False)
  return where, n, repeats


def _general_rows(general_data: str | None, limit: int) -> list[tuple[list[str], str]]:
  if general_data:
    return evaluate.read_tsv(os.path.join(general_data, 'general', 'test.tsv'))[:limit]
  return [(p.keys.split(' '), p.hanzi) for p in adapt_sample.read_sample('test')[:limit]]


def _check_general_data(general_data: str, base: bundle_lib.Bundle) -> None:
  try:
    pv, hv = vocab_lib.load_vocabs(general_data)
  except FileNotFoundError as e:
    raise AdaptError(f'--general-data {general_data}: {e}') from None
  if (pv.fingerprint(), hv.fingerprint()) != (base.pinyin_vocab.fingerprint(),
                                              base.hanzi_vocab.fingerprint()):
    raise AdaptError(f'--general-data {general_data} was prepared with other vocabularies than '
                     'the base model: give the data the base was trained on, or leave '
                     '--general-data out to use the sample in the package')
  for path in (os.path.join(general_data, 'general', 'train.src.npy'),
               os.path.join(general_data, 'general', 'test.tsv')):
    if not os.path.isfile(path):
      raise AdaptError(f'--general-data {general_data}: {path} is missing (a prepared data '
                       'directory has general/train and general/test)')


def _measure(conv: convert.Converter, user_rows, general_rows
                  ) -> tuple[Scores, Scores | None]:
  def score(rows):
    if not rows:
      return None
    s = evaluate.evaluate_rows(conv, rows, ['spaced'], 1)[0]['spaced']
    return Scores(round(s['char_acc'], 6), round(s['sent_acc'], 6), len(rows))
  return score(user_rows), score(general_rows)


def _latest_step(train_dir: str) -> int:
  path = os.path.join(train_dir, 'checkpoints')
  steps = [int(d) for d in os.listdir(path) if d.isdigit()] if os.path.isdir(path) else []
  return max(steps, default=0)


def _check_out(out: str, workdir: str, base_path: str) -> None:
  """Refuses to overwrite what adapt did not write: the base, or any other directory."""
  if os.path.abspath(out) == os.path.abspath(base_path):
    raise AdaptError(f'--out {out} is the base model itself; choose a new directory')
  if not os.path.exists(out):
    return
  if not os.path.isdir(out):
    raise AdaptError(f'--out {out} is a file; choose a new directory')
  if os.listdir(out) and not os.path.isfile(os.path.join(workdir, 'adapt.json')):
    raise AdaptError(f'--out {out} already exists and was not written by an adapt run with '
                     f'workdir {workdir}; choose a new directory, or delete it')


@dataclasses.dataclass(frozen=True)
class Options:
  """How to adapt, besides the text and the base (`adapt`'s keyword arguments)."""
  minutes: float = MINUTES
  general_data: str | None = None
  general_share: float = GENERAL_SHARE
  eval_sentences: int = EVAL_SENTENCES
  steps: int | None = None
  batch_size: int = BATCH_SIZE
  learning_rate: float = LEARNING_RATE
  strength: float = STRENGTH
  max_passes: float = MAX_PASSES
  seed: int = 0
  min_sentences: int = adapt_text.MIN_SENTENCES

  def check(self) -> None:
    if not 0 <= self.general_share < 1:
      raise AdaptError(f'--general-share must be at least 0 and below 1, got '
                       f'{self.general_share}')
    if self.steps is None and not self.minutes > 0:
      raise AdaptError(f'--minutes must be more than 0, got {self.minutes}')
    if self.steps is not None and self.steps < 1:
      raise AdaptError(f'--steps must be at least 1, got {self.steps}')
    if self.max_passes < 0:
      raise AdaptError(f'--max-passes must be at least 0 (0: no cap), got {self.max_passes}')
    if not 0 <= self.strength <= 1:
      raise AdaptError(f'--strength must be from 0 to 1, got {self.strength}')
    if self.eval_sentences < 0:
      raise AdaptError(f'--eval-sentences must be at least 0, got {self.eval_sentences}')
    if self.batch_size < 1 or self.batch_size % jax.device_count():
      raise AdaptError(f'--batch-size {self.batch_size} must be a multiple of the '
                       f'{jax.device_count()} devices')


class _State:
  """OUT.work/adapt.json: the settings a run was started with, and what it has done (the step
  plan, the base's scores, training time, the report), written after each stage."""

  def __init__(self, workdir: str, settings: dict):
    self.path = os.path.join(workdir, 'adapt.json')
    self.fresh = not os.path.isfile(self.path)
    self.data: dict = {'settings': settings}
    if not self.fresh:
      try:
        with open(self.path, encoding='utf-8') as f:
          self.data = json.load(f)
      except (OSError, ValueError) as e:
        raise AdaptError(f'{self.path} is damaged ({e}); delete {workdir} to start over'
                         ) from None
    old = self.data.get('settings', {})
    if old != settings:
      changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
      raise AdaptError(f'{workdir} holds an adaptation with other {", ".join(changed)}; rerun '
                       'with the same text and options to resume it, or delete it (and the '
                       'bundle it made) to start over')

  def get(self, key, default=None):
    return self.data.get(key, default)

  def update(self, **values) -> None:
    self.data.update(values)
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    tmp = self.path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
      json.dump(self.data, f, indent=1, ensure_ascii=False)
    os.replace(tmp, self.path)


@dataclasses.dataclass
class _Data:
  """The prepared training data in OUT.work/data and the held-out rows of the report."""
  dir: str
  train_corpus: str                 # 'user' or 'user,general*K' (pipeline.load_train_mixture).
  general: str                      # Where the general text came from.
  general_sentences: int
  user_rows: list[tuple[list[str], str]]
  general_rows: list[tuple[list[str], str]]


def adapt(texts: Sequence[str], out: str, model: str | None = None, minutes: float = MINUTES,
          *, workdir: str | None = None, progress: Progress | bool = True,
          **options) -> tuple[str, AdaptReport]:
  """Adapts `model` (default: the release) to the text files `texts`; writes a bundle to `out`.

  Returns (the bundle's path, the report). minutes: the training's time budget (reading and
  measuring come on top). options (`Options`): general_data (a prepared data directory),
  general_share, eval_sentences (held-out sentences of each kind the report converts with
  each model; 0: no measurement), steps (a fixed number of updates instead of the budget: no
  time limit, reproducible), batch_size, learning_rate, strength (how far the bundle's model
  moves from the base to the fine-tuned one; another strength re-exports a finished run without
  training again), seed, min_sentences. workdir: default `out`.work. Rerunning with the same
  arguments resumes. AdaptError for input it cannot use
  (the message says why and what to do).
  """
  try:
    opts = Options(minutes=minutes, **options)
  except TypeError as e:
    raise TypeError(f'adapt(): {e}; options are the fields of adapt.Options') from None
  opts.check()
  texts = [os.fspath(t) for t in texts]
  out = os.fspath(out).rstrip('/') or '/'
  workdir = os.fspath(workdir) if workdir else out + '.work'
  show = progress if isinstance(progress, Progress) else Progress(enabled=bool(progress))
  try:
    return _adapt(texts, out, model, opts, workdir, show)
  except (OSError, RuntimeError) as e:
    if _is_disk_full(e):
      raise AdaptError(f'the disk is full ({getattr(e, "filename", None) or workdir}): free '
                       'some space and run the same command again to resume') from e
    raise


def _adapt(texts: list[str], out: str, model: str | None, opts: Options, workdir: str,
           show: Progress) -> tuple[str, AdaptReport]:
  t_start = time.time()
  for path in texts:  # A missing or unreadable file fails before the model loads.
    adapt_text.read_text_file(path)
  base_path = model or bundle_lib.default_model_path()
  _check_out(out, workdir, base_path)
  show.stage(f'loading the base model {base_path}')
  conv = _load_base(base_path, opts.general_data)
  base = conv.bundle
  show.stage(f'reading {len(texts)} file(s)')
  text = adapt_text.read_texts(texts, base.hanzi_vocab, base.max_len, opts.min_sentences)
  splits = adapt_text.split_pairs(text.pairs)
  settings = dict(dataclasses.asdict(opts), version=STATE_VERSION, text=text.sha256,
                  base=os.path.abspath(base_path),
                  base_params=base.meta.get('files', {}).get(bundle_lib.PARAMS, ''))
  # The strength only changes the export: another one re-exports a finished run (below).
  del settings['min_sentences'], settings['strength']
  if opts.general_data:
    settings['general_data'] = os.path.abspath(opts.general_data)
  if opts.steps:
    settings['minutes'] = None  # A fixed step count does not depend on the budget.
  state = _State(workdir, settings)
  if (state.get('status') == 'finished' and state.get('strength') == opts.strength
      and os.path.isfile(os.path.join(out, 'bundle.json'))):
    show.stage(f'{out} is already adapted to this text (delete {workdir} to adapt again)')
    return out, AdaptReport.from_json(state.get('report'))
  if state.fresh:
    _check_disk(workdir, _disk_needed(base))
  state.update()

  data = _write_data(os.path.join(workdir, 'data'), base, splits, opts)
  show.stage('learning the word list from the text')
  words = (adapt_words.adapt_word_list(base.lexicon, splits['train'],
                                       frozenset(base.hanzi_vocab.tokens))
           if base.lexicon is not None else None)
  if opts.eval_sentences and state.get('base_scores') is None:
    show.stage(f'measuring the base model on {len(data.user_rows)} + {len(data.general_rows)} '
               'held-out sentences')
    t0 = time.time()
    scores = _measure(conv, data.user_rows, data.general_rows)
    state.update(base_scores=[dataclasses.asdict(s) if s else None for s in scores],
                 eval_seconds=time.time() - t0)
  del conv  # Its parameters and word list are not needed while training.

  init_from = _params_copy(os.path.join(workdir, 'base'), base, base_path)
  mixture = pipeline.load_train_mixture(data.dir, data.train_corpus)
  long_fraction = float(np.mean(mixture.lengths + 1 > LENGTH_BUCKET))
  if state.get('num_steps') is None:
    state.update(**_plan(base, mixture, long_fraction, data, init_from, opts, state, show))
  config = train_config(base, data.dir, init_from, data.train_corpus, state.get('num_steps'),
                        batch_size=opts.batch_size, learning_rate=opts.learning_rate,
                        seed=opts.seed, valid_sentences=len(splits['valid']))
  train_dir = os.path.join(workdir, 'train')
  status = _train(config, train_dir, workdir, state, opts, long_fraction, show)

  show.stage(f'writing {out}')
  steps_done = _latest_step(train_dir)
  _write_bundle(out, train_dir, base, base_path, words, opts.strength, provenance={
      'text_sha256': text.sha256, 'files': text.files, 'sentences': len(text.pairs),
      'chinese_chars': text.usable_chars, 'general': data.general,
      'general_share': opts.general_share if data.general_sentences else 0.0,
      'steps': steps_done, 'num_steps': config.train.num_steps, 'strength': opts.strength,
      'new_words': len(words.terms) if words else 0})
  report = AdaptReport(
      bundle=out, base=base_path, workdir=workdir, files=text.files,
      chinese_chars=text.chinese_chars, sentences=len(text.pairs),
      split={k: len(v) for k, v in splits.items()}, left_out=text.left_out(),
      outside_vocab=text.outside_vocab[:20],
      new_words=[(t.word, t.count) for t in (words.terms if words else [])[:20]],
      new_word_count=len(words.terms) if words else 0, general=data.general,
      general_share=opts.general_share if data.general_sentences else 0.0, steps=steps_done,
      num_steps=config.train.num_steps, status=status,
      train_seconds=round(state.get('train_seconds', 0.0), 1))
  if opts.eval_sentences:
    report.user_base, report.general_base = (
        Scores(**s) if s else None for s in state.get('base_scores', [None, None]))
    # After a Ctrl-C the user wants the model, not a wait; a run the time limit stopped is
    # measured like a finished one (the user asked for the budget, and for the report).
    if status in ('finished', 'time limit'):
      show.stage('measuring the adapted model on the same sentences',
                 eta_s=state.get('eval_seconds'))
      report.user_adapted, report.general_adapted = _measure(
          convert.Converter(out), data.user_rows, data.general_rows)
  state.update(status=status, strength=opts.strength, report=report.to_json(),
               total_seconds=state.get('total_seconds', 0.0) + time.time() - t_start)
  show.stage(f'done: {out}')
  return out, report


def _load_base(base_path: str, general_data: str | None) -> convert.Converter:
  """The base converter (its bundle is the base), checked against what adapt will feed it."""
  try:
    conv = convert.Converter(base_path)
  except (ckpt_lib.CheckpointError, FileNotFoundError, ValueError) as e:
    raise AdaptError(f'cannot load the base model: {e}') from None
  if conv.bundle.pinyin_vocab.fingerprint() != prepare.pinyin_vocab().fingerprint():
    raise AdaptError(f'the base model {base_path} has another pinyin vocabulary than this '
                     'version prepares text with; adapt a model trained on data prepared by '
                     'this version of pyhanzi_jax')
  if general_data:
    _check_general_data(general_data, conv.bundle)
  return conv


def _write_data(data_dir: str, base: bundle_lib.Bundle, splits: dict, opts: Options) -> _Data:
  """The text's splits and the general mix as prepared data, in the base's vocabularies."""
  pv, hv = base.pinyin_vocab, base.hanzi_vocab
  os.makedirs(os.path.join(data_dir, 'vocab'), exist_ok=True)
  pv.save(os.path.join(data_dir, 'vocab', 'pinyin.txt'))
  hv.save(os.path.join(data_dir, 'vocab', 'hanzi.txt'))
  for name, pairs in splits.items():
    prepare.write_split(data_dir, 'user', name, pairs, pv, hv, tsv=name != 'train')
  where, n_general, repeats = _general_mix(opts.general_data, opts.general_share,
                                           len(splits['train']), opts.seed, pv, hv, data_dir)
  n = opts.eval_sentences
  return _Data(data_dir, 'user' + (f',general*{repeats}' if n_general else ''), where,
               n_general, [(p.keys.split(' '), p.hanzi) for p in splits['test'][:n]],
               _general_rows(opts.general_data, n) if n else [])


def _params_copy(path: str, base: bundle_lib.Bundle, base_path: str) -> str:
  """A bundle of the base's parameters alone (once): the trainer's `init_from`, which then does
  not read the word list (~8 s for the release's) at each start."""
  if not os.path.isfile(os.path.join(path, 'bundle.json')):
    bundle_lib.export_bundle(path, base.params, base.model_config, base.pinyin_vocab,
                             base.hanzi_vocab, max_len=base.max_len,
                             dtype=base.meta.get('params_dtype', 'float32'),
                             provenance={'from': base_path})
  return path


def _plan(base: bundle_lib.Bundle, mixture: pipeline.Split, long_fraction: float, data: _Data,
          init_from: str, opts: Options, state: _State, show: Progress) -> dict:
  """{'num_steps': ...}: `opts.steps`, or what fits the budget after a measured step."""
  if opts.steps:
    return {'num_steps': int(opts.steps)}
  budget_s = 60.0 * opts.minutes
  show.stage('measuring a training step', eta_s=budget_s + state.get('eval_seconds', 0.0))
  t0 = time.time()
  probe = train_config(base, data.dir, init_from, data.train_corpus, 100,
                       batch_size=opts.batch_size, learning_rate=opts.learning_rate,
                       seed=opts.seed, valid_sentences=1)
  compile_s, step_s = measure_step(base, mixture, opts.batch_size, probe.optim)
  measured_s = time.time() - t0
  num_steps = plan_steps(budget_s - measured_s, compile_s, step_s, long_fraction)
  cap = passes_cap(opts.max_passes, opts.batch_size, len(mixture))
  if num_steps < MIN_STEPS:
    per_step = step_s * (1 + (LONG_BATCH_COST - 1) * long_fraction)
    need = (measured_s + STARTUP_S + COMPILES * compile_s
            + (MIN_STEPS + 3 * VALIDATIONS) * per_step)
    raise AdaptError(f'--minutes {opts.minutes:g} is too short on this machine: a step takes '
                     f'{per_step:.1f} s and compiling {compile_s:.0f} s, which leaves '
                     f'{num_steps} steps; give at least --minutes {math.ceil(need / 60)}')
  return {'num_steps': min(num_steps, cap) if cap else num_steps, 'budget_steps': num_steps,
          'step_seconds': step_s, 'compile_seconds': compile_s, 'plan_seconds': measured_s}


def _train(config, train_dir: str, workdir: str, state: _State, opts: Options,
           long_fraction: float, show: Progress) -> str:
  """Runs (or resumes) the trainer; 'finished', 'time limit', 'interrupted' or 'stopped'."""
  num_steps = config.train.num_steps
  start_step = _latest_step(train_dir)
  if start_step >= num_steps:
    return 'finished'
  eval_s = state.get('eval_seconds', 0.0)
  per_step = state.get('step_seconds', 0.0) * (1 + (LONG_BATCH_COST - 1) * long_fraction)
  show.stage(f'training the decoder: steps {start_step + 1}..{num_steps}',
             eta_s=(num_steps - start_step) * per_step + eval_s if per_step else None)
  times: list[float] = []

  def on_step(step: int, total: int) -> None:
    times.append(time.time())
    rate = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else per_step
    show.step(step, total, (total - step) * rate + eval_s if rate else None)

  sink = _TrainerOutput(os.path.join(workdir, 'train.log'), on_step)
  t0 = time.time()
  try:
    # The trainer's log lines would break the bar.
    with _Stopper() as stopper, contextlib.redirect_stdout(sink), _absl_quiet():
      if not opts.steps:
        left = 60.0 * opts.minutes - state.get('plan_seconds', 0.0) - state.get(
            'train_seconds', 0.0)
        stopper.deadline(TIME_SLACK * max(left, 60.0) + 30.0)
      try:
        train.train_and_evaluate(config, train_dir)
      except exit_codes.Preempted as e:  # Saved and stopped: the time limit, Ctrl-C, a kill.
        if stopper.reason != 'time limit':
          stopper.reason = 'interrupted' if e.exit_code == exit_codes.INTERRUPTED else 'stopped'
      except exit_codes.WorkdirBusy as e:
        raise AdaptError(f'another run is using {workdir}: {e}') from None
  finally:
    sink.close()
    state.update(train_seconds=state.get('train_seconds', 0.0) + time.time() - t0)
  if stopper.reason and _latest_step(train_dir) < num_steps:
    return stopper.reason
  return 'finished'


@contextlib.contextmanager
def _absl_quiet():
  """Only errors from absl's logger inside; its own level (often unset) restored after.

  `logging.get_verbosity()` reports the effective level, which an unset logger inherits from
  the root: restoring that would pin absl to WARNING for the rest of the process.
  """
  logger = logging.get_absl_logger()
  level = logger.level
  logger.setLevel(logging.converter.STANDARD_ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


def _write_bundle(out: str, train_dir: str, base: bundle_lib.Bundle, base_path: str,
                  words: adapt_words.WordList | None, strength: float,
                  provenance: dict) -> None:
  """The best checkpoint (or the latest, before any validation), `strength` of the way from
  the base's parameters, with the adapted word list."""
  with _absl_quiet():  # orbax warns that a read-only restore is read-only.
    params, step, sub = ckpt_lib.restore_params_from_workdir(
        train_dir, ckpt_lib.abstract_like(base.params))
  params = bundle_lib.interpolate(base.params, params, strength)
  bundle_lib.export_bundle(
      out, params, base.model_config, base.pinyin_vocab, base.hanzi_vocab,
      max_len=base.max_len, settings=base.settings,
      dtype=base.meta.get('params_dtype', 'float32'),
      extensions=[adapt_words.WordListFiles(words)] if words is not None else [],
      provenance={'from': f'{base_path} adapted: {train_dir}/{sub} step {step}',
                  'adapt': provenance, 'base': base.meta.get('provenance', {})})


# --- Command line -----------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
  ap = argparse.ArgumentParser(
      prog='pyhanzi adapt',
      description='Adapt a model to your own Chinese text: the decoder is fine-tuned (the '
      'encoder frozen) and the word list learns your words, in a time budget on this machine.',
      epilog='The work is kept in OUT.work: run the same command again to resume after an '
      'interruption; Ctrl-C while training keeps the best model so far. docs/ADAPT.md has '
      'measurements.')
  ap.add_argument('texts', nargs='+', metavar='TEXT', help='UTF-8 text files of Chinese')
  ap.add_argument('--out', required=True, help='directory for the adapted model (a bundle)')
  ap.add_argument('--model', help='the base model: a bundle or training workdir (default: the '
                  'release model)')
  ap.add_argument('--minutes', type=float, default=MINUTES,
                  help=f'time budget of the training (default {MINUTES:g}); reading the text '
                  'and measuring the models before and after come on top')
  ap.add_argument('--general-data', metavar='DIR',
                  help='prepared data whose general/train is mixed in and general/test '
                  'measured (default: the small sample in the package)')
  ap.add_argument('--general-share', type=float, default=GENERAL_SHARE,
                  help=f'share of the training sentences that are general text (default '
                  f'{GENERAL_SHARE:g}; 0: none)')
  ap.add_argument('--eval-sentences', type=int, default=EVAL_SENTENCES,
                  help=f'held-out sentences of each kind converted to measure the base and the '
                  f'adapted model (default {EVAL_SENTENCES}; 0: do not measure)')
  ap.add_argument('--steps', type=int, help='a fixed number of training steps instead of the '
                  'time budget')
  ap.add_argument('--batch-size', type=int, default=BATCH_SIZE, help=argparse.SUPPRESS)
  ap.add_argument('--learning-rate', type=float, default=LEARNING_RATE,
                  help=f'peak learning rate (default {LEARNING_RATE:g}); lower forgets less of '
                  'general text and learns less of yours (docs/ADAPT.md)')
  ap.add_argument('--strength', type=float, default=STRENGTH,
                  help=f'how far the model moves from the base to the one fine-tuned on your '
                  f'text (default {STRENGTH:g}; 1: all the way, which gains most on your text '
                  'and forgets most of general text; 0: only the word list learns)')
  ap.add_argument('--max-passes', type=float, default=MAX_PASSES,
                  help=f'stop after about this many passes over your text even if the budget '
                  f'allows more (default {MAX_PASSES:g}; 0: train for the whole budget): more '
                  'passes over a small text forget general text')
  ap.add_argument('--seed', type=int, default=0, help=argparse.SUPPRESS)
  ap.add_argument('--workdir', help='where the work is kept (default: OUT.work)')
  ap.add_argument('--quiet', action='store_true', help='no progress on stderr')
  ap.add_argument('--json', action='store_true', help='print the report as JSON')
  return ap


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  try:
    _, report = adapt(args.texts, args.out, args.model, args.minutes, workdir=args.workdir,
                      progress=not args.quiet, general_data=args.general_data,
                      general_share=args.general_share, eval_sentences=args.eval_sentences,
                      steps=args.steps, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, strength=args.strength,
                      max_passes=args.max_passes, seed=args.seed)
  except AdaptError as e:
    print(f'pyhanzi adapt: {e}', file=sys.stderr)
    return exit_codes.USAGE
  except KeyboardInterrupt:
    # Outside the training steps (those save and stop at a Ctrl-C): nothing is lost. Python's
    # own exit could crash in the JAX call it interrupted (main.py does the same).
    print('\npyhanzi adapt: interrupted; run the same command again to resume',
          file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(exit_codes.INTERRUPTED)  # pylint: disable=protected-access
  print(json.dumps(report.to_json(), indent=1, ensure_ascii=False) if args.json else
        report.to_text())
  return {'interrupted': exit_codes.INTERRUPTED,
          'stopped': exit_codes.PREEMPTED}.get(report.status, exit_codes.OK)


if __name__ == '__main__':
  sys.exit(main())
