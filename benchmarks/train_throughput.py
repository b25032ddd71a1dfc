r"""Train-step throughput: the JAX step against an equivalent PyTorch model, in one run.

Same sizes (pre-LN encoder-decoder, learned positions, untied output layer), same batch of
random token ids, same optimizer (AdamW + global-norm clipping), fp32, on this machine's CPU.
Reports target tokens per second for each and their ratio: the two alternate for --rounds
rounds of --steps timed steps (median per round), and the ratio is the median of the rounds'.

  python -m benchmarks.train_throughput                 # default model size, batch 64 x 32
  python -m benchmarks.train_throughput --rounds 5 --steps 10   # more alternations
  python -m benchmarks.train_throughput --batch=128 --length=32 --model=emb_dim=512,mlp_dim=2048

Memory: XLA:CPU allocates the step's temporaries (~600 MB here) as one fresh mmap per call, so
every step page-faults and zero-fills all of it (~150k faults/step, printed below). glibc's
documented tunable `glibc.malloc.hugetlb=1` (transparent huge pages for malloc's mmaps) cuts that
500-fold; --malloc_hugepages re-runs this script with it set, for both frameworks alike:

  python -m benchmarks.train_throughput --malloc_hugepages  # GLIBC_TUNABLES=glibc.malloc.hugetlb=1

On a GPU, add --mfu to print model FLOPs utilisation against --peak_tflops (bf16 dense peak);
--json PATH also writes the numbers (and the first step's seconds, compilation included), as
experiments/device_recipe.py reads them to size a time-bounded run.
torch is only needed for the comparison: `pip install torch==2.13.0` (CPU build on this image).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
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


def _timed(step_once, steps, warmup):
  """Median seconds and page faults per call of step_once() over `steps` calls after `warmup`."""
  times, faults = [], []
  for i in range(warmup + steps):
    f, t = _faults(), time.perf_counter()
    step_once()
    if i >= warmup:
      times.append(time.perf_counter() - t)
      faults.append(_faults() - f)
  return statistics.median(times), statistics.median(faults)


def jax_stepper(cfg, batch, length, src_vocab, tgt_vocab):
  """(step_once, model config): one JAX train step per call, waited for."""
  mc = model_lib.ModelConfig.from_config(cfg.model, src_vocab, tgt_vocab)
  model = model_lib.Transformer(mc)
  params = model_lib.init_params(mc, jax.random.key(0))
  tx, labels = optim.make_optimizer(cfg.optim, 10_000, params)
  box = {'state': train.TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params))}
  step = jax.jit(train.make_train_step(model, tx, labels, cfg.optim.label_smoothing),
                 donate_argnums=(0,))
  rng = np.random.default_rng(0)
  data = {'inputs': rng.integers(4, src_vocab, (batch, length)).astype(np.int32),
          'targets': rng.integers(4, tgt_vocab, (batch, length)).astype(np.int32)}
  data = jax.device_put(data)
  key = jax.random.key(0)

  def step_once():
    box['state'], sums = step(box['state'], data, key)
    jax.block_until_ready(sums['loss_sum'])
  return step_once, mc


def torch_stepper(cfg, batch, length, src_vocab, tgt_vocab):
  """(step_once, threads): one PyTorch train step per call."""
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

  def step_once():
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(net(src, tgt_in).reshape(-1, tgt_vocab), tgt.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.optim.clip_norm)
    opt.step()
  return step_once, torch.get_num_threads()


def gemm_rates(shapes, with_torch: bool, repeats: int = 20):
  """{(m, k, n): (jax GFLOP/s, torch GFLOP/s or None)}: one [m, k] x [k, n] float32 product each.

  The step is mostly these products, so their speed in each framework bounds the step's ratio.
  """
  median_seconds = lambda fn: common.median_seconds(fn, repeats, warmup=2)

  rates = {}
  matmul = jax.jit(jnp.matmul)
  for m, k, n in shapes:
    a, b = jnp.ones((m, k), jnp.float32), jnp.ones((k, n), jnp.float32)
    flops = 2 * m * k * n
    jax_rate = flops / median_seconds(lambda: matmul(a, b).block_until_ready()) / 1e9
    torch_rate = None
    if with_torch:
      import torch  # pylint: disable=g-import-not-at-top
      ta, tb = torch.ones(m, k), torch.ones(k, n)
      torch_rate = flops / median_seconds(lambda: ta @ tb) / 1e9
    rates[(m, k, n)] = (jax_rate, torch_rate)
  return rates


def main():
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--batch', type=int, default=64)
  ap.add_argument('--length', type=int, default=32)
  ap.add_argument('--steps', type=int, default=20)
  ap.add_argument('--warmup', type=int, default=3)
  ap.add_argument('--rounds', type=int, default=3, help='alternations of jax and torch')
  ap.add_argument('--gemm', action='store_true',
                  help="also time the step's matrix products alone in each framework")
  ap.add_argument('--src_vocab', type=int, default=450)
  ap.add_argument('--tgt_vocab', type=int, default=7000)
  ap.add_argument('--dtype', default='float32')
  ap.add_argument('--no_torch', action='store_true')
  ap.add_argument('--mfu', action='store_true')
  ap.add_argument('--peak_tflops', type=float, default=989.0, help='per-chip dense bf16 peak')
  ap.add_argument('--model', default='', help='comma list of k=v over config.model')
  ap.add_argument('--json', default='', help='also write the results to this file')
  ap.add_argument('--malloc_hugepages', action='store_true',
                  help='re-run with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (see the docstring)')
  args = ap.parse_args()
  if args.malloc_hugepages:
    malloc.reexec_with_huge_pages([sys.executable, '-m', 'benchmarks.train_throughput',
                                   *sys.argv[1:]])
  cfg = config_defaults.get_config()
  cfg.model.dropout_rate = 0.0  # Dropout RNG costs differ between frameworks; measure the math.
  cfg.model.dtype = args.dtype
  for kv in filter(None, args.model.split(',')):
    k, v = kv.split('=')
    cfg.model[k] = type(cfg.model[k])(v)
  print(f'devices: {jax.devices()}  model: {dict(cfg.model)}  batch {args.batch} x {args.length}'
        f"  GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')!r}")
  tokens = args.batch * args.length
  jax_step, mc = jax_stepper(cfg, args.batch, args.length, args.src_vocab, args.tgt_vocab)
  t = time.perf_counter()
  jax_step()  # Compiles: timed apart, so that a run sized by this one can budget for it.
  first_step_s = time.perf_counter() - t
  torch_step = None
  if not args.no_torch:
    torch_step, threads = torch_stepper(cfg, args.batch, args.length, args.src_vocab,
                                        args.tgt_vocab)
  # Rounds alternate the two frameworks, so that a change in the machine's speed (other jobs,
  # another tenant of the host) falls on both; each round's ratio compares neighbours in time.
  jax_tps, torch_tps, ratios = [], [], []
  for r in range(args.rounds):
    warmup = args.warmup if r == 0 else 1
    sec, faults = _timed(jax_step, args.steps, warmup)
    jax_tps.append(tokens / sec)
    line = f'round {r + 1}/{args.rounds}: jax {jax_tps[-1]:8,.0f} tok/s ({faults:,.0f} faults/step)'
    if torch_step is not None:
      sec, faults = _timed(torch_step, args.steps, warmup)
      torch_tps.append(tokens / sec)
      ratios.append(jax_tps[-1] / torch_tps[-1])
      line += (f'   torch {torch_tps[-1]:8,.0f} tok/s ({faults:,.0f} faults/step, {threads} '
               f'threads)   jax/torch {ratios[-1]:.2f}x')
    print(line, flush=True)
  med = statistics.median
  print(f'jax    {med(jax_tps):12,.0f} target tokens/s (median of {args.rounds} rounds of '
        f'{args.steps} steps)')
  flops_per_token = model_flops_per_token(mc, args.length, args.length)
  mfu = flops_per_token * med(jax_tps) / (args.peak_tflops * 1e12 * jax.device_count())
  if args.mfu:
    print(f'jax    {flops_per_token * med(jax_tps) / 1e12:10.1f} TFLOP/s model FLOPs = '
          f'{100 * mfu:.1f}% MFU')
  if torch_step is not None:
    print(f'torch  {med(torch_tps):12,.0f} target tokens/s (median of {args.rounds} rounds)')
    print(f'ratio jax/torch: {med(ratios):.2f}x (median of the rounds; range '
          f'{min(ratios):.2f}-{max(ratios):.2f}x)')
  if args.json:
    with open(args.json, 'w', encoding='utf-8') as f:
      json.dump({'devices': [str(d) for d in jax.devices()], 'jax': jax.__version__,
                 'batch': args.batch, 'length': args.length, 'dtype': args.dtype,
                 'model': dict(cfg.model), 'first_step_s': first_step_s,
                 'step_s': tokens / med(jax_tps), 'tokens_per_sec': med(jax_tps),
                 'flops_per_token': flops_per_token, 'peak_tflops': args.peak_tflops,
                 'mfu': mfu, 'rounds': args.rounds, 'steps': args.steps}, f, indent=2)
  if args.gemm:
    d, f, v = mc.emb_dim, mc.mlp_dim, mc.tgt_vocab_size
    shapes = [(tokens, d, d), (tokens, d, f), (tokens, f, d), (tokens, d, v), (d, tokens, v)]
    print('float32 products alone (GFLOP/s, median of 20):')
    for (m, k, n), (jr, tr) in gemm_rates(shapes, torch_step is not None).items():
      line = f'  [{m}, {k}] x [{k}, {n}]: jax {jr:6.0f}'
      if tr is not None:
        line += f'   torch {tr:6.0f}   jax/torch {jr / tr:.2f}x'
      print(line)


if __name__ == '__main__':
  main()
