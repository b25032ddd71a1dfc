"""Fine-tuning with the encoder frozen: bit-identical encoder, no optimizer state, less work."""
import json
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import config_defaults
from pyhanzi_jax import model as model_lib
from pyhanzi_jax import optim
from pyhanzi_jax import train
from pyhanzi_jax.data import pipeline
from pyhanzi_jax.data import vocab as vocab_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _finetune_config(init_from, **overrides):
  c = config_defaults.load_sibling('finetune_tiny', os.path.join(ROOT, 'configs', 'x.py'))
  c.optim.init_from = init_from
  c.train.export_at_end = False
  c.train.eval_decode_sentences = 0
  c.train.best_metric = 'domain/token_acc'
  for k, v in overrides.items():
    sect, name = k.split('.')
    c[sect][name] = v
  return c


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('pretrain'))
  c = tiny.get_config()
  c.train.num_steps = 30
  c.train.eval_every = 30
  c.train.export_at_end = False
  c.train.eval_decode_sentences = 0
  c.train.best_metric = 'general/token_acc'
  train.train_and_evaluate(c, workdir)
  return workdir


def _params(workdir, config):
  pv, hv = vocab_lib.load_vocabs(config.data.dir)
  mc = model_lib.ModelConfig.from_config(config.model, len(pv), len(hv))
  abstract = jax.eval_shape(lambda: model_lib.init_params(mc, jax.random.key(0)))
  return ckpt_lib.restore_params_from_workdir(workdir, abstract)[0]


def test_frozen_encoder_is_bit_identical_and_decoder_moves(pretrained, tmp_path, caplog):
  # Validation decodes a few sentences too: the best checkpoint is picked by greedy accuracy.
  config = _finetune_config(pretrained, **{
      'train.num_steps': 20, 'train.eval_decode_sentences': 4,
      'train.best_metric': 'domain/greedy_char_acc'})
  before = _params(pretrained, config)
  with caplog.at_level(logging.INFO):
    metrics = train.train_and_evaluate(config, str(tmp_path))
  after = _params(str(tmp_path), config)
  for a, b in zip(jax.tree.leaves(before['encoder']), jax.tree.leaves(after['encoder'])):
    np.testing.assert_array_equal(a, b)
  moved = [not np.array_equal(a, b) for a, b in
           zip(jax.tree.leaves(before['decoder']), jax.tree.leaves(after['decoder']))]
  assert all(moved), f'{moved.count(False)} decoder leaves did not change'
  # The start-up log shows what is frozen.
  assert 'encoder/' in caplog.text and 'FROZEN' in caplog.text
  # Greedy-decoding accuracies are named apart from the teacher-forced ones, in metrics.jsonl
  # (and TensorBoard) as in what the trainer returns.
  with open(tmp_path / 'metrics.jsonl') as f:
    logged = set().union(*(json.loads(line) for line in f))
  for corpus in ('domain', 'general'):
    for name in ('greedy_char_acc', 'greedy_sent_acc', 'token_acc', 'tf_sent_acc'):
      assert f'{corpus}/{name}' in metrics and f'{corpus}/{name}' in logged


def _state_for(frozen, **overrides):
  config = _finetune_config('', **{'optim.frozen': frozen, **overrides})
  pv, hv = vocab_lib.load_vocabs(config.data.dir)
  mc = model_lib.ModelConfig.from_config(config.model, len(pv), len(hv))
  params = model_lib.init_params(mc, jax.random.key(0))
  tx, labels = optim.make_optimizer(config.optim, 100, params)
  return mc, params, tx, labels


def _nbytes(tree):
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def _batch(rows, length=32):
  split = pipeline.load_split(_finetune_config('').data.dir, 'domain', 'train')
  src, tgt = split.rows(np.arange(rows), length)
  return {'inputs': src, 'targets': tgt}


def _accumulated(mc, params, labels, batch, accum):
  """(gradients, metric sums) of `batch` summed over `accum` micro-batches."""
  return train.accumulated_grads_and_metrics(
      params, batch, jax.random.key(0), accum_steps=accum, model=model_lib.Transformer(mc),
      labels=labels, label_smoothing=0.1)


@pytest.mark.parametrize('accum', [1, 4])
def test_frozen_leaves_have_no_optimizer_state_and_no_accumulator(accum):
  mc, params, tx, labels = _state_for('encoder/.*', **{'optim.grad_accum_steps': accum})
  _, _, tx_full, labels_full = _state_for('', **{'optim.grad_accum_steps': accum})
  decoder, encoder = _nbytes(params['decoder']), _nbytes(params['encoder'])
  # Adam keeps two moments per trainable parameter, plus a few scalar counters; accumulation
  # adds nothing to the optimizer state.
  assert 2 * decoder <= _nbytes(tx.init(params)) < 2 * decoder + 1024
  assert 2 * (decoder + encoder) <= _nbytes(tx_full.init(params)) < 2 * (decoder + encoder) + 1024
  # The running sum that the step carries over the micro-batches (its gradients) has one entry
  # per trainable parameter.
  batch = _batch(16 * accum)
  for lab, trainable in ((labels, decoder), (labels_full, decoder + encoder)):
    grads, _ = jax.eval_shape(lambda p, b, lab=lab: _accumulated(mc, p, lab, b, accum),
                              params, batch)
    assert _nbytes(grads) == trainable


def test_frozen_step_compiles_to_less_work():
  flops = {}
  for frozen in ('encoder/.*', ''):
    mc, params, tx, labels = _state_for(frozen)
    model = model_lib.Transformer(mc)
    state = train.TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params))
    batch = {'inputs': jnp.ones((16, 32), jnp.int32), 'targets': jnp.ones((16, 32), jnp.int32)}
    step = jax.jit(train.make_train_step(model, tx, labels, 0.0))
    cost = step.lower(state, batch, jax.random.key(0)).compile().cost_analysis()
    flops[frozen or 'none'] = cost['flops']
  # No encoder backward pass, no encoder optimizer update.
  assert flops['encoder/.*'] < 0.85 * flops['none'], flops


def test_a_pattern_that_matches_nothing_is_an_error():
  with pytest.raises(ValueError, match='match no parameter'):
    _state_for('encodr/.*')


def test_gradient_accumulation_sums_the_whole_batch_into_one_update_of_trainable_leaves():
  """k micro-batches give the gradient of the whole batch (no dropout in the tiny model), and
  one step with them is one update: the step count moves by 1, the encoder not at all."""
  mc, params, tx, labels = _state_for('encoder/.*', **{'optim.warmup_steps': 0})
  batch = _batch(32)
  whole = jax.jit(lambda p, b: _accumulated(mc, p, labels, b, 1))(params, batch)
  split = jax.jit(lambda p, b: _accumulated(mc, p, labels, b, 4))(params, batch)
  assert not jax.tree.leaves(split[0]['encoder'])  # No gradient taken for frozen leaves.
  for got, want in zip(jax.tree.leaves(split), jax.tree.leaves(whole)):
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)

  state = train.TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params))
  step = jax.jit(train.make_train_step(model_lib.Transformer(mc), tx, labels, 0.1, 4))
  after, sums = step(state, batch, jax.random.key(0))
  assert int(after.step) == 1 and float(sums['tokens']) == float(whole[1]['tokens'])
  for a, b in zip(jax.tree.leaves(params['encoder']), jax.tree.leaves(after.params['encoder'])):
    np.testing.assert_array_equal(a, b)
  assert all(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params['decoder']),
                                                      jax.tree.leaves(after.params['decoder'])))
