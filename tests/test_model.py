"""Tests for pyhanzi_jax/model.py on tiny shapes (CPU, seconds)."""
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from pyhanzi_jax import model as model_lib
from pyhanzi_jax.data.vocab import BOS, PAD

SRC_V, TGT_V = 40, 50
B, S, T = 2, 7, 6


def tiny_config(**kw):
  base = dict(src_vocab_size=SRC_V, tgt_vocab_size=TGT_V, emb_dim=32, num_heads=4,
              enc_layers=2, dec_layers=2, mlp_dim=64, max_len=16)
  base.update(kw)
  return model_lib.ModelConfig(**base)


_JITTED = {}


def apply(model, variables, *args, method='__call__', **kwargs):
  """model.apply under jit, one compilation per (model, method, static options): much faster
  than the eager apply, which compiles every primitive on first use."""
  arrays = {k: v for k, v in kwargs.items()
            if k == 'rngs' or isinstance(v, (np.ndarray, jax.Array))}
  static = tuple(sorted((k, v) for k, v in kwargs.items() if k not in arrays))
  key = (model, method, static, tuple(sorted(arrays)))
  if key not in _JITTED:
    _JITTED[key] = jax.jit(
        lambda v, kw, *a: model.apply(v, *a, method=method, **kw, **dict(static)))
  return _JITTED[key](variables, arrays, *args)


@pytest.fixture(scope='module')
def setup():
  config = tiny_config()
  params = model_lib.init_params(config, jax.random.key(0))
  model = model_lib.Transformer(config)
  inputs = np.array(jax.random.randint(jax.random.key(1), (B, S), 4, SRC_V), np.int32)
  inputs[1, 5:] = PAD  # Second sentence shorter.
  targets = np.array(jax.random.randint(jax.random.key(2), (B, T), 4, TGT_V), np.int32)
  return model, params, inputs, targets


def test_from_config_maps_dtypes():
  mc = ml_collections.ConfigDict(dict(
      emb_dim=64, num_heads=2, enc_layers=1, dec_layers=1, mlp_dim=128, dropout_rate=0.2,
      attention_dropout_rate=0.0, max_len=32, dtype='bfloat16', param_dtype='float32'))
  config = model_lib.ModelConfig.from_config(mc, 10, 20)
  assert config.dtype == jnp.bfloat16 and config.param_dtype == jnp.float32
  assert (config.src_vocab_size, config.tgt_vocab_size, config.emb_dim) == (10, 20, 64)
  with pytest.raises(ValueError):
    model_lib.ModelConfig(10, 20, emb_dim=30, num_heads=4)


def test_params_layout(setup):
  _, params, _, _ = setup
  assert set(params) == {'encoder', 'decoder'}
  assert params['encoder']['embed']['embedding'].shape == (SRC_V, 32)
  assert params['decoder']['embed']['embedding'].shape == (TGT_V, 32)
  assert params['decoder']['output']['embedding'].shape == (TGT_V, 32)
  shapes = jax.eval_shape(lambda r: model_lib.init_params(tiny_config(), r), jax.random.key(0))
  assert jax.tree.structure(shapes) == jax.tree.structure(params)


def test_shapes(setup):
  model, params, inputs, targets = setup
  v = {'params': params}
  encoded = apply(model, v, inputs, method='encode')
  assert encoded.shape == (B, S, 32)
  logits = apply(model, v, encoded, inputs, model_lib.shift_right(targets), method='decode')
  assert logits.shape == (B, T, TGT_V) and logits.dtype == jnp.float32
  full = apply(model, v, inputs, targets)
  np.testing.assert_allclose(full, logits, atol=1e-5)
  # Training mode with dropout runs and differs from eval mode.
  model_d = model_lib.Transformer(tiny_config(dropout_rate=0.5))
  train = apply(model_d, v, inputs, targets, train=True, rngs={'dropout': jax.random.key(3)})
  assert train.shape == (B, T, TGT_V) and not np.allclose(train, full)


def test_shift_right():
  np.testing.assert_array_equal(model_lib.shift_right(jnp.array([[5, 6, 2]])), [[BOS, 5, 6]])


def test_causal(setup):
  model, params, inputs, targets = setup
  changed = targets.copy()
  changed[:, 3] = (changed[:, 3] + 1 - 4) % (TGT_V - 4) + 4
  a = apply(model, {'params': params}, inputs, targets)
  b = apply(model, {'params': params}, inputs, changed)
  # Target 3 is decoder input 4: logits 0..3 must not move, logits 4 must.
  np.testing.assert_allclose(a[:, :4], b[:, :4], atol=1e-6)
  assert not np.allclose(a[:, 4], b[:, 4])


def test_source_padding_is_ignored(setup):
  model, params, inputs, targets = setup
  v = {'params': params}
  padded = np.concatenate([inputs, np.zeros((B, 3), np.int32)], axis=1)
  enc_a = apply(model, v, inputs, method='encode')
  enc_b = apply(model, v, padded, method='encode')
  np.testing.assert_allclose(enc_a[0], enc_b[0, :S], atol=1e-5)
  np.testing.assert_allclose(enc_a[1, :5], enc_b[1, :5], atol=1e-5)
  np.testing.assert_allclose(apply(model, v, inputs, targets), apply(model, v, padded, targets),
                             atol=1e-5)


def test_cached_decoding_matches_full(setup):
  model, params, inputs, targets = setup
  v = {'params': params}
  dec_in = model_lib.shift_right(targets)
  encoded = apply(model, v, inputs, method='encode')
  full = apply(model, v, encoded, inputs, dec_in, method='decode')
  cache = jax.eval_shape(functools.partial(model.apply, decode=True, method='decode',
                                           mutable=['cache']), v, encoded, inputs, dec_in)[1]
  cache = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), cache)['cache']
  cross = apply(model, v, encoded, method='cross_kv')
  step = jax.jit(lambda c, tok: model.apply(
      {'params': params, 'cache': c}, None, inputs, tok, decode=True, cross_kv=cross,
      method='decode', mutable=['cache']))
  steps = []
  for t in range(T):
    logits, mutated = step(cache, dec_in[:, t:t + 1])
    cache = mutated['cache']
    steps.append(logits[:, 0])
  np.testing.assert_allclose(np.stack(steps, 1), full, atol=1e-4, rtol=1e-4)


def test_candidate_rows_match_full_logits(setup):
  model, params, inputs, targets = setup
  v = {'params': params}
  ids = np.array(jax.random.randint(jax.random.key(5), (B, T, 5), 0, TGT_V), np.int32)
  ids[:, :, -1] = -1
  encoded = apply(model, v, inputs, method='encode')
  dec_in = model_lib.shift_right(targets)
  full = apply(model, v, encoded, inputs, dec_in, method='decode')
  cand = apply(model, v, encoded, inputs, dec_in, candidate_ids=ids, method='decode')
  expect = np.take_along_axis(np.asarray(full), np.maximum(ids, 0), axis=-1)
  np.testing.assert_allclose(cand[..., :-1], expect[..., :-1], atol=1e-4)
  assert np.all(cand[..., -1] <= model_lib.NEG_INF / 2)


def test_beam_rows_share_encoder_output(setup):
  """Decoder batch = 3 * encoder batch (beams) gives each beam its example's logits."""
  model, params, inputs, targets = setup
  v = {'params': params}
  encoded = apply(model, v, inputs, method='encode')
  dec_in = model_lib.shift_right(targets)
  ref = apply(model, v, encoded, inputs, dec_in, method='decode')
  tiled = apply(model, v, encoded, inputs, jnp.repeat(dec_in, 3, axis=0), method='decode')
  np.testing.assert_allclose(tiled, jnp.repeat(ref, 3, axis=0), atol=1e-5)


def test_bfloat16_runs(setup):
  _, _, inputs, targets = setup
  config = tiny_config(dtype='bfloat16')
  params = model_lib.init_params(config, jax.random.key(0))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
  logits = apply(model_lib.Transformer(config), {'params': params}, inputs, targets)
  assert logits.dtype == jnp.float32 and np.all(np.isfinite(logits))
  ref = apply(model_lib.Transformer(tiny_config()), {'params': params}, inputs, targets)
  np.testing.assert_allclose(logits, ref, atol=0.1)


def test_too_long_input_is_refused(setup):
  model, params, _, _ = setup
  with pytest.raises(ValueError, match='max_len'):
    model.apply({'params': params}, jnp.ones((1, 17), jnp.int32), method='encode')
