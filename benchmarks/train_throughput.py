r"""Train-step throughput: the JAX step against an equivalent PyTorch model, in one run.

Same sizes (pre-LN encoder-decoder, learned positions, untied output layer), same batch of
random token ids, same optimizer (AdamW + global-norm clipping), fp32, on this machine's CPU.
Reports target tokens per second (median over timed steps) for each and the ratio.

  python benchmarks/train_throughput.py                 # default model size, batch 64 x 32
  python benchmarks/train_throughput.py --config=configs/default.py --batch=64 --length=32

Memory: XLA:CPU allocates the step's temporaries (~600 MB here) as one fresh mmap per call, so
every step page-faults and zero-fills all of it (~150k faults/step, printed below). glibc's
documented tunable `glibc.malloc.hugetlb=1` (transparent huge pages for malloc's mmaps) cuts that
500-fold; --malloc_hugepages re-runs this script with it set, for both frameworks alike:

  python benchmarks/train_throughput.py --malloc_hugepages  # GLIBC_TUNABLES=glibc.malloc.hugetlb=1

On a GPU, add --mfu to print model FLOPs utilisation against --peak_tflops (bf16 dense peak).
torch is only needed for the comparison: `pip install torch==2.13.0` (CPU build on this image).
"""
import argparse
import statistics
import sys
import time
import os
import resource

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np

from pyhanzi_jax import config_defaults
from pyhanzi_jax import malloc
from pyhanzi_jax import model as model_lib
from pyhanzi_jax import optim
from pyhanzi_jax import train


def model_flops_per_token(mc, src_len, tgt_len) -> float:
  """Training FLOPs per target token (6 x matmul params, plus attention), as in PaLM's MFU."""
  d, f, v = mc.emb_dim, mc.mlp_dim, mc.tgt_vocab_size
  enc = mc.enc_layers * (4 * d * d + 2 * d * f)
  dec = mc.dec_layers * (8 * d * d + 2 * d * f)
  per_src_token = enc
  per_tgt_token = dec + d * v
  attn = 2 * mc.enc_layers * src_len * d + 2 * mc.dec_layers * (tgt_len + src_len) * d
  return 6 * (per_src_token * src_len / tgt_len + per_tgt_token) + 6 * attn


def _faults() -> int:
  """Minor page faults of this process so far."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def jax_throughput(cfg, batch, length, steps, warmup, src_vocab, tgt_vocab):
  mc = model_lib.ModelConfig.from_config(cfg.model, src_vocab, tgt_vocab)
  model = model_lib.Transformer(mc)
  params = model_lib.init_params(mc, jax.random.key(0))
  tx, labels = optim.make_optimizer(cfg.optim, 10_000, params)
  state = train.TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params))
  step = jax.jit(train.make_train_step(model, tx, labels, cfg.optim.label_smoothing),
                 donate_argnums=(0,))
  rng = np.random.default_rng(0)
  data = {'inputs': rng.integers(4, src_vocab, (batch, length)).astype(np.int32),
          'targets': rng.integers(4, tgt_vocab, (batch, length)).astype(np.int32)}
  data = jax.device_put(data)
  key = jax.random.key(0)
  times, faults = [], []
  for i in range(warmup + steps):
    f, t = _faults(), time.perf_counter()
    state, sums = step(state, data, key)
    jax.block_until_ready(sums['loss_sum'])
    if i >= warmup:
      times.append(time.perf_counter() - t)
      faults.append(_faults() - f)
  return batch * length / statistics.median(times), statistics.median(faults), mc


def torch_throughput(cfg, batch, length, steps, warmup, src_vocab, tgt_vocab):
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  m = cfg.model

  class Seq2Seq(nn.Module):

    def __init__(self):
      super().__init__()
      self.src_emb = nn.Embedding(src_vocab, m.emb_dim)
      self.tgt_emb = nn.Embedding(tgt_vocab, m.emb_dim)
      self.pos = nn.Parameter(torch.zeros(m.max_len, m.emb_dim))
      self.core = nn.Transformer(m.emb_dim, m.num_heads, m.enc_layers, m.dec_layers, m.mlp_dim,
                                 dropout=m.dropout_rate, batch_first=True, norm_first=True,
                                 activation='gelu')
      self.out = nn.Linear(m.emb_dim, tgt_vocab)

    def forward(self, src, tgt_in):
      t = tgt_in.shape[1]
      mask = torch.triu(torch.full((t, t), float('-inf')), diagonal=1)
      h = self.core(self.src_emb(src) + self.pos[:src.shape[1]],
                    self.tgt_emb(tgt_in) + self.pos[:t], tgt_mask=mask,
                    src_key_padding_mask=src == 0, memory_key_padding_mask=src == 0)
      return self.out(h)

  torch.manual_seed(0)
  net = Seq2Seq()
  opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(cfg.optim.b1, cfg.optim.b2),
                          weight_decay=cfg.optim.weight_decay)
  loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing, ignore_index=0)
  g = torch.Generator().manual_seed(0)
  src = torch.randint(4, src_vocab, (batch, length), generator=g)
  tgt = torch.randint(4, tgt_vocab, (batch, length), generator=g)
  tgt_in = torch.cat([torch.ones(batch, 1, dtype=torch.long), tgt[:, :-1]], 1)
  times, faults = [], []
  for i in range(warmup + steps):
    f, t = _faults(), time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(net(src, tgt_in).reshape(-1, tgt_vocab), tgt.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.optim.clip_norm)
    opt.step()
    if i >= warmup:
      times.append(time.perf_counter() - t)
      faults.append(_faults() - f)
  return (batch * length / statistics.median(times), statistics.median(faults),
          torch.get_num_threads())


def main():
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--batch', type=int, default=64)
  ap.add_argument('--length', type=int, default=32)
  ap.add_argument('--steps', type=int, default=20)
  ap.add_argument('--warmup', type=int, default=3)
  ap.add_argument('--src_vocab', type=int, default=450)
  ap.add_argument('--tgt_vocab', type=int, default=7000)
  ap.add_argument('--dtype', default='float32')
  ap.add_argument('--no_torch', action='store_true')
  ap.add_argument('--mfu', action='store_true')
  ap.add_argument('--peak_tflops', type=float, default=989.0, help='per-chip dense bf16 peak')
  ap.add_argument('--model', default='', help='comma list of k=v over config.model')
  ap.add_argument('--malloc_hugepages', action='store_true',
                  help='re-run with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (see the docstring)')
  args = ap.parse_args()
  if args.malloc_hugepages:
    malloc.reexec_with_huge_pages([sys.executable] + sys.argv)
  cfg = config_defaults.get_config()
  cfg.model.dropout_rate = 0.0  # Dropout RNG costs differ between frameworks; measure the math.
  cfg.model.dtype = args.dtype
  for kv in filter(None, args.model.split(',')):
    k, v = kv.split('=')
    cfg.model[k] = type(cfg.model[k])(v)
  print(f'devices: {jax.devices()}  model: {dict(cfg.model)}  batch {args.batch} x {args.length}'
        f"  GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')!r}")
  jax_tps, jax_faults, mc = jax_throughput(cfg, args.batch, args.length, args.steps,
                                           args.warmup, args.src_vocab, args.tgt_vocab)
  print(f'jax    {jax_tps:12,.0f} target tokens/s (median of {args.steps} steps, '
        f'{jax_faults:,.0f} page faults/step)')
  if args.mfu:
    flops = model_flops_per_token(mc, args.length, args.length) * jax_tps
    print(f'jax    {flops / 1e12:10.1f} TFLOP/s model FLOPs = '
          f'{100 * flops / (args.peak_tflops * 1e12 * jax.device_count()):.1f}% MFU')
  if not args.no_torch:
    torch_tps, torch_faults, threads = torch_throughput(
        cfg, args.batch, args.length, args.steps, args.warmup, args.src_vocab, args.tgt_vocab)
    print(f'torch  {torch_tps:12,.0f} target tokens/s (median of {args.steps} steps, '
          f'{threads} threads, {torch_faults:,.0f} page faults/step)')
    print(f'ratio jax/torch: {jax_tps / torch_tps:.2f}x')


if __name__ == '__main__':
  main()
