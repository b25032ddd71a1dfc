"""experiments/grow_encoder.py: the grown model computes what the old one did, and its new
blocks are trainable (their gradients are not zero)."""
import jax
import jax.numpy as jnp
import numpy as np

from experiments import grow_encoder
from pyhanzi_jax import model as model_lib


def _tiny():
  return model_lib.ModelConfig(src_vocab_size=30, tgt_vocab_size=40, emb_dim=32, num_heads=2,
                               enc_layers=2, dec_layers=1, mlp_dim=64, max_len=16)


def test_grown_model_gives_the_same_logits():
  config = _tiny()
  rng = np.random.default_rng(0)
  # Noise on every leaf, so that a norm or bias that grow() re-initialised (scale 1, bias 0)
  # would differ from the trained one.
  params = jax.tree.map(lambda x: np.asarray(x) + rng.normal(0, 0.1, np.shape(x)).astype(x.dtype),
                        model_lib.init_params(config, jax.random.key(1)))
  grown, grown_config = grow_encoder.grow(params, config, add=2)
  assert grown_config.enc_layers == 4 and set(grown['encoder']) >= {'layers_2', 'layers_3'}
  src = jnp.array([[3, 4, 5, 6, 0, 0], [7, 8, 9, 10, 11, 12]], jnp.int32)
  tgt = jnp.array([[5, 6, 7, 0], [8, 9, 10, 11]], jnp.int32)
  before = model_lib.Transformer(config).apply({'params': params}, src, tgt)
  after = model_lib.Transformer(grown_config).apply({'params': grown}, src, tgt)
  np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
  # The new blocks' read weights are random, not zero, so that training moves them.
  assert np.abs(grown['encoder']['layers_2']['mlp']['wi']['kernel']).sum() > 0

  def loss(p):
    return jnp.sum(model_lib.Transformer(grown_config).apply({'params': p}, src, tgt) ** 2)

  grads = jax.grad(loss)(grown)
  assert np.abs(np.asarray(grads['encoder']['layers_3']['mlp']['wo']['kernel'])).sum() > 0
