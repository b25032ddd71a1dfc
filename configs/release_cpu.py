r"""Continued training of the CPU model on general + domain text: the release recipe.

Starts from a trained model of configs/pretrain_cpu.py's size (`optim.init_from`: a workdir,
whose best checkpoint is taken, or an exported bundle) with fresh AdamW state, a fresh warmup
and cosine decay, and trains every parameter on a mixture in which the small HK legal/financial
corpus is repeated twice, so that one model serves both kinds of text. The argument picks a
stage of the release run (docs/TRAINING.md): its data seed, peak learning rate, warmup and
length; stage 1 is configs/pretrain_cpu.py. The command sets where it starts from. It resumes
by itself: run the same command again after any interruption. Then install the result as the
package's default model:

  python -m pyhanzi_jax.main --config=configs/release_cpu.py:stage=2 --workdir=runs/stage2 \
      --config.optim.init_from=runs/pretrain_cpu
  python -m pyhanzi_jax.release runs/stage2        # -> pyhanzi_jax/release

From the shipped model instead (a copy, so that a later release does not change the start):

  python -m pyhanzi_jax.release pyhanzi_jax/release --dest runs/base --lexicon none
  nohup nice -n 19 python -m pyhanzi_jax.main --config=configs/release_cpu.py:stage=8 \
      --workdir=runs/stage8 --config.optim.init_from=runs/base >> runs/stage8.log 2>&1 &

Stage 11 starts from the release grown by three encoder blocks:

  python -m experiments.grow_encoder --model runs/base --add 3 --out runs/grown6
  nohup nice -n 10 python -m pyhanzi_jax.main --config=configs/release_cpu.py:stage=11 \
      --workdir=runs/grow11 >> runs/grow11.log 2>&1 &

A new stage is a new row of STAGES; what a row leaves out is RECIPE's. Any field can also be
set on the command line, e.g. another mixture, with dropout:

  python -m pyhanzi_jax.main --config=configs/release_cpu.py:stage=8 --workdir=runs/wide \
      --config.optim.init_from=runs/base --config.data.train_corpus='general*2,domain' \
      --config.model.dropout_rate=0.1 --config.train.num_steps=8000
"""
from pyhanzi_jax import config_defaults

# What each stage of the release run set (docs/TRAINING.md has their commands and results).
STAGES = {
    2: dict(seed=0, learning_rate=7e-4, num_steps=3000, eval_every=500),
    3: dict(seed=0, learning_rate=5e-4, num_steps=5000),
    4: dict(seed=4, learning_rate=3e-4, num_steps=4000),
    5: dict(seed=5, learning_rate=3e-4, num_steps=5000),
    6: dict(seed=6, learning_rate=3e-4, num_steps=5000),
    7: dict(seed=7, learning_rate=3e-4, num_steps=5000),
    8: dict(seed=8, learning_rate=1.5e-4, warmup_steps=100, num_steps=4000),
    # The wider registers of data/DATA_CARD.md (technical prose, UI strings, game dialogue,
    # idiom glosses) beside general and domain, with dropout, for text from sources the model
    # has not read; started from the shipped stage 7 model. Technical prose is the smallest
    # corpus and the register furthest from the rest, hence its weight.
    # 2,000 steps: sized to end in under two hours on a 2-core CPU.
    9: dict(seed=9, learning_rate=3e-4, num_steps=2000, eval_every=500, dropout_rate=0.1,
            train_corpus='general,domain*2,tech*3,ui,dialogue*2,idiom',
            eval_corpora='general,domain,tech,dialogue'),
    # Stage 9 learned the new registers (dev_tech +3.3 character points through the converter)
    # but lost 1.2 on general text: general and domain weighted back up to about their stage 7
    # shares, at half the peak rate, so that the model keeps what it learned and recovers them.
    10: dict(seed=10, learning_rate=1.5e-4, warmup_steps=100, num_steps=3000, eval_every=500,
             dropout_rate=0.1, train_corpus='general*4,domain*3,tech*2,ui,dialogue,idiom',
             eval_corpora='general,domain,tech,dialogue'),
    # Room for the new registers instead of trading one for another: the release with three
    # identity blocks added to its encoder (experiments/grow_encoder.py writes runs/grown6),
    # only those trained, on stage 10's mixture. The encoder runs once a sentence, so its
    # layers cost conversion little; the frozen rest keeps what the in-source accuracy rests on.
    11: dict(seed=11, learning_rate=5e-4, warmup_steps=100, num_steps=2500, eval_every=500,
             dropout_rate=0.1, train_corpus='general*4,domain*3,tech*2,ui,dialogue,idiom',
             eval_corpora='general,domain,tech,dialogue', init_from='runs/grown6',
             enc_layers=6, frozen='(?!encoder/layers_[345]/).*'),
}
RECIPE = dict(train_corpus='general,domain*2', eval_corpora='general,domain', dropout_rate=0.0,
              warmup_steps=200, eval_every=1000, init_from=None, enc_layers=None, frozen='')


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, stage=2)
  if arg.stage not in STAGES:
    raise ValueError(f'stage must be one of {sorted(STAGES)}, got {arg.stage}')
  stage = dict(RECIPE, **STAGES[arg.stage])

  c = config_defaults.load_sibling('pretrain_cpu', __file__)  # Its model, batch and eval.
  c.seed = stage['seed']                # A new data order per stage; 2 and 3 shared seed 0.
  c.data.train_corpus = stage['train_corpus']
  c.data.eval_corpora = stage['eval_corpora']
  c.model.dropout_rate = stage['dropout_rate']
  # Set by the command; the default is the previous stage's workdir as named in the commands
  # above, so that a missing start fails loudly instead of training from scratch.
  c.optim.init_from = stage['init_from'] or (
      'runs/pretrain_cpu' if arg.stage == 2 else f'runs/stage{arg.stage - 1}')
  if stage['enc_layers']:
    c.model.enc_layers = stage['enc_layers']
  c.optim.frozen = stage['frozen']
  c.optim.learning_rate = stage['learning_rate']
  c.optim.warmup_steps = stage['warmup_steps']
  c.train.num_steps = stage['num_steps']
  c.train.eval_every = stage['eval_every']
  c.train.best_metric = 'general/greedy_char_acc'
  return c
