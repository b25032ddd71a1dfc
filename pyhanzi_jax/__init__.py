"""pyhanzi_jax: pinyin to Chinese characters with a JAX/Flax encoder-decoder Transformer."""

__version__ = '0.1.0'
