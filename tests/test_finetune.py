"""Fine-tuning with the encoder frozen: bit-identical encoder, no optimizer state, less work."""
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
  pv, hv = train.load_vocabs(config.data.dir)
  mc = model_lib.ModelConfig.from_config(config.model, len(pv), len(hv))
  abstract = jax.eval_shape(lambda: model_lib.init_params(mc, jax.random.key(0)))
  return ckpt_lib.restore_params_from_workdir(workdir, abstract)[0]


def test_frozen_encoder_is_bit_identical_and_decoder_moves(pretrained, tmp_path, caplog):
  config = _finetune_config(pretrained, **{'train.num_steps': 20})
  before = _params(pretrained, config)
  with caplog.at_level(logging.INFO):
    train.train_and_evaluate(config, str(tmp_path))
  after = _params(str(tmp_path), config)
  for a, b in zip(jax.tree.leaves(before['encoder']), jax.tree.leaves(after['encoder'])):
    np.testing.assert_array_equal(a, b)
  moved = [not np.array_equal(a, b) for a, b in
           zip(jax.tree.leaves(before['decoder']), jax.tree.leaves(after['decoder']))]
  assert all(moved), f'{moved.count(False)} decoder leaves did not change'
  # The start-up log shows what is frozen.
  assert 'encoder/' in caplog.text and 'FROZEN' in caplog.text


def _state_for(frozen, **overrides):
  config = _finetune_config('', **{'optim.frozen': frozen, **overrides})
  pv, hv = train.load_vocabs(config.data.dir)
  mc = model_lib.ModelConfig.from_config(config.model, len(pv), len(hv))
  params = model_lib.init_params(mc, jax.random.key(0))
  tx, labels = optim.make_optimizer(config.optim, 100, params)
  return mc, params, tx, labels


def _nbytes(tree):
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


@pytest.mark.parametrize('accum', [1, 4])
def test_frozen_leaves_have_no_optimizer_state(accum):
  _, params, tx, _ = _state_for('encoder/.*', **{'optim.grad_accum_steps': accum})
  _, _, tx_full, _ = _state_for('', **{'optim.grad_accum_steps': accum})
  frozen_state = _nbytes(tx.init(params))
  full_state = _nbytes(tx_full.init(params))
  decoder, encoder = _nbytes(params['decoder']), _nbytes(params['encoder'])
  # Adam keeps two moments per trainable parameter, gradient accumulation (optax.MultiSteps) a
  # running sum, plus a few scalar counters.
  per = 2 + (accum > 1)
  assert per * decoder <= frozen_state < per * decoder + 1024
  assert per * (decoder + encoder) <= full_state < per * (decoder + encoder) + 1024


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


def test_gradient_accumulation_applies_the_mean_gradient_to_trainable_leaves_only():
  # No warmup: the first update has a learning rate above 0.
  _, params, tx_accum, _ = _state_for('encoder/.*', **{'optim.grad_accum_steps': 2,
                                                       'optim.warmup_steps': 0})
  _, _, tx_once, _ = _state_for('encoder/.*', **{'optim.warmup_steps': 0})
  g1 = jax.tree.map(lambda p: jnp.full_like(p, 0.01), params)
  g2 = jax.tree.map(lambda p: jnp.full_like(p, -0.03), params)
  state = tx_accum.init(params)
  updates, state = tx_accum.update(g1, state, params)
  assert all(not np.any(u) for u in jax.tree.leaves(updates))  # A micro-step: no update yet.
  updates, state = tx_accum.update(g2, state, params)
  mean = jax.tree.map(lambda a, b: (a + b) / 2, g1, g2)
  want, _ = tx_once.update(mean, tx_once.init(params), params)
  for got, ref in zip(jax.tree.leaves(updates), jax.tree.leaves(want)):
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9)
  assert all(not np.any(u) for u in jax.tree.leaves(updates['encoder']))
  assert any(np.any(u) for u in jax.tree.leaves(updates['decoder']))
