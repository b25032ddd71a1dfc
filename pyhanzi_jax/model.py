"""The encoder-decoder Transformer that turns pinyin ids into character ids.

Pre-LN blocks, learned positions, dropout under the rng name 'dropout'. Parameters are
`{'encoder': {...}, 'decoder': {...}}`: the source embedding lives under `encoder`, the target
embedding and the (untied) output projection under `decoder` (docs/ARCHITECTURE.md).

Three ways to run the decoder, all through `Transformer.decode`:
- teacher forcing over the whole target (`decode=False`), as in training;
- one position per call with a KV cache in the 'cache' collection (`decode=True`), flax's
  pattern: the first call on a `[batch, max_len]` input (usually under `jax.eval_shape`) only
  creates the cache, later calls take `[batch, 1]` and advance it;
- scoring only some rows of the output projection (`candidate_ids`), which is how
  pinyin-constrained decoding avoids the `[emb, vocab]` product (pyhanzi_jax/decode.py).

The decoder batch may be a whole multiple of the encoder batch (beam search: `batch * beam`
rows, example-major); cross-attention then shares one copy of each example's keys and values
between its beams instead of tiling the encoder output.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pyhanzi_jax.data.vocab import BOS, PAD

# Finite, so that sums of masked scores never make inf - inf = nan.
NEG_INF = -1e9

_DTYPES = ('float32', 'bfloat16', 'float16')


def _dtype(value) -> np.dtype:
  """'bfloat16', jnp.bfloat16 or np.dtype('bfloat16') -> np.dtype('bfloat16')."""
  if isinstance(value, str) and value not in _DTYPES:
    raise ValueError(f'unknown dtype {value!r}; expected one of {_DTYPES}')
  return jnp.dtype(value)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Everything that fixes the model's shapes and numerics (hashable, so usable as a static)."""
  src_vocab_size: int
  tgt_vocab_size: int
  emb_dim: int = 256
  num_heads: int = 4
  enc_layers: int = 3
  dec_layers: int = 3
  mlp_dim: int = 1024
  dropout_rate: float = 0.1
  attention_dropout_rate: float = 0.0
  max_len: int = 128
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  def __post_init__(self):
    if self.emb_dim % self.num_heads:
      raise ValueError(f'emb_dim={self.emb_dim} is not a multiple of num_heads={self.num_heads}')
    # One canonical form (np.dtype) whether given as a string (configs), a jnp type or a
    # np.dtype (bundles), so equal configs compare and hash equal.
    object.__setattr__(self, 'dtype', _dtype(self.dtype))
    object.__setattr__(self, 'param_dtype', _dtype(self.param_dtype))

  @classmethod
  def from_config(cls, model_cfg, src_vocab_size: int, tgt_vocab_size: int) -> 'ModelConfig':
    """From `config.model` (configs/default.py); dtype strings become np.dtypes."""
    kwargs = {}
    for field in dataclasses.fields(cls):
      if field.name in ('src_vocab_size', 'tgt_vocab_size'):
        continue
      if field.name in model_cfg:
        kwargs[field.name] = model_cfg[field.name]
    return cls(src_vocab_size=int(src_vocab_size), tgt_vocab_size=int(tgt_vocab_size), **kwargs)


def shift_right(x: jax.Array, bos: int = BOS) -> jax.Array:
  """[batch, length] targets -> decoder inputs: BOS, then the targets less their last id."""
  x = jnp.asarray(x)
  return jnp.concatenate([jnp.full_like(x[:, :1], bos), x[:, :-1]], axis=1)


def _attend(q, k, v, mask, dtype):
  """Dot-product attention. q [b, t, h, d]; k, v [bk, h, s, d] with b a multiple of bk.

  Keys and values are heads-major ([batch, heads, length, head_dim]): XLA:CPU's batched dots
  take them as they are, where [batch, length, heads, head_dim] made it transpose the whole KV
  cache at every decoding step (measured 4x slower per step).
  When b = bk * w the w consecutive query rows of one example (its beams) share the example's
  keys: they are folded into the query axis rather than tiling k and v. mask broadcasts to
  [bk, 1, w * t, s] (or is None). Softmax in float32. Returns (weights [bk, h, w * t, s],
  a function weights -> [b, t, h, d]) so that dropout can go in between.
  """
  b, t, h, d = q.shape
  bk = k.shape[0]
  if b != bk:
    q = q.reshape(bk, (b // bk) * t, h, d)
  q = q * jnp.asarray(1.0 / np.sqrt(d), dtype)
  logits = jnp.einsum('bqhd,bhkd->bhqk', q, k, preferred_element_type=jnp.float32)
  if mask is not None:
    logits = jnp.where(mask, logits, NEG_INF)
  weights = jax.nn.softmax(logits, axis=-1).astype(dtype)
  return weights, lambda w: jnp.einsum('bhqk,bhkd->bqhd', w, v).reshape(b, t, h, d)


class Attention(nn.Module):
  """Multi-head attention with flax's MultiHeadDotProductAttention parameter layout.

  Self-attention with `decode=True` keeps 'cached_key', 'cached_value' ([batch, heads,
  max_len, head_dim]) and 'cache_index' in the 'cache' collection, like flax's `decode=True`.
  Cross-attention takes precomputed `kv` (see `kv`), so a decoding loop projects the encoder
  output once per sentence instead of once per step.
  """
  config: ModelConfig

  def setup(self):
    c = self.config
    head_dim = c.emb_dim // c.num_heads
    dense = lambda name: nn.DenseGeneral(
        (c.num_heads, head_dim), dtype=c.dtype, param_dtype=c.param_dtype, name=name)
    self.query = dense('query')
    self.key = dense('key')
    self.value = dense('value')
    self.out = nn.DenseGeneral(c.emb_dim, axis=(-2, -1), dtype=c.dtype,
                               param_dtype=c.param_dtype, name='out')
    self.attention_dropout = nn.Dropout(c.attention_dropout_rate)

  def kv(self, x):
    """[batch, length, emb] -> (keys, values), each [batch, heads, length, head_dim]."""
    return self.key(x).transpose(0, 2, 1, 3), self.value(x).transpose(0, 2, 1, 3)

  @nn.compact  # Only so the cache variables can be created here; submodules are in setup.
  def __call__(self, x, *, mask=None, kv=None, decode: bool = False, deterministic: bool = True):
    """x [batch, length, emb] -> [batch, length, emb]; self-attention unless `kv` is given."""
    q = self.query(x)
    if kv is None:
      k, v = self.kv(x)
      if decode:
        initialized = self.has_variable('cache', 'cached_key')
        cached_key = self.variable('cache', 'cached_key', jnp.zeros, k.shape, k.dtype)
        cached_value = self.variable('cache', 'cached_value', jnp.zeros, v.shape, v.dtype)
        cache_index = self.variable('cache', 'cache_index', lambda: jnp.array(0, jnp.int32))
        if initialized:  # One new position per call; attend to everything cached so far.
          if x.shape[1] != 1:
            raise ValueError(f'decode=True takes one position per call, got {x.shape[1]}')
          i = cache_index.value
          cached_key.value = jax.lax.dynamic_update_slice(cached_key.value, k, (0, 0, i, 0))
          cached_value.value = jax.lax.dynamic_update_slice(cached_value.value, v, (0, 0, i, 0))
          cache_index.value = i + 1
          k, v = cached_key.value, cached_value.value
          mask = (jnp.arange(k.shape[2]) <= i)[None, None, None, :]
    else:
      k, v = kv
    weights, mix = _attend(q, k, v, mask, self.config.dtype)
    weights = self.attention_dropout(weights, deterministic=deterministic)
    return self.out(mix(weights))


class Mlp(nn.Module):
  config: ModelConfig

  @nn.compact
  def __call__(self, x, *, deterministic: bool):
    c = self.config
    h = nn.Dense(c.mlp_dim, dtype=c.dtype, param_dtype=c.param_dtype, name='wi')(x)
    h = nn.gelu(h)
    h = nn.Dropout(c.dropout_rate)(h, deterministic=deterministic)
    return nn.Dense(c.emb_dim, dtype=c.dtype, param_dtype=c.param_dtype, name='wo')(h)


def _norm(c: ModelConfig, name: str):
  return nn.LayerNorm(dtype=c.dtype, param_dtype=c.param_dtype, name=name)


class EncoderBlock(nn.Module):
  config: ModelConfig

  @nn.compact
  def __call__(self, x, mask, *, train: bool):
    c = self.config
    drop = nn.Dropout(c.dropout_rate)
    h = Attention(c, name='self_attention')(
        _norm(c, 'self_norm')(x), mask=mask, deterministic=not train)
    x = x + drop(h, deterministic=not train)
    h = Mlp(c, name='mlp')(_norm(c, 'mlp_norm')(x), deterministic=not train)
    return x + drop(h, deterministic=not train)


class DecoderBlock(nn.Module):
  config: ModelConfig

  def setup(self):
    c = self.config
    self.self_norm = _norm(c, 'self_norm')
    self.self_attention = Attention(c)
    self.cross_norm = _norm(c, 'cross_norm')
    self.cross_attention = Attention(c)
    self.mlp_norm = _norm(c, 'mlp_norm')
    self.mlp = Mlp(c)
    self.dropout = nn.Dropout(c.dropout_rate)

  def __call__(self, x, causal_mask, cross_kv, cross_mask, *, train: bool, decode: bool):
    det = not train
    h = self.self_attention(self.self_norm(x), mask=causal_mask, decode=decode, deterministic=det)
    x = x + self.dropout(h, deterministic=det)
    h = self.cross_attention(self.cross_norm(x), mask=cross_mask, kv=cross_kv, deterministic=det)
    x = x + self.dropout(h, deterministic=det)
    h = self.mlp(self.mlp_norm(x), deterministic=det)
    return x + self.dropout(h, deterministic=det)


def _embed(c: ModelConfig, vocab_size: int, name: str):
  return nn.Embed(vocab_size, c.emb_dim, dtype=c.dtype, param_dtype=c.param_dtype, name=name)


def _positions(module: nn.Module, c: ModelConfig):
  return module.param('pos_embedding', nn.initializers.normal(0.02), (c.max_len, c.emb_dim),
                      c.param_dtype)


def _check_len(length: int, c: ModelConfig, what: str):
  if length > c.max_len:
    raise ValueError(f'{what} length {length} exceeds the model max_len={c.max_len}')


class Encoder(nn.Module):
  """[batch, src_len] pinyin ids (PAD=0) -> [batch, src_len, emb] in config.dtype."""
  config: ModelConfig

  @nn.compact
  def __call__(self, inputs, *, train: bool = False):
    c = self.config
    _check_len(inputs.shape[1], c, 'source')
    x = _embed(c, c.src_vocab_size, 'embed')(inputs)
    x = x + _positions(self, c)[:inputs.shape[1]].astype(c.dtype)
    x = nn.Dropout(c.dropout_rate)(x, deterministic=not train)
    mask = (inputs != PAD)[:, None, None, :]  # [batch, 1, 1, src_len]: padding keys only.
    for i in range(c.enc_layers):
      x = EncoderBlock(c, name=f'layers_{i}')(x, mask, train=train)
    return _norm(c, 'final_norm')(x)


class OutputProjection(nn.Module):
  """Hidden states -> float32 logits over the character vocabulary, or over chosen rows.

  The weight is stored [vocab, emb] so that the rows for a candidate set are one contiguous
  gather each.
  """
  config: ModelConfig

  def setup(self):
    c = self.config
    init = nn.initializers.variance_scaling(1.0, 'fan_in', 'normal', out_axis=0)
    self.embedding = self.param('embedding', init, (c.tgt_vocab_size, c.emb_dim), c.param_dtype)
    self.bias = self.param('bias', nn.initializers.zeros, (c.tgt_vocab_size,), c.param_dtype)

  def __call__(self, x):
    """x [batch, length, emb] -> [batch, length, vocab] float32."""
    w = self.embedding.astype(self.config.dtype)
    logits = jnp.einsum('btd,vd->btv', x, w, preferred_element_type=jnp.float32)
    return logits + self.bias.astype(jnp.float32)

  def candidates(self, x, ids):
    """x [b, t, emb], ids [bk, t, k] (-1 = none) -> [b, t, k] float32; b a multiple of bk.

    When b = bk * w, the w consecutive rows of x (one example's beams) share their example's
    candidate list, so the rows are gathered once per example. Entries with id -1 get NEG_INF:
    a softmax over the last axis is then the full-vocabulary softmax restricted (renormalised)
    to the candidates.
    """
    b, t, _ = x.shape
    bk = ids.shape[0]
    safe = jnp.maximum(ids, 0)
    # mode='clip': XLA's gather clamps anyway; the default 'fill' adds a masking pass (measured
    # as the largest single cost of a batch-1 decoding step).
    rows = jnp.take(self.embedding, safe, axis=0, mode='clip')  # [bk, t, k, emb]
    rows = rows.astype(self.config.dtype)
    x = x.reshape(bk, b // bk, t, x.shape[-1])
    logits = jnp.einsum('bwtd,btkd->bwtk', x, rows, preferred_element_type=jnp.float32)
    logits = logits + jnp.take(self.bias, safe, mode='clip').astype(jnp.float32)[:, None]
    logits = jnp.where(ids[:, None] >= 0, logits, NEG_INF)
    return logits.reshape(b, t, -1)


class Decoder(nn.Module):
  """Target embedding, causal self-attention + cross-attention blocks, output projection."""
  config: ModelConfig

  def setup(self):
    c = self.config
    self.embed = _embed(c, c.tgt_vocab_size, 'embed')
    self.pos_embedding = _positions(self, c)
    self.layers = [DecoderBlock(c) for _ in range(c.dec_layers)]
    self.final_norm = _norm(c, 'final_norm')
    self.output = OutputProjection(c)
    self.dropout = nn.Dropout(c.dropout_rate)

  def cross_kv(self, encoded):
    """Every block's cross-attention (keys, values) for `encoded` [batch, src_len, emb]."""
    return tuple(layer.cross_attention.kv(encoded) for layer in self.layers)

  @nn.compact  # Only so the 'position' cache variable can be created here.
  def __call__(self, encoded, inputs, decoder_inputs, *, train: bool = False,
               decode: bool = False, cross_kv=None, candidate_ids=None):
    c = self.config
    length = decoder_inputs.shape[1]
    _check_len(length, c, 'target')
    x = self.embed(decoder_inputs)
    if decode:
      initialized = self.has_variable('cache', 'position')
      position = self.variable('cache', 'position', lambda: jnp.array(0, jnp.int32))
      if initialized:
        pos = jax.lax.dynamic_slice_in_dim(self.pos_embedding, position.value, 1)
        position.value = position.value + 1
      else:
        pos = self.pos_embedding[:length]
    else:
      pos = self.pos_embedding[:length]
    x = x + pos.astype(c.dtype)
    x = self.dropout(x, deterministic=not train)
    if cross_kv is None:
      cross_kv = self.cross_kv(encoded)
    cross_mask = (inputs != PAD)[:, None, None, :]  # [batch, 1, 1, src_len]
    causal_mask = nn.make_causal_mask(jnp.ones((1, length), jnp.int32))  # [1, 1, len, len]
    for layer, kv in zip(self.layers, cross_kv):
      x = layer(x, causal_mask, kv, cross_mask, train=train, decode=decode)
    x = self.final_norm(x)
    if candidate_ids is not None:
      return self.output.candidates(x, candidate_ids)
    return self.output(x)


class Transformer(nn.Module):
  """Pinyin ids -> character logits. See the module docstring for the decoding modes."""
  config: ModelConfig

  def setup(self):
    self.encoder = Encoder(self.config)
    self.decoder = Decoder(self.config)

  def encode(self, inputs, *, train: bool = False):
    """inputs [batch, src_len] int32 (PAD=0) -> encoded [batch, src_len, emb]."""
    return self.encoder(inputs, train=train)

  def cross_kv(self, encoded):
    """Per decoder block, the cross-attention (keys, values) [batch, heads, src_len, head_dim].

    Pass the result as `decode(..., cross_kv=...)` to skip re-projecting `encoded` every step.
    """
    return self.decoder.cross_kv(encoded)

  def decode(self, encoded, inputs, decoder_inputs, *, train: bool = False, decode: bool = False,
             cross_kv=None, candidate_ids=None):
    """Decoder logits [batch, tgt_len, vocab] float32.

    encoded: [src_batch, src_len, emb] (may be None when `cross_kv` is given).
    inputs: [src_batch, src_len] source ids, for the padding mask.
    decoder_inputs: [batch, tgt_len] (BOS-shifted targets); batch a multiple of src_batch,
      the rows of one example consecutive. With decode=True, tgt_len is 1 once the cache exists.
    candidate_ids: optional [src_batch, tgt_len, k] target ids (-1 = none), shared by the rows
      of one example: then the logits are [batch, tgt_len, k] for just those rows of the
      output projection (NEG_INF for -1).
    """
    return self.decoder(encoded, inputs, decoder_inputs, train=train, decode=decode,
                        cross_kv=cross_kv, candidate_ids=candidate_ids)

  def __call__(self, inputs, targets, *, train: bool = False):
    """Teacher forcing: inputs [batch, src_len], targets [batch, tgt_len] -> logits."""
    encoded = self.encode(inputs, train=train)
    return self.decode(encoded, inputs, shift_right(targets), train=train)


def init_params(config: ModelConfig, rng, batch_size: int = 1, src_len: int = 8,
                tgt_len: int = 8):
  """Fresh parameters {'encoder': ..., 'decoder': ...}; works under jax.eval_shape too."""
  model = Transformer(config)
  src = jnp.ones((batch_size, src_len), jnp.int32)
  tgt = jnp.ones((batch_size, tgt_len), jnp.int32)
  return jax.jit(lambda r: model.init(r, src, tgt)['params'])(rng)


__all__ = ['ModelConfig', 'Transformer', 'Encoder', 'Decoder', 'init_params', 'shift_right',
           'NEG_INF']
