"""The optimizer: AdamW with warmup and decay, clipping, and freezing by parameter path.

Freezing is data, not code: `config.optim.frozen` is a list of regexes over '/'-joined parameter
paths ('encoder/.*' freezes the whole encoder, its embedding included). The optimizer is an
`optax.partition` of the trainable optimizer and `optax.set_to_zero()`, so a frozen leaf gets
no update and no optimizer state (`optax.masked` alone would still allocate Adam moments and let
raw gradients through). Clipping and weight decay live inside the trainable branch, so the
global norm is taken over trainable gradients only. Gradients are taken, and accumulated over
micro-batches, for the trainable leaves only (`trainable_only`).

One call of the optimizer is one update and one trainer step: the schedule is built for
`num_steps` updates, and gradient accumulation happens inside the train step (train.py).
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import jax
import optax

TRAINABLE, FROZEN = 'trainable', 'frozen'


def param_path(path: Sequence[Any]) -> str:
  """'encoder/layer_0/attention/query/kernel' for a key path of nested dicts."""
  return '/'.join(str(getattr(k, 'key', getattr(k, 'name', k))) for k in path)


def parse_patterns(spec: str | Sequence[str]) -> list[str]:
  if isinstance(spec, str):
    spec = spec.split(',')
  return [p.strip() for p in spec if p.strip()]


def freeze_labels(params, frozen: str | Sequence[str]):
  """A pytree like `params` of 'frozen'/'trainable': frozen where a regex fully matches the path."""
  patterns = [re.compile(p) for p in parse_patterns(frozen)]
  unused = set(p.pattern for p in patterns)

  def label(path, _):
    name = param_path(path)
    for p in patterns:
      if p.fullmatch(name):
        unused.discard(p.pattern)
        return FROZEN
    return TRAINABLE

  labels = jax.tree_util.tree_map_with_path(label, params)
  if unused:
    raise ValueError(f'config.optim.frozen patterns {sorted(unused)} match no parameter; '
                     'parameter paths look like "encoder/embed/embedding"')
  return labels


def describe_labels(params, labels) -> str:
  """One line per top-level subtree: how many leaves/parameters are frozen, for the start-up log."""
  rows = {}
  for (path, leaf), lab in zip(jax.tree_util.tree_leaves_with_path(params),
                               jax.tree_util.tree_leaves(labels)):
    top = param_path(path[:2])
    entry = rows.setdefault(top, {TRAINABLE: 0, FROZEN: 0})
    entry[lab] += int(leaf.size)
  lines = [f'  {name:<40s} {"FROZEN" if c[FROZEN] and not c[TRAINABLE] else "trainable" if not c[FROZEN] else "mixed":>9s}'
           f'  {c[FROZEN] + c[TRAINABLE]:>11,d} params' for name, c in sorted(rows.items())]
  return '\n'.join(lines)


def trainable_only(tree, labels):
  """`tree` with its frozen leaves replaced by None (an empty subtree).

  Differentiating with respect to this tree gives gradients of trainable leaves only, so a
  frozen encoder gets no backward pass and no gradient accumulator.
  """
  return jax.tree.map(lambda x, lab: x if lab == TRAINABLE else None, tree, labels)


def fill_frozen(trainable, full):
  """The leaves of `trainable`, and those of `full` where `trainable` holds None."""
  return jax.tree.map(lambda t, f: f if t is None else t, trainable, full,
                      is_leaf=lambda x: x is None)


def learning_rate_schedule(cfg, num_steps: int) -> optax.Schedule:
  """The rate of each update by its 0-based count: step s (1-based) applies schedule(s - 1).

  The decay ends on the last update: with cosine, step `num_steps` applies the floor,
  alpha * peak.
  """
  warmup = optax.linear_schedule(0.0, cfg.learning_rate, max(cfg.warmup_steps, 1))
  decay_steps = max(num_steps - 1 - cfg.warmup_steps, 1)
  if cfg.schedule == 'cosine':
    decay = optax.cosine_decay_schedule(cfg.learning_rate, decay_steps, alpha=0.05)
  elif cfg.schedule == 'rsqrt':
    decay = lambda s: cfg.learning_rate * jax.lax.rsqrt(1.0 + s / max(cfg.warmup_steps, 1))
  elif cfg.schedule == 'constant':
    decay = optax.constant_schedule(cfg.learning_rate)
  else:
    raise ValueError(f"config.optim.schedule must be 'cosine', 'rsqrt' or 'constant', "
                     f'got {cfg.schedule!r}')
  return optax.join_schedules([warmup, decay], [cfg.warmup_steps])


def make_optimizer(cfg, num_steps: int, params) -> tuple[optax.GradientTransformation, Any]:
  """Returns (optimizer, labels) for `config.optim`; labels mark each leaf frozen/trainable.

  The optimizer's schedule spans `num_steps` calls of its `update`, one per trainer step.
  """
  trainable = optax.chain(
      optax.clip_by_global_norm(cfg.clip_norm) if cfg.clip_norm > 0 else optax.identity(),
      optax.adamw(learning_rate_schedule(cfg, num_steps), b1=cfg.b1, b2=cfg.b2,
                  weight_decay=cfg.weight_decay,
                  # No decay on biases, LayerNorm scales or embeddings' 1-d params.
                  mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
  )
  labels = freeze_labels(params, cfg.frozen)
  tx = optax.partition({TRAINABLE: trainable, FROZEN: optax.set_to_zero()}, labels)
  return tx, labels
