"""Greedy and beam search for the Transformer, optionally constrained by the pinyin.

Everything for one batch is one compiled function: the encoder runs once, the decoder then takes
one position per step from its KV cache ('cache' collection, `decode=True`) inside a
`lax.while_loop`, and the loop ends as soon as every hypothesis has written EOS.

Pinyin-constrained decoding (docs/ARCHITECTURE.md, token conventions): the caller gives, for
each source position i, the target ids syllable i may be written as, `constraints` [batch,
src_len, k] padded with -1. Step i may only emit those ids, and the step after the last source
token may only emit EOS, so every output has exactly as many characters as the input has tokens.
The step then scores only those rows of the output projection instead of all of them; the rows
are packed per group of consecutive sentences, the group size chosen per call by a cost model
(`_layout_candidates`). `_beam_search` can force the layout or score the whole vocabulary and
mask it (the same result, slower), which the tests and benchmarks/decode_latency.py compare
against.

Scores are log-probabilities of the whole sequence including EOS. Under constraints they are
normalised over each step's candidates, i.e. log p(output | output obeys the constraints) as the
model sees it step by step.

Compilation: one jitted function per (model, beam size, max_len, options), which jax.jit then
specialises per (batch, source bucket, candidate width). Source lengths are padded up to a
multiple of `LENGTH_BUCKET`; candidate lists either to the first of a caller's fixed
`candidate_widths` that holds them, one group per sentence, so that the compiled shapes do not
depend on how many candidates a line has and can all be compiled ahead of use (the converter
does this: a new shape costs 1-4 s to compile, a stall in typing), or, without them, to two
sizes per octave of the laid-out width (`_candidate_bucket`). The KV-cache shapes are derived
from those static shapes while tracing, never rebuilt per call. With an executable directory
(`set_executable_dir`, which compile_cache.enable sets), each compiled program is also written
there, serialized, and the next process loads it without tracing the model again.

The search itself (`search`) knows nothing about Transformers: it takes a
`step_fn(ids, step, cache) -> (log_probs, token_ids, cache)`, as t5x and flax's decoders do, so
it can be tested against a toy model whose best path is known.
"""
from __future__ import annotations

import functools
import hashlib
import os
import pickle
import platform
import sys
import tempfile
from typing import Any, Callable, Optional, Sequence

import flax
import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
from jax.experimental import serialize_executable

from pyhanzi_jax.data.vocab import BOS, EOS, PAD, UNK
from pyhanzi_jax.model import NEG_INF, Transformer

LENGTH_BUCKET = 4   # Source lengths are padded up to a multiple of this.
MIN_CANDIDATES = 8  # Candidate lists are padded to at least this (see _candidate_bucket).

# Incremented each time a decoding function is traced (not run); tests read it to prove that
# equal shapes compile once.
TRACE_COUNT = {'n': 0}

# step_fn(ids [rows], step scalar, cache) -> (log_probs [rows, c], token_ids [rows, c], cache)
StepFn = Callable[[jax.Array, jax.Array, Any], tuple]


def brevity_penalty(alpha: float, length):
  """t5x/GNMT length normalisation ((5 + length) / 6) ** alpha."""
  return ((5.0 + length) / 6.0) ** alpha


def _gather_rows(tree, rows):
  """Reorder the leading (beam-row) axis of every non-scalar leaf: leaf[rows]."""
  return jax.tree.map(lambda x: x if x.ndim == 0 else jnp.take(x, rows, axis=0, mode='clip'), tree)


def _max_and_argmax(x):
  """x [b, c] -> (max [b, 1], first index of the max [b, 1]).

  Two plain reductions: XLA:CPU's jnp.argmax (a variadic reduce) took 2 ms on [64, 7000]
  where this takes 0.25 ms.
  """
  m = jnp.max(x, axis=-1, keepdims=True)
  iota = jax.lax.broadcasted_iota(jnp.int32, x.shape, 1)
  return m, jnp.min(jnp.where(x == m, iota, x.shape[-1]), axis=-1, keepdims=True)


def search(step_fn: StepFn, cache, *, batch_size: int, beam_size: int, num_steps: int,
           eos_id: int = EOS, length_penalty: float = 0.0, stop_step=None):
  """Beam search over `step_fn`; beam_size 1 is greedy search. Traceable (call under jit).

  Rows are example-major: row b * beam_size + w is beam w of example b; `cache` leaves that
  are not scalars have that leading axis and follow their beam when beams are reordered.
  step_fn gets the token each row chose last ([rows] int32; PAD at step 0, where step_fn
  feeds BOS itself) and the step number, and returns log-probabilities over c choices with the
  token id of each choice, [rows, c] or [c] when the same for every row.

  Returns (sequences [batch, beam, num_steps] int32 with EOS kept and PAD after it,
           scores [batch, beam] float32 sums of log-probabilities),
  sorted best first by score / brevity_penalty(length_penalty, length incl. EOS).
  Hypotheses that found no path (fewer than beam_size exist) score <= NEG_INF / 2.
  A finished hypothesis keeps its slot and its score; the loop stops when all are finished.

  stop_step: optional int scalar (may be traced) from which the caller promises that every
    unfinished hypothesis can only write EOS, at log-probability 0 (constrained decoding past
    its longest sentence). The loop then stops there without calling step_fn and writes those
    EOS itself: the same result, one model step fewer.
  """
  b, w = batch_size, beam_size
  n = b * w
  # Only beam 0 is live at first, so the first step does not fill the beam with copies.
  scores = jnp.tile(jnp.where(jnp.arange(w) == 0, 0.0, NEG_INF).astype(jnp.float32), (b, 1))
  state = dict(
      step=jnp.array(0, jnp.int32),
      last=jnp.full((n,), PAD, jnp.int32),
      sequences=jnp.full((b, w, num_steps), PAD, jnp.int32),
      scores=scores,
      finished=jnp.zeros((b, w), bool),
      cache=cache,
  )

  limit = num_steps if stop_step is None else jnp.minimum(stop_step, num_steps)

  def cond(s):
    return (s['step'] < limit) & ~jnp.all(s['finished'])

  def body(s):
    log_probs, token_ids, cache = step_fn(s['last'], s['step'], s['cache'])
    c = log_probs.shape[-1]
    log_probs = log_probs.astype(jnp.float32).reshape(b, w, c)
    # A finished hypothesis has one way on, choice 0 at no cost (written as PAD below).
    stay = jnp.where(jnp.arange(c) == 0, 0.0, NEG_INF)
    log_probs = jnp.where(s['finished'][..., None], stay, log_probs)
    total = (s['scores'][..., None] + log_probs).reshape(b, w * c)
    if w == 1:
      new_scores, best = _max_and_argmax(total)
    else:
      new_scores, best = jax.lax.top_k(total, w)  # [b, w]
    parent, choice = best // c, best % c
    if token_ids.ndim == 1:  # The same choices for every row.
      tokens = token_ids[choice]
    else:
      rows = jnp.arange(b)[:, None] * w + parent
      tokens = token_ids.reshape(n, c)[rows, choice]
    sequences = s['sequences']
    finished = s['finished']
    if w > 1:
      sequences = jnp.take_along_axis(sequences, parent[..., None], axis=1)
      finished = jnp.take_along_axis(finished, parent, axis=1)
      cache = _gather_rows(cache, (jnp.arange(b)[:, None] * w + parent).reshape(n))
    tokens = jnp.where(finished, PAD, tokens).astype(jnp.int32)
    sequences = jax.lax.dynamic_update_slice_in_dim(
        sequences, tokens[..., None], s['step'], axis=2)
    return dict(step=s['step'] + 1, last=tokens.reshape(n), sequences=sequences,
                scores=new_scores, finished=finished | (tokens == eos_id), cache=cache)

  state = jax.lax.while_loop(cond, body, state)
  sequences, scores = state['sequences'], state['scores']
  if stop_step is not None:  # The EOS the loop did not run for (unfinished: stopped early).
    at = jnp.arange(num_steps) == jnp.minimum(state['step'], num_steps)
    sequences = jnp.where(at & ~state['finished'][..., None], eos_id, sequences)
  if w > 1:
    eos_at = jnp.argmax(sequences == eos_id, axis=-1)
    length = jnp.where(jnp.any(sequences == eos_id, axis=-1), eos_at + 1, num_steps)
    order = jnp.argsort(-scores / brevity_penalty(length_penalty, length), axis=-1)
    sequences = jnp.take_along_axis(sequences, order[..., None], axis=1)
    scores = jnp.take_along_axis(scores, order, axis=1)
  return sequences, scores


def round_up(n: int, multiple: int) -> int:
  """n rounded up to a multiple of `multiple` (at least one): a padded length, so that varying
  sizes share few compiled shapes."""
  return max(multiple, -(-n // multiple) * multiple)


def _fixed_width(n: int, widths) -> int:
  """The first of the sorted `widths` that holds n candidates; _candidate_bucket(n) past the
  widest (a caller's table that does not cover its input still decodes, with a new shape)."""
  for w in widths:
    if n <= w:
      return int(w)
  return _candidate_bucket(n)


def _candidate_bucket(n: int) -> int:
  """Rounds up to 2 steps per octave (8, 12, 16, 24, 32, 48, ..., 128, 192, 256, 384, ...).

  Finer than candidates.py's powers of two, which round a table's fixed widths once: here the
  width follows each call's lists (a group's concatenated, up to thousands), where a power of two
  could double the multiply-adds.

  At most 50% padding, and few compiled shapes however the counts vary (each new one costs a
  compilation, ~1 s for the default model).
  """
  n = max(int(n), MIN_CANDIDATES)
  step = 1 << max(0, n.bit_length() - 2)
  return round_up(n, step)


# _beam_search's `scoring` -> how _layout_candidates lays the candidates out.
_LAYOUTS = {'candidates': 'auto', 'candidates_rows': 'rows', 'candidates_packed': 'packed',
            'full': 'auto'}

# Relative cost of gathering one output-projection row against one row-by-row dot product
# (XLA:CPU, emb 256: ~60 ns against ~5 ns); used to choose how to lay candidates out.
_GATHER_COST = 12


def _step_candidates(constraints, src_len, max_len):
  """[b, s, k] constraints -> [b, max_len + 1, k'] ids allowed per step (-1 = none).

  Applies the rules the caller does not spell out: a sentence's steps from its length on (and
  step max_len) allow only EOS, and a position with no candidate allows UNK.
  """
  b, s, k = constraints.shape
  steps = max_len + 1
  dense = np.full((b, steps, max(k, 1)), -1, np.int32)
  m = min(s, steps)
  dense[:, :m, :k] = constraints[:, :m]
  t = np.arange(steps)
  done = (t[None, :] >= src_len[:, None]) | (t[None, :] >= max_len)  # [b, steps]
  dense[done] = -1
  dense[done, 0] = EOS
  empty = ~done & np.all(dense < 0, axis=-1)
  dense[empty, 0] = UNK
  return dense


def _layout_candidates(constraints, src_len, max_len, beam_size, layout='auto', widths=None):
  """Candidate ids per step, laid out for scoring: (ids, owner), each [steps, groups, width].

  The batch's sentences are split into `groups` runs of consecutive sentences; at each step
  the candidate lists of one group are concatenated, and every hypothesis of the group is
  scored against all of them in one [hypotheses, width] product, masked by owner
  (owner[t, g, j] = the batch row id j belongs to; ids -1 = padding). Few groups gather few
  rows from the projection but multiply each hypothesis against other sentences' candidates;
  many groups the reverse:
  - 'rows': one group per sentence; every padded slot is a gathered row (~22 candidates on
    average, ~150 at most, so ~7x more rows gathered than used);
  - 'packed': one group, the whole batch; no padding, but a batch of 64 multiplies every
    hypothesis against 64 sentences' lists;
  - 'auto': the group count (a divisor of the batch) with the lowest gathers + multiply-adds
    by a rough cost model (at batch 64, usually 8-16 groups);
  - an int: that many groups (must divide the batch).
  widths: sorted fixed widths (decode.py's docstring): one group per sentence ('rows'), as wide
    as the first of them that holds every list, whatever `layout` says.
  """
  dense = _step_candidates(constraints, src_len, max_len)
  b, steps, k = dense.shape
  valid = dense >= 0
  counts = valid.sum(axis=2)  # [b, steps]
  n = b * beam_size

  @functools.cache
  def width(groups):  # The longest concatenated list of any group at any step, bucketed.
    longest = counts.reshape(groups, -1, steps).sum(axis=1).max()
    return _candidate_bucket(longest) if widths is None else _fixed_width(longest, widths)

  if widths is not None:
    groups = b
  elif layout == 'auto':
    divisors = [g for g in range(1, b + 1) if b % g == 0]
    # Per group: width gathers, and width multiply-adds for each of its n / g hypotheses.
    groups = min(divisors, key=lambda g: g * width(g) * (n // g + _GATHER_COST))
  else:
    groups = {'rows': b, 'packed': 1}.get(layout, layout)
    if not (isinstance(groups, int) and groups >= 1 and b % groups == 0):
      raise ValueError(f'layout must be auto, rows, packed or a divisor of the batch size {b}, '
                       f'got {layout!r}')
  per = b // groups
  # [steps, groups, per * k]: the lists of a group's sentences one after another.
  grouped = dense.reshape(groups, per, steps, k).transpose(2, 0, 1, 3).reshape(steps, groups, -1)
  keep = grouped >= 0
  slot = np.cumsum(keep, axis=2) - 1  # Where each valid id lands: valid ids first, in order.
  t, g, j = np.nonzero(keep)
  w = width(groups)
  ids = np.full((steps, groups, w), -1, np.int32)
  owner = np.full((steps, groups, w), -1, np.int32)
  ids[t, g, slot[t, g, j]] = grouped[t, g, j]
  owner[t, g, slot[t, g, j]] = g * per + j // k
  return ids, owner


@functools.lru_cache(maxsize=None)
def _compiled(model: Transformer, beam_size: int, max_len: int, constrained: bool, scoring: str,
              length_penalty: float):
  """The jitted search for one model and one set of options (jit caches per shape)."""
  num_steps = max_len + 1  # max_len tokens, then EOS.

  def run(params, inputs, packed):
    TRACE_COUNT['n'] += 1
    b, s = inputs.shape
    n = b * beam_size
    variables = {'params': params}
    encoded = model.apply(variables, inputs, method='encode')
    cross_kv = model.apply(variables, encoded, method='cross_kv')
    # Cache shapes come from the static shapes, once per trace (never per call).
    cache_shapes = jax.eval_shape(
        lambda p: model.apply({'params': p}, encoded, inputs, jnp.zeros((n, num_steps), jnp.int32),
                              decode=True, cross_kv=cross_kv, method='decode',
                              mutable=['cache'])[1]['cache'], params)
    cache = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), cache_shapes)
    vocab = model.config.tgt_vocab_size
    vocab_ids = jnp.arange(vocab, dtype=jnp.int32)
    example = jnp.arange(n) // beam_size  # [n]: the batch row of each hypothesis

    def step_fn(last, step, cache):
      ids = jnp.where(step == 0, BOS, last)[:, None]
      apply = functools.partial(model.apply, {'params': params, 'cache': cache}, None, inputs,
                                ids, decode=True, cross_kv=cross_kv, method='decode',
                                mutable=['cache'])
      if constrained:
        cand = jax.lax.dynamic_index_in_dim(packed[0], step, keepdims=False)  # [groups, width]
        owner = jax.lax.dynamic_index_in_dim(packed[1], step, keepdims=False)
        groups = cand.shape[0]
        if scoring == 'candidates':
          logits, mutated = apply(candidate_ids=cand[:, None, :])  # [n, 1, width]
          group = example * groups // b
          mine = owner[group] == example[:, None]  # [n, width]
          log_probs = jax.nn.log_softmax(jnp.where(mine, logits[:, 0], NEG_INF))
          tokens = jnp.where(cand >= 0, cand, PAD)
          return log_probs, tokens[0] if groups == 1 else tokens[group], mutated['cache']
        logits, mutated = apply()  # [n, 1, vocab]
        mask = jnp.zeros((b, vocab), bool).at[jnp.where(owner >= 0, owner, b), cand].set(
            True, mode='drop')
        logits = jnp.where(mask[example], logits[:, 0], NEG_INF)
        return jax.nn.log_softmax(logits), vocab_ids, mutated['cache']
      logits, mutated = apply()
      log_probs = jax.nn.log_softmax(logits[:, 0])
      # PAD and BOS are never output (not renormalised: scores stay the model's log-probs).
      log_probs = jnp.where((vocab_ids == PAD) | (vocab_ids == BOS), NEG_INF, log_probs)
      # Past max_len only EOS remains: every output ends within max_len tokens.
      eos_only = jnp.where(vocab_ids == EOS, 0.0, NEG_INF)
      log_probs = jnp.where(step >= max_len, eos_only, log_probs)
      return log_probs, vocab_ids, mutated['cache']

    # Constrained, every sentence has written its last character by step max(src_len): the
    # step after it is EOS for all, at log-probability 0, and needs no model call.
    sequences, scores = search(step_fn, cache, batch_size=b, beam_size=beam_size,
                               num_steps=num_steps, length_penalty=length_penalty,
                               stop_step=packed[2] if constrained else None)
    sequences = jnp.where(sequences == EOS, PAD, sequences)[..., :max_len]
    return sequences, scores

  return jax.jit(run)


# --- Executables kept on disk -------------------------------------------------------------------

# Where compiled programs are kept between processes (set_executable_dir; None: not kept).
_EXECUTABLE_DIR: dict[str, str | None] = {'path': None}
# (what, options, argument shapes) -> the loaded executable, for this process.
_EXECUTABLES: dict = {}
# Marks a file of executable_dir, and changes with its layout.
_EXECUTABLE_MAGIC = b'pyhanzi-executable-1\n'


def set_executable_dir(path: str | None) -> None:
  """Keeps the compiled beam searches and scorers in `path` (None: in memory only), so that
  another process loads them instead of tracing the model again to find them in JAX's cache
  (~0.5 s each on the 2-core machine: most of a warm `pyhanzi ni hao`'s first line).
  compile_cache.enable sets it."""
  _EXECUTABLE_DIR['path'] = path
  _EXECUTABLES.clear()


@functools.cache
def _build_fingerprint() -> str:
  """What else a compiled program depends on: the versions of jax, jaxlib, flax and numpy,
  this module's and the model's source, the backend and its devices, XLA's flags and the
  host's CPU (an executable compiled for one CPU's instructions must not run on another that
  shares a home directory)."""
  h = hashlib.sha256()
  for path in (__file__, sys.modules[Transformer.__module__].__file__):
    with open(path, 'rb') as f:
      h.update(f.read())
  device = jax.devices()[0]
  cpu = ''
  try:
    with open('/proc/cpuinfo', encoding='utf-8', errors='replace') as f:
      cpu = next((line for line in f if line.startswith(('flags', 'Features'))), '')
  except OSError:
    pass
  for part in (jax.__version__, jaxlib.__version__, flax.__version__, np.__version__,
               device.platform, device.device_kind, getattr(device.client, 'platform_version', ''),
               len(jax.devices()), os.environ.get('XLA_FLAGS', ''), jax.config.jax_enable_x64,
               platform.machine(), cpu):
    h.update(repr(part).encode() + b'\0')
  return h.hexdigest()


def _run_compiled(what: str, jitted, options: tuple, *args):
  """jitted(*args), through an executable compiled ahead of time for these arguments' shapes:
  loaded from the executable directory when an earlier process left it there (no tracing),
  else traced, compiled and left there. A file that cannot be read is compiled again and
  replaced; without a directory, plain jitted(*args)."""
  directory = _EXECUTABLE_DIR['path']
  if directory is None:
    return jitted(*args)
  leaves, tree = jax.tree.flatten(args)
  key = (what, options, str(tree),
         tuple((np.shape(x), str(getattr(x, 'dtype', type(x)))) for x in leaves))
  exe = _EXECUTABLES.get(key)
  if exe is None:
    digest = hashlib.sha256(repr((_build_fingerprint(),) + key).encode()).hexdigest()
    path = os.path.join(directory, f'{what}-{digest[:40]}.bin')
    exe = _load_executable(path)
    if exe is not None:
      try:  # A loaded program's faults show when it runs: then it is compiled again.
        out = jax.block_until_ready(exe(*args))
        _EXECUTABLES[key] = exe
        return out
      except jax.errors.JaxRuntimeError:
        pass
    exe = jitted.lower(*args).compile()
    # One that JAX read from its persistent cache would be saved without its code (see
    # compile_cache.py): none is saved while that cache is on.
    if not jax.config.jax_compilation_cache_dir:
      _save_executable(path, exe)
    _EXECUTABLES[key] = exe
  return exe(*args)


def _load_executable(path: str):
  """The executable in `path`, or None when there is none or it cannot be used (truncated,
  damaged, another layout: its checksum or the loader says so)."""
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError:
    return None
  head = len(_EXECUTABLE_MAGIC)
  if data[:head] != _EXECUTABLE_MAGIC or hashlib.sha256(data[head + 32:]).digest() != \
      data[head:head + 32]:
    return None
  try:
    payload, in_tree, out_tree = pickle.loads(data[head + 32:])
    # One device, as compiled (the loader's default is every local device).
    return serialize_executable.deserialize_and_load(payload, in_tree, out_tree,
                                                     execution_devices=jax.devices()[:1])
  except Exception:  # pylint: disable=broad-except
    return None  # Whatever the loader objects to, compiling again is the answer.


def _save_executable(path: str, exe) -> None:
  """Writes `exe` to `path` whole or not at all (another process may be reading or writing
  it); a directory that cannot be written only costs the next process a compile."""
  try:
    body = pickle.dumps(serialize_executable.serialize(exe), protocol=pickle.HIGHEST_PROTOCOL)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
    try:
      with os.fdopen(fd, 'wb') as f:
        f.write(_EXECUTABLE_MAGIC + hashlib.sha256(body).digest() + body)
      os.replace(tmp, path)
    except BaseException:
      os.unlink(tmp)
      raise
  except Exception:  # pylint: disable=broad-except
    pass


def _source_lengths(inputs: np.ndarray) -> np.ndarray:
  """[b, s] source ids -> [b] tokens per sentence (PAD and an optional EOS not counted)."""
  return np.sum((inputs != PAD) & (inputs != EOS), axis=1)


def _prepare(model: Transformer, inputs, constraints, max_len, beam_size=1, layout='auto',
             widths=None):
  """Pads inputs/constraints (numpy, host side) to their buckets; returns the static max_len."""
  inputs = np.asarray(inputs)
  if inputs.ndim != 2:
    raise ValueError(f'inputs must be [batch, src_len], got shape {inputs.shape}')
  b, s = inputs.shape
  limit = model.config.max_len - 1  # max_len tokens + EOS need max_len + 1 positions.
  if s > limit:
    raise ValueError(f'inputs of length {s} exceed what the model decodes in one piece '
                     f'({limit}); split them first')
  s_pad = min(round_up(s, LENGTH_BUCKET), limit)
  padded = np.zeros((b, s_pad), np.int32)  # PAD = 0
  padded[:, :s] = inputs
  if max_len is None:
    max_len = s_pad
  if not 1 <= max_len <= limit:
    raise ValueError(f'max_len={max_len} must be in [1, {limit}]')
  packed = None
  if constraints is not None:
    constraints = np.asarray(constraints)
    if constraints.ndim != 3 or constraints.shape[:2] != (b, s):
      raise ValueError(f'constraints must be [batch, src_len, k] = [{b}, {s}, k], '
                       f'got {constraints.shape}')
    src_len = _source_lengths(inputs)
    packed = _layout_candidates(constraints.astype(np.int32), src_len, int(max_len),
                                beam_size, layout, widths) + (np.int32(src_len.max()),)
  return padded, packed, int(max_len), s


def beam_search(model: Transformer, params, inputs, *, beam_size: int = 4, constraints=None,
                max_len: Optional[int] = None, length_penalty: float = 0.6,
                candidate_widths: Optional[Sequence[int]] = None, block: bool = True):
  """n-best conversions of a batch of pinyin id sequences.

  Args:
    model: the Transformer (its config fixes the shapes).
    params: its parameters {'encoder': ..., 'decoder': ...}.
    inputs: [batch, src_len] int pinyin ids, PAD=0 after each sentence (an EOS is allowed).
    beam_size: hypotheses kept per sentence.
    constraints: optional [batch, src_len, k] int ids allowed at each source position, padded
      with -1. Given, output i is one of constraints[:, i] and the output has exactly as many
      characters as the input has (non-PAD, non-EOS) tokens.
    max_len: most characters per output; default the input length (rounded up to a bucket).
    length_penalty: alpha of the brevity penalty used to rank hypotheses (has no effect on
      constrained search, whose hypotheses have equal lengths).
    candidate_widths: optional fixed widths to pad each sentence's candidate lists to (the
      first that holds the longest list), so that the compiled shape is one of a known few
      (the module docstring); without them, as few gathered rows as a cost model finds.
    block: False returns at once a function that waits for the result and returns it, so
      that the caller can work on the host while the device searches.

  Returns (numpy arrays; the call waits for the result):
    sequences [batch, beam_size, L] int32 target ids without BOS/EOS, PAD after the end
      (L = max_len, or src_len when constrained and max_len is None);
    scores [batch, beam_size] float32 log-probabilities (EOS included), best first.
  """
  return _beam_search(model, params, inputs, beam_size=beam_size, constraints=constraints,
                      max_len=max_len, length_penalty=length_penalty, scoring='candidates',
                      candidate_widths=candidate_widths, block=block)


def _beam_search(model: Transformer, params, inputs, *, beam_size: int = 4, constraints=None,
                 max_len: Optional[int] = None, length_penalty: float = 0.6,
                 scoring: str = 'candidates', candidate_widths=None, block: bool = True):
  """beam_search with the constrained step's scoring chosen: 'candidates' (beam_search's:
  only the constraint rows of the output projection, laid out as _layout_candidates chooses
  per call), 'candidates_rows' or 'candidates_packed' (that layout forced), or 'full' (the
  whole vocabulary scored, then masked). The same results; only speed differs, which is what
  the tests and benchmarks/decode_latency.py use it for."""
  if scoring not in _LAYOUTS:
    raise ValueError(f'scoring must be one of {sorted(_LAYOUTS)}, got {scoring!r}')
  widths = None if candidate_widths is None else sorted(int(w) for w in candidate_widths)
  inputs, packed, max_len, s = _prepare(model, inputs, constraints, max_len, beam_size,
                                        _LAYOUTS[scoring], widths)
  constrained = packed is not None
  options = (model.config, int(beam_size), max_len, constrained,
             'full' if scoring == 'full' or not constrained else 'candidates',
             float(length_penalty))
  on_device = _run_compiled('beam', _compiled(model, *options[1:]), options, params, inputs,
                            packed)

  def fetch():
    sequences, scores = map(np.asarray, on_device)
    return (sequences[..., :s] if constrained else sequences), scores
  return fetch() if block else fetch


def greedy_search(model: Transformer, params, inputs, *, constraints=None,
                  max_len: Optional[int] = None):
  """The single best-first-choice conversion: (sequences [batch, L], scores [batch]).

  Same arguments and conventions as `beam_search` (it is beam search with one beam).
  """
  sequences, scores = beam_search(model, params, inputs, beam_size=1, constraints=constraints,
                                  max_len=max_len)
  return sequences[:, 0], scores[:, 0]


@functools.lru_cache(maxsize=None)
def _compiled_score(model: Transformer, constrained: bool):
  """The jitted teacher-forced scorer for one model (jit caches per shape)."""

  def run(params, inputs, targets, candidates):
    TRACE_COUNT['n'] += 1
    b, n, steps = targets.shape
    variables = {'params': params}
    encoded = model.apply(variables, inputs, method='encode')
    flat = targets.reshape(b * n, steps)  # The n rows of one sentence are consecutive.
    decoder_inputs = jnp.where(jnp.arange(steps) == 0, BOS, jnp.roll(flat, 1, axis=1))
    if constrained:
      logits = model.apply(variables, encoded, inputs, decoder_inputs, candidate_ids=candidates,
                           method='decode')  # [b * n, steps, k]
      log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
      rows = jnp.repeat(candidates, n, axis=0)  # [b * n, steps, k]
      hit = rows == flat[..., None]
      chosen = jnp.sum(jnp.where(hit, log_probs, 0.0), axis=-1)
      chosen = jnp.where(jnp.any(hit, axis=-1), chosen, NEG_INF)  # Not allowed there.
    else:
      logits = model.apply(variables, encoded, inputs, decoder_inputs, method='decode')
      log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
      chosen = jnp.take_along_axis(log_probs, flat[..., None], axis=-1)[..., 0]
      chosen = jnp.where(flat == BOS, NEG_INF, chosen)  # As beam_search: never output.
      # beam_search's last step allows only EOS, at no cost.
      chosen = jnp.where(jnp.arange(steps) == steps - 1, 0.0, chosen)
    return jnp.sum(jnp.where(flat != PAD, chosen, 0.0), axis=-1).reshape(b, n)

  return jax.jit(run)


def score_sequences(model: Transformer, params, inputs, sequences, *, constraints=None,
                    candidate_widths: Optional[Sequence[int]] = None):
  """Log-probabilities of given outputs, as `beam_search` scores its hypotheses.

  Re-scores candidates that came from elsewhere (the word lexicon's, lexicon.py) on the same
  scale as the beam's: one teacher-forced decoder pass over all of them.

  Args:
    model, params, inputs, constraints, candidate_widths: as for `beam_search`.
    sequences: [batch, n, L] target ids without BOS/EOS, PAD after the end (beam_search's
      output form); under constraints L is the source length and every row is a full output.

  Returns scores [batch, n] float32 (numpy): the sum of log p over the characters and EOS,
  normalised over each step's candidates when constrained; at most NEG_INF / 2 where an output
  uses a character its constraints do not allow.
  """
  sequences = np.asarray(sequences)
  if sequences.ndim != 3 or sequences.shape[0] != np.shape(inputs)[0]:
    raise ValueError(f'sequences must be [batch, n, L] with the batch of inputs '
                     f'{np.shape(inputs)}, got {sequences.shape}')
  b, n, length = sequences.shape
  inputs, _, max_len, _ = _prepare(model, inputs, None, None)
  max_len = max(max_len, length)
  if max_len > model.config.max_len - 1:
    raise ValueError(f'sequences of length {length} exceed what the model decodes in one piece')
  # Few compiled shapes for varying counts, without scoring many padding rows: the converter
  # asked for 12 (8 paths + 4 edits) in one release, which a power of two padded to 16.
  n_pad = round_up(n, 4)
  steps = max_len + 1
  targets = np.zeros((b, n_pad, steps), np.int32)
  targets[:, :n, :length] = sequences
  ends = np.sum(sequences != PAD, axis=-1)  # [b, n]
  targets[np.arange(b)[:, None], np.arange(n)[None, :], ends] = EOS
  candidates = None
  if constraints is not None:
    constraints = np.asarray(constraints, np.int32)
    dense = _step_candidates(constraints, _source_lengths(inputs), max_len)  # [b, steps, k]
    if candidate_widths is None:
      k = _candidate_bucket(dense.shape[-1])
    else:  # The valid ids first, then as wide as the first fixed width that holds them.
      dense = np.take_along_axis(dense, np.argsort(dense < 0, axis=-1, kind='stable'), axis=-1)
      k = _fixed_width(int((dense >= 0).sum(axis=-1).max()),
                       sorted(int(w) for w in candidate_widths))
      dense = dense[..., :k]
    candidates = np.pad(dense, ((0, 0), (0, 0), (0, k - dense.shape[-1])), constant_values=-1)
  constrained = candidates is not None
  scores = _run_compiled('score', _compiled_score(model, constrained),
                         (model.config, constrained), params, inputs, targets, candidates)
  return np.asarray(scores)[:, :n]


__all__ = ['search', 'beam_search', 'greedy_search', 'score_sequences', 'brevity_penalty',
           'round_up', 'TRACE_COUNT', 'LENGTH_BUCKET']
