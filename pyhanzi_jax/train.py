"""Training: the state, the pure train/eval steps, and `train_and_evaluate`.

One trainer serves pretraining and fine-tuning: fine-tuning is the same loop with
`config.optim.init_from` (where the parameters come from) and `config.optim.frozen` (which
parameter paths do not move). The loop reads top to bottom: set up devices and data, build or
restore the state, then step, log, validate and checkpoint until `num_steps`.

A step is one optimizer update. With `config.optim.grad_accum_steps = k` its batch holds k
micro-batches of `config.train.batch_size` sentences, whose gradients the jitted step sums one
micro-batch at a time before the update; the schedule, the logs and the checkpoints all count
updates.
"""
from __future__ import annotations

import errno
import functools
import os
import signal
import time
from typing import Any, Callable

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import candidates as candidates_lib
from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import config_defaults
from pyhanzi_jax import evaluate as evaluate_lib
from pyhanzi_jax import exit_codes
from pyhanzi_jax import metric_writers
from pyhanzi_jax import model as model_lib
from pyhanzi_jax import optim
from pyhanzi_jax import parallel
from pyhanzi_jax import workdir_lock
from pyhanzi_jax.data import pipeline
from pyhanzi_jax.data import vocab as vocab_lib


@flax.struct.dataclass
class TrainState:
  step: jax.Array      # [] int32: optimizer updates done.
  params: Any          # {'encoder': ..., 'decoder': ...}
  opt_state: Any       # No entries for frozen leaves (optax.set_to_zero is stateless).


# --- Loss and metrics --------------------------------------------------------------------------

def token_losses(logits, targets, label_smoothing: float):
  """Per-token (smoothed loss, nll): logits [B, T, V] float32, targets [B, T] -> 2 x [B, T].

  smoothed = (1 - ls) * nll - ls * mean_v(log_softmax), written through the log-sum-exp so that
  no [B, T, V] log-probabilities are materialised; `_token_losses_bwd` is the closed-form
  gradient (one fused pass over the vocabulary instead of autodiff's log-softmax transpose
  plus a [B, T, V] one-hot scatter, measured as ~10% of a CPU train step).
  """
  return _token_losses(logits.astype(jnp.float32), targets, float(label_smoothing))


def _losses_and_lse(logits, targets, label_smoothing):
  """-> ((smoothed, nll), log-sum-exp), each [B, T]."""
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  lse = jax.nn.logsumexp(logits, axis=-1)
  nll = lse - target_logit
  smoothed = (1.0 - label_smoothing) * nll - label_smoothing * (logits.mean(axis=-1) - lse)
  return (smoothed, nll), lse


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _token_losses(logits, targets, label_smoothing):
  return _losses_and_lse(logits, targets, label_smoothing)[0]


def _token_losses_fwd(logits, targets, label_smoothing):
  losses, lse = _losses_and_lse(logits, targets, label_smoothing)
  return losses, (logits, targets, lse)


def _token_losses_bwd(label_smoothing, residuals, cotangents):
  # d nll = p - onehot;  d smoothed = p - (1 - ls) onehot - ls / V  (p = softmax(logits)).
  logits, targets, lse = residuals
  d_smoothed, d_nll = cotangents
  vocab = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
  p = jnp.exp(logits - lse[..., None])
  d_p = (d_smoothed + d_nll)[..., None]
  d_onehot = ((1.0 - label_smoothing) * d_smoothed + d_nll)[..., None]
  d_uniform = (label_smoothing / logits.shape[-1] * d_smoothed)[..., None]
  d_logits = d_p * p - jnp.where(vocab == targets[..., None], d_onehot, 0.0) - d_uniform
  return d_logits, np.zeros(targets.shape, jax.dtypes.float0)


_token_losses.defvjp(_token_losses_fwd, _token_losses_bwd)


def target_is_max(logits, targets):
  """[B, T] bool: the target's logit is the largest, i.e. `logits.argmax(-1) == targets`.

  Unlike argmax, a target tied with another maximal logit counts as correct (never seen with
  real float logits). XLA:CPU emits argmax as a variadic (value, index) reduction that was the
  slowest non-matmul op of the train step (~60 ms); a max and a gather cost ~2 ms.
  """
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  return target_logit >= logits.max(axis=-1)


def metric_sums(logits, targets, smoothed, nll) -> dict[str, jax.Array]:
  """Sums over the batch, so they add up across devices and batches; divide at the end."""
  weights = (targets != vocab_lib.PAD).astype(jnp.float32)
  correct = target_is_max(logits, targets).astype(jnp.float32) * weights
  sent_rows = weights[:, 0]  # All-PAD rows (eval padding) count for nothing.
  sent_ok = ((correct == weights).all(axis=-1)).astype(jnp.float32) * sent_rows
  return {
      'loss_sum': (smoothed * weights).sum(),
      'nll_sum': (nll * weights).sum(),
      'tokens': weights.sum(),
      'correct': correct.sum(),
      'sent_correct': sent_ok.sum(),
      'sents': sent_rows.sum(),
  }


def finalize_metrics(sums: dict[str, float], prefix: str) -> dict[str, float]:
  tokens, sents = max(sums['tokens'], 1.0), max(sums['sents'], 1.0)
  return {f'{prefix}/loss': sums['loss_sum'] / tokens,
          f'{prefix}/nll': sums['nll_sum'] / tokens,
          f'{prefix}/token_acc': sums['correct'] / tokens,
          f'{prefix}/tf_sent_acc': sums['sent_correct'] / sents}


def grads_and_metrics(params, batch, rng, *, model, labels, label_smoothing):
  """Gradients of the summed loss, and metric sums, for one (shard of a) batch [B, T].

  The gradients are taken with respect to the trainable leaves only (None at frozen ones), so
  autodiff never builds the backward pass of a frozen encoder at all, not just discards its
  result. Returning the *sum* (not the mean) lets micro-batches and devices be added up before
  dividing by the total token count.
  """
  def loss_fn(trainable):
    logits = model.apply({'params': optim.fill_frozen(trainable, params)}, batch['inputs'],
                         batch['targets'], train=True, rngs={'dropout': rng})
    smoothed, nll = token_losses(logits, batch['targets'], label_smoothing)
    sums = metric_sums(logits, batch['targets'], smoothed, nll)
    return sums['loss_sum'], sums

  return jax.grad(loss_fn, has_aux=True)(optim.trainable_only(params, labels))


def micro_batches(batch, accum_steps: int):
  """[accum_steps * R, T] -> [accum_steps, R, T]: micro-batch j holds rows j, k + j, 2k + j, ...

  Every k consecutive rows go one to each micro-batch, so any device's or process' block of rows
  (whole groups of k) holds its own share of every micro-batch: splitting moves no data between
  devices, and micro-batch j is the same sentences however many devices share the batch.
  """
  return jax.tree.map(lambda x: x.reshape((-1, accum_steps) + x.shape[1:]).swapaxes(0, 1),
                      batch)


def accumulated_grads_and_metrics(params, batch, rng, *, accum_steps: int, **kwargs):
  """`grads_and_metrics` summed over the `accum_steps` micro-batches of `batch`.

  A `lax.scan` runs one micro-batch at a time, so only one micro-batch's activations are live;
  the carry is the running sum of trainable gradients. Micro-batch j draws its dropout from
  fold_in(rng, j).
  """
  if accum_steps == 1:
    return grads_and_metrics(params, batch, rng, **kwargs)
  micro = micro_batches(batch, accum_steps)

  def add_one(acc, xs):
    one_batch, j = xs
    out = grads_and_metrics(params, one_batch, jax.random.fold_in(rng, j), **kwargs)
    return jax.tree.map(jnp.add, acc, out), None

  shapes = jax.eval_shape(functools.partial(grads_and_metrics, **kwargs), params,
                          jax.tree.map(lambda x: x[0], micro), rng)
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  return jax.lax.scan(add_one, zeros, (micro, jnp.arange(accum_steps)))[0]


def apply_gradients(state: TrainState, grads, tokens, tx) -> tuple[TrainState, jax.Array]:
  """One optimizer update with the mean gradient `grads / tokens` (grads of trainable leaves)."""
  grads = jax.tree.map(lambda g: g / jnp.maximum(tokens, 1.0), grads)
  zeros = jax.tree.map(jnp.zeros_like, state.params)  # For set_to_zero; XLA drops them.
  updates, opt_state = tx.update(optim.fill_frozen(grads, zeros), state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state), grads


def make_train_step(model, tx, labels, label_smoothing: float, accum_steps: int = 1,
                    axis_name: str | None = None) -> Callable:
  """train_step(state, batch, rng) -> (state after one update, metric sums).

  `batch` holds inputs/targets [accum_steps * rows, length] (see `micro_batches`). Under jit
  over a mesh, XLA adds the gradients across devices; under `jax.pmap` (`axis_name` set) each
  device draws its own dropout and the step sums gradients and metrics over `axis_name` itself.
  """
  def train_step(state, batch, rng):
    rng = jax.random.fold_in(rng, state.step)
    if axis_name:
      rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
    grads, sums = accumulated_grads_and_metrics(
        state.params, batch, rng, accum_steps=accum_steps, model=model, labels=labels,
        label_smoothing=label_smoothing)
    if axis_name:
      grads, sums = jax.lax.psum((grads, sums), axis_name)
    state, grads = apply_gradients(state, grads, sums['tokens'], tx)
    sums['grad_norm'] = optax.tree.norm(grads)
    return state, sums
  return train_step


def make_eval_step(model) -> Callable:
  def eval_step(params, batch):
    logits = model.apply({'params': params}, batch['inputs'], batch['targets'], train=False)
    smoothed, nll = token_losses(logits, batch['targets'], 0.0)
    return metric_sums(logits, batch['targets'], smoothed, nll)
  return eval_step


# --- Setup helpers ----------------------------------------------------------------------------

def initial_params(config, model_config, rng, hanzi_vocab: vocab_lib.Vocab):
  """Fresh parameters, or those of `config.optim.init_from` (a workdir or an exported bundle)."""
  params = jax.jit(functools.partial(model_lib.init_params, model_config))(rng)
  source = config.optim.init_from
  if not source:
    return params
  if not os.path.exists(source):
    raise FileNotFoundError(f'config.optim.init_from={source!r} does not exist; give a '
                            'pretraining workdir or an exported bundle directory')
  if os.path.isfile(os.path.join(source, 'bundle.json')):
    bundle = bundle_lib.load_bundle(source)
    loaded, where = bundle.params, f'bundle {source}'
    if bundle.hanzi_vocab.fingerprint() != hanzi_vocab.fingerprint():
      raise ValueError(f'{source} was trained with another vocabulary than {config.data.dir}')
  else:
    loaded, step, sub = ckpt_lib.restore_params_from_workdir(source, ckpt_lib.abstract_like(params))
    where = f'{source}/{sub} step {step}'
  want = jax.tree.map(lambda x: (x.shape, x.dtype), params)
  got = jax.tree.map(lambda x: (np.shape(x), np.asarray(x).dtype), loaded)
  if jax.tree.structure(want) != jax.tree.structure(got) or want != got:
    raise ValueError(f'parameters in {where} do not fit config.model (different sizes?); '
                     'fine-tune with the pretraining run\'s model settings')
  logging.info('initialised parameters from %s', where)
  return jax.tree.map(jnp.asarray, loaded)


def _add(acc, sums):
  return sums if acc is None else jax.tree.map(lambda a, b: a + b, acc, sums)


class _Preemption:
  """SIGTERM (a preemption notice, `kill`) or Ctrl-C -> save and stop at a step every process
  agrees on.

  One process: a Python handler sets a flag that the next step sees; after a first Ctrl-C the
  previous SIGINT handler is back, so a second one stops at once. (A KeyboardInterrupt in the
  middle of a step, the default, left a process that crashed on its way out.) Several
  processes: SIGTERM may reach them at different steps (or reach only one), and a checkpoint
  save is collective, so each stopping at its own next step would leave the others waiting at a
  barrier. There jax.distributed's preemption service takes the signal (its handler is installed
  by `jax.distributed.initialize`, so no Python handler replaces it), tells every process, and
  `multihost_utils.reached_preemption_sync_point` answers True at the same step on all of them
  (it must be asked at every step).
  """

  def __init__(self):
    self.requested = False
    self.signal_name = 'SIGTERM'
    self._previous = {}
    self._multiprocess = jax.process_count() > 1

  def __enter__(self):
    if self._multiprocess:
      return self
    try:
      self._previous = {sig: signal.signal(sig, self._handle)
                        for sig in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # Not the main thread (e.g. a notebook worker): no handler.
      self._previous = {}
    return self

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    self.requested = True
    self.signal_name = signal.Signals(signum).name
    if signum == signal.SIGINT:
      signal.signal(signal.SIGINT, self._previous[signal.SIGINT])

  def stop_at(self, step: int) -> bool:
    """Whether to save `step` and stop (call once per step, on every process)."""
    if self._multiprocess:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      self.requested = self.requested or multihost_utils.reached_preemption_sync_point(step)
    return self.requested

  def __exit__(self, *exc):
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)


# --- The loop ---------------------------------------------------------------------------------

def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains `config` in `workdir`, resuming from its latest checkpoint; returns last metrics.

  Holds the workdir's lock throughout (workdir_lock.py). Ends early with exit_codes.ConfigError
  (a field out of range), exit_codes.WorkdirBusy (another trainer has the workdir),
  exit_codes.Preempted (SIGTERM or Ctrl-C: saved and stopped), FloatingPointError (a non-finite
  loss) or RuntimeError (the disk is full), each saying what to do; main.py prints one line and
  an exit code for each.
  """
  config_defaults.check(config)
  parallel.maybe_initialize_distributed(config.distributed)
  os.makedirs(workdir, exist_ok=True)
  lock = workdir_lock.WorkdirLock(workdir, jax.process_index())
  busy = lock.try_acquire()
  if parallel.any_process(busy is not None):
    lock.release()
    raise exit_codes.WorkdirBusy(busy or 'another process of this run found its workdir lock '
                                 'taken by another trainer (its log says which)')
  try:
    return _train_and_evaluate(config, workdir)
  finally:
    lock.release()


def _train_and_evaluate(config, workdir):
  """train_and_evaluate once the workdir is this run's."""
  is_main = jax.process_index() == 0

  # Data and model.
  pinyin_vocab, hanzi_vocab = vocab_lib.load_vocabs(config.data.dir)
  model_config = model_lib.ModelConfig.from_config(config.model, len(pinyin_vocab),
                                                   len(hanzi_vocab))
  model = model_lib.Transformer(model_config)
  accum_steps = config.optim.grad_accum_steps
  process_rows, device_rows = parallel.check_batch_size(config.train.batch_size)
  train_split = pipeline.load_train_mixture(config.data.dir, config.data.train_corpus)
  # The batch of step s holds all its micro-batches, so it stays a function of (seed, s).
  batches = pipeline.TrainBatches(
      train_split, config.train.batch_size * accum_steps,
      pipeline.parse_buckets(config.data.length_buckets, config.data.max_len),
      seed=config.seed, process_index=jax.process_index(), process_count=jax.process_count(),
      abbrev=pipeline.AbbrevTable.from_vocab(pinyin_vocab),
      abbrev_prob=config.data.abbrev_prob,
      abbrev_syllable_prob=config.data.abbrev_syllable_prob)
  unknown = int(np.count_nonzero(np.asarray(train_split.tgt) == vocab_lib.UNK))
  if unknown:  # Fine-tuning keeps the pretrained vocabulary; say what it cannot write.
    logging.warning('%s: %d of %d target characters (%.3f%%) are outside the vocabulary and '
                    'are learned as <unk>; manifest.json lists them', train_split.name, unknown,
                    len(train_split.tgt), 100 * unknown / max(len(train_split.tgt), 1))
  eval_corpora = [c.strip() for c in config.data.eval_corpora.split(',') if c.strip()]
  eval_splits = {c: pipeline.load_split(config.data.dir, c, 'valid') for c in eval_corpora}
  metric_names = ['loss', 'nll', 'token_acc', 'tf_sent_acc'] + (
      ['greedy_char_acc', 'greedy_sent_acc'] if config.train.eval_decode_sentences else [])
  valid_best = [f'{c}/{m}' for c in eval_corpora for m in metric_names]
  if config.train.best_metric not in valid_best:  # Fail now, not at the first validation.
    raise exit_codes.ConfigError(f'config.train.best_metric={config.train.best_metric!r}: must '
                                 f'be a metric this config computes, one of {valid_best}')
  logging.info('%d processes, %d devices: global batch %d, %d rows per process, %d per device; '
               '%d micro-batch(es) per update; %d training sentences', jax.process_count(),
               jax.device_count(), config.train.batch_size, process_rows, device_rows,
               accum_steps, len(train_split))

  # State: fresh (or from init_from), then replaced by the latest checkpoint if there is one.
  rng = jax.random.key(config.seed)
  init_rng, dropout_rng = jax.random.split(rng)
  params = initial_params(config, model_config, init_rng, hanzi_vocab)
  num_steps = config.train.num_steps
  tx, labels = optim.make_optimizer(config.optim, num_steps, params)
  learning_rate = optim.learning_rate_schedule(config.optim, num_steps)
  logging.info('parameters (frozen: %r):\n%s', config.optim.frozen,
               optim.describe_labels(params, labels))
  mesh = parallel.make_mesh()
  # How the train step runs (config.train.parallel): `devices` places the state and batches
  # and compiles the step; `devices.unreplicate` hands the state back as the eval step,
  # checkpoints and logs take it.
  devices = parallel.data_parallel(config.train.parallel, mesh)
  replicated = parallel.replicated(mesh)
  params = jax.device_put(params, replicated)
  state = jax.jit(lambda p: TrainState(step=jnp.int32(0), params=p, opt_state=tx.init(p)),
                  out_shardings=replicated)(params)
  del params
  checkpointer = ckpt_lib.Checkpointer(workdir, config.train.keep_checkpoints,
                                       config.train.best_metric)
  writer, finished = None, False
  try:
    restored = checkpointer.restore_latest(ckpt_lib.abstract_like(state, replicated))
    if restored is not None:
      state, _ = restored
      logging.info('resumed from %s/checkpoints at step %d', workdir,
                   int(parallel.to_host(state.step)))
    start_step = int(parallel.to_host(state.step))
    if is_main:  # Once the checkpoints fit it: a config they refuse does not replace the run's.
      with open(os.path.join(workdir, 'config.json'), 'w', encoding='utf-8') as f:
        f.write(config.to_json_best_effort(indent=2))

    # Steps.
    p_train_step = devices.compile(make_train_step(
        model, tx, labels, config.optim.label_smoothing, accum_steps, devices.axis_name))
    state = devices.place_state(state)
    p_eval_step = jax.jit(make_eval_step(model),
                          in_shardings=(replicated, parallel.data_sharded(mesh)),
                          out_shardings=replicated)

    table = (candidates_lib.CandidateTable(pinyin_vocab, hanzi_vocab)
             if config.train.eval_decode_sentences else None)

    def evaluate(step, state_params):
      out = {}
      for corpus, split in eval_splits.items():
        acc = None
        for b in pipeline.eval_batches(split, config.train.batch_size, config.data.max_len,
                                       config.train.eval_batches, jax.process_index(),
                                       jax.process_count()):
          acc = _add(acc, p_eval_step(state_params, parallel.global_batch_array(mesh, b)))
        out.update(finalize_metrics(parallel.to_host(acc), corpus))
        if config.train.eval_decode_sentences:
          out.update({f'{corpus}/{k}': v for k, v in evaluate_lib.decoded_accuracy(
              model, parallel.to_host(state_params), split, pinyin_vocab, hanzi_vocab,
              max_sentences=config.train.eval_decode_sentences,
              max_len=config.data.max_len, table=table).items()})
      logging.info('eval at step %d: %s', step,
                   '  '.join(f'{k} {v:.4f}' for k, v in sorted(out.items())))
      return out

    # Rows logged after start_step by an earlier, interrupted run are redone: forget them.
    writer = metric_writers.MetricWriter(workdir, resume_step=start_step)
    acc, t0, last_metrics, checked, step = None, time.time(), {}, start_step, start_step
    t_start, steps_timed = time.time(), 0
    logging.info('training steps %d..%d', start_step, num_steps)
    with _Preemption() as preemption:
      for step in range(start_step + 1, num_steps + 1):
        batch = batches.batch(step - 1)
        state, sums = p_train_step(state, devices.place_batch(batch), dropout_rng)
        acc = _add(acc, sums)
        stop = preemption.stop_at(step)
        log_now = step % config.train.log_every == 0 or step == num_steps
        eval_now = step % config.train.eval_every == 0 or step == num_steps
        save_now = step % config.train.checkpoint_every == 0 or step == num_steps or stop
        if log_now or eval_now or save_now:
          # Checked before anything is saved, so no checkpoint holds the garbage.
          host = parallel.to_host(devices.unreplicate(acc))
          if not (np.isfinite(host['loss_sum']) and np.isfinite(host['grad_norm'])):
            where = f'step {step}' if checked + 1 == step else f'steps {checked + 1}..{step}'
            raise FloatingPointError(f'non-finite training loss or gradient at {where}: stopped '
                                     'instead of training on garbage.')
          checked = step
        if log_now:
          elapsed = time.time() - t0
          n_logged = (step - 1) % config.train.log_every + 1
          last_metrics = finalize_metrics(host, 'train')
          last_metrics.update({
              'train/grad_norm': host['grad_norm'] / n_logged,
              'train/learning_rate': float(learning_rate(step - 1)),  # What update `step` applied.
              'train/tokens_per_sec': host['tokens'] / max(elapsed, 1e-9),
          })
          writer.write(step, last_metrics)
          steps_timed += n_logged
          if is_main:
            print(metric_writers.progress_line(step, num_steps, last_metrics,
                                               time.time() - t_start, steps_timed), flush=True)
          acc, t0 = None, time.time()
        if eval_now:
          eval_metrics = evaluate(step, devices.unreplicate(state).params)
          writer.write(step, eval_metrics)
          last_metrics.update(eval_metrics)
          checkpointer.save_if_best(step, devices.unreplicate(state), eval_metrics)
          t0 = time.time()
        if save_now:
          checkpointer.save(step, devices.unreplicate(state), force=True)
        if stop:
          logging.warning('%s: saved step %d; stopping. Run the same command to resume.',
                          preemption.signal_name, step)
          break
    checkpointer.wait()
    if preemption.requested:
      finished = True
      raise exit_codes.Preempted(step, workdir, preemption.signal_name)

    if config.train.export_at_end:
      # Every process takes part in the orbax restore (it meets the others at barriers; process
      # 0 alone would wait forever); only process 0 writes the bundle.
      best = ckpt_lib.restore_params_from_workdir(workdir, ckpt_lib.abstract_like(
          parallel.to_host(devices.unreplicate(state).params)))
      if is_main:
        export_dir = os.path.join(workdir, 'export')
        bundle_lib.export_bundle(export_dir, best[0], model_config, pinyin_vocab, hanzi_vocab,
                                 max_len=config.data.max_len,
                                 provenance={'from': f'{workdir}/{best[2]} step {best[1]}'})
        logging.info('exported the %s checkpoint (step %d) to %s', best[2], best[1], export_dir)
    finished = True
    return last_metrics
  except FloatingPointError as e:
    raise FloatingPointError(f'{e} {_resume_hint(checkpointer, workdir)}') from None
  except Exception as e:  # pylint: disable=broad-except
    if not _disk_full(e):
      raise
    raise RuntimeError(
        f'the disk holding {workdir} is full ({_disk_full_detail(e)}). Free space on it, then '
        f'run the same command again: {_resume_hint(checkpointer, workdir, resumes=True)}') from e
  finally:
    _close(checkpointer, writer, finished)


def _resume_hint(checkpointer, workdir: str, resumes: bool = False) -> str:
  """Where a rerun starts, after an error: the last checkpoint that was completely written."""
  # On several processes, waiting for saves in flight could wait for a failed peer forever.
  steps = []
  if jax.process_count() == 1:
    try:
      checkpointer.wait()
    except Exception:  # pylint: disable=broad-except
      pass  # The save in flight failed too (a full disk): it is not a finished step.
    steps = checkpointer.finished_steps()
  if resumes:
    return (f'it resumes from step {steps[-1]}, the last checkpoint written' if steps else
            f'it starts from the beginning, as no checkpoint was written in {workdir}')
  if not steps:
    return (f'No checkpoint was saved before it in {workdir}/checkpoints. Lower '
            'config.optim.learning_rate (or raise warmup_steps), or check the data, and rerun.')
  return (f'The last checkpoint saved before it is step {steps[-1]} in {workdir}/checkpoints; '
          'a rerun resumes there and meets the same numbers, so first lower '
          'config.optim.learning_rate (or raise warmup_steps), or check the data.')


def _causes(e: BaseException):
  """`e` and the errors it came from."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    yield e
    e = e.__cause__ or e.__context__


def _disk_full(e: BaseException) -> bool:
  """Whether `e` comes from a write to a full disk (orbax reports tensorstore's ENOSPC as a
  ValueError that only names it)."""
  return any((isinstance(c, OSError) and c.errno in (errno.ENOSPC, errno.EDQUOT))
             or 'No space left on device' in str(c) or 'Disk quota exceeded' in str(c)
             for c in _causes(e))


def _disk_full_detail(e: BaseException) -> str:
  for c in _causes(e):
    if isinstance(c, OSError) and c.errno in (errno.ENOSPC, errno.EDQUOT):
      return f'{c.strerror}: {c.filename}' if c.filename else c.strerror
  return 'No space left on device'


def _close(checkpointer, writer, finished: bool) -> None:
  """Closes the writers; after an error, without raising another that would hide it."""
  closers = [writer.close] if writer else []
  # After an error on several processes, the checkpointer's wait for saves in flight could wait
  # for a failed peer forever: the scheduler restarts them all anyway.
  if finished or jax.process_count() == 1:
    closers.append(checkpointer.close)
  for close in closers:
    try:
      close()
    except Exception:  # pylint: disable=broad-except
      if finished:
        raise
      logging.info('closing after the error above failed too')
