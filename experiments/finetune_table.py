r"""The fine-tuning comparison of docs/FINETUNE.md, run end to end.

Rows (all on the same domain and general test lines):
  pretrained        the pretraining run's best checkpoint, no fine-tuning
  frozen encoder    configs/finetune.py as is (encoder frozen by optax.partition/set_to_zero)
  all trainable     the same with --config.optim.frozen=''
  domain only       from scratch on the domain corpus, same steps

  python -m experiments.finetune_table --pretrained=runs/pretrain_cpu --steps=200 \
      --out=runs/finetune_table

Prints a markdown table; each run's workdir and metrics stay under --out.
"""
import argparse
import os
import statistics

import jax

from experiments import common
from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import config_defaults
from pyhanzi_jax import evaluate
from pyhanzi_jax import model as model_lib
from pyhanzi_jax import optim
from pyhanzi_jax import train
from pyhanzi_jax.data import pipeline
from pyhanzi_jax.data import vocab as vocab_lib

FINETUNE_CONFIG = os.path.join(common.ROOT, 'configs', 'finetune.py')


def finetune_config(pretrained, steps, **fields):
  c = config_defaults.load_sibling('finetune', FINETUNE_CONFIG)
  c.optim.init_from = pretrained
  c.train.num_steps = steps
  c.train.eval_every = steps
  c.train.checkpoint_every = steps
  c.train.log_every = 10
  c.train.export_at_end = False
  for k, v in fields.items():
    sect, name = k.split('.')
    c[sect][name] = v
  return c


def test_accuracy(config, workdir, n):
  pv, hv = vocab_lib.load_vocabs(config.data.dir)
  mc = model_lib.ModelConfig.from_config(config.model, len(pv), len(hv))
  abstract = jax.eval_shape(lambda: model_lib.init_params(mc, jax.random.key(0)))
  params, step, _ = ckpt_lib.restore_params_from_workdir(workdir, abstract)
  model = model_lib.Transformer(mc)
  out = {}
  for corpus in ('domain', 'general'):
    split = pipeline.load_split(config.data.dir, corpus, 'test')
    out[corpus] = evaluate.decoded_accuracy(model, params, split, pv, hv, max_sentences=n,
                                            max_len=config.data.max_len)
  return out, step


def step_seconds(workdir, log_every):
  rows = [r for r in common.read_metrics(workdir) if 'train/loss' in r]
  gaps = [(b['time'] - a['time']) / log_every for a, b in zip(rows[1:], rows[2:])]
  return statistics.median(gaps) if gaps else float('nan')


def opt_state_bytes(config):
  pv, hv = vocab_lib.load_vocabs(config.data.dir)
  mc = model_lib.ModelConfig.from_config(config.model, len(pv), len(hv))
  params = jax.eval_shape(lambda: model_lib.init_params(mc, jax.random.key(0)))
  tx, _ = optim.make_optimizer(config.optim, config.train.num_steps, params)
  state = jax.eval_shape(tx.init, params)
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument('--pretrained', required=True)
  ap.add_argument('--steps', type=int, default=200)
  ap.add_argument('--test_sentences', type=int, default=500)
  ap.add_argument('--out', default='runs/finetune_table')
  ap.add_argument('--rows', default='pretrained,frozen,all,scratch')
  args = ap.parse_args()
  variants = {
      'frozen': ('fine-tuned, encoder frozen', {}),
      'all': ('fine-tuned, all trainable', {'optim.frozen': ''}),
      'scratch': ('domain only, from scratch', {'optim.init_from': '', 'optim.frozen': '',
                                                'optim.learning_rate': 1e-3}),
  }
  table = []
  base = finetune_config(args.pretrained, args.steps)
  for row in args.rows.split(','):
    if row == 'pretrained':
      acc, step = test_accuracy(base, args.pretrained, args.test_sentences)
      table.append(('pretrained, no fine-tuning', acc, float('nan'), 0, f'step {step}'))
      print(table[-1], flush=True)
      continue
    name, fields = variants[row]
    config = finetune_config(args.pretrained, args.steps, **fields)
    workdir = os.path.join(args.out, row)
    train.train_and_evaluate(config, workdir)
    acc, step = test_accuracy(config, workdir, args.test_sentences)
    table.append((name, acc, step_seconds(workdir, config.train.log_every),
                  opt_state_bytes(config), f'{step} steps'))
    print(table[-1], flush=True)
  print('\n| run | domain char | domain sent | general char | general sent | s/step | '
        'optimizer state | trained |')
  print('|---|---:|---:|---:|---:|---:|---:|---|')
  for name, acc, sec, nbytes, trained in table:
    domain, general = acc['domain'], acc['general']
    print(f'| {name} | {domain["greedy_char_acc"]:.4f} | {domain["greedy_sent_acc"]:.4f} | '
          f'{general["greedy_char_acc"]:.4f} | {general["greedy_sent_acc"]:.4f} | '
          f'{sec:.2f} | {nbytes / 2**20:.1f} MiB | {trained} |')


if __name__ == '__main__':
  main()
