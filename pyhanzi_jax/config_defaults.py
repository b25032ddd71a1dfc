"""The default configuration, every field a training run reads, one comment each.

It lives in the package so that every file in configs/ can start from it by a plain import,
wherever the command is run from; configs/default.py is the same config as a file to run.
A config file starts from these defaults, or from one other config file (load_sibling), never a
chain; what varies between runs of one kind is a get_config argument (parse_arg). `check`
refuses a training config with a field out of its range before anything runs.
"""
import importlib.util
import math
import os

import ml_collections

from pyhanzi_jax import exit_codes


def get_config():
  """The default ConfigDict; configs/*.py copy it and change what differs."""
  c = ml_collections.ConfigDict()
  c.mode = 'train'            # 'train' (pretrain or fine-tune) or 'evaluate'; see main.main.
  c.seed = 0                  # Seeds parameter init, dropout and data order.

  c.data = ml_collections.ConfigDict()
  c.data.dir = 'data'         # Prepared data (configs/prepare.py's workdir).
  c.data.train_corpus = 'general'   # Corpus to train on ('general', 'domain'), or a mixture
                                    # 'general,domain*2' (domain repeated twice).
  c.data.eval_corpora = 'general'   # Comma-separated corpora validated every eval_every steps.
  c.data.max_len = 64         # Tokens per sentence incl. EOS; longer sentences are dropped.
  c.data.abbrev_prob = 0.15   # Chance a training sentence's syllables are abbreviated ...
  c.data.abbrev_syllable_prob = 0.7  # ... and then each syllable's chance to become its initial.
  c.data.length_buckets = '16,24,32,48'  # Batches pad to the smallest fitting length (or max_len).

  c.model = ml_collections.ConfigDict()
  c.model.emb_dim = 256       # Width of every residual stream.
  c.model.num_heads = 4       # Attention heads (emb_dim must divide).
  c.model.enc_layers = 3      # Encoder blocks.
  c.model.dec_layers = 3      # Decoder blocks.
  c.model.mlp_dim = 1024      # FFN hidden width.
  c.model.dropout_rate = 0.1  # Residual/FFN dropout.
  c.model.attention_dropout_rate = 0.0  # Dropout on attention weights.
  c.model.max_len = 128       # Size of the learned position tables (>= data.max_len).
  c.model.dtype = 'float32'   # Computation dtype: 'float32' or 'bfloat16'.
  c.model.param_dtype = 'float32'  # Parameter dtype.

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-3  # Peak learning rate.
  c.optim.warmup_steps = 1000   # Linear warmup from 0.
  c.optim.schedule = 'cosine'   # Decay after warmup: 'cosine', 'rsqrt' or 'constant'.
  c.optim.weight_decay = 0.01   # AdamW decoupled weight decay (trainable leaves only).
  c.optim.b1 = 0.9
  c.optim.b2 = 0.98
  c.optim.clip_norm = 1.0       # Global-norm clipping over trainable gradients; 0 disables.
  c.optim.label_smoothing = 0.1  # Smoothing of the target distribution.
  c.optim.grad_accum_steps = 1  # Micro-batches of train.batch_size summed into one update.
  # Fine-tuning: where to take parameters from, and which are frozen.
  c.optim.init_from = ''        # A workdir or exported bundle; '' trains from scratch.
  c.optim.frozen = ''           # Comma-separated regexes over 'a/b/c' parameter paths.

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 128      # Global batch (sentences), split over all devices.
  c.train.num_steps = 20000     # Optimizer updates in total.
  c.train.parallel = 'jit'      # 'jit' (Mesh + NamedSharding) or 'pmap'.
  c.train.log_every = 50        # Console/JSON/TensorBoard metrics every N steps.
  c.train.eval_every = 1000     # Validation every N steps.
  c.train.eval_batches = 20     # Teacher-forced validation batches per corpus (0: whole split).
  c.train.eval_decode_sentences = 500  # Sentences per corpus decoded (constrained greedy) for
                                # char/sentence accuracy at each validation; 0 skips decoding.
  c.train.checkpoint_every = 500  # Periodic async checkpoint every N steps.
  c.train.keep_checkpoints = 3  # Last-N kept, plus the best by best_metric.
  c.train.best_metric = 'general/greedy_char_acc'  # Validation metric that picks the best checkpoint.
  c.train.export_at_end = True  # Write the slim inference bundle to WORKDIR/export at the end.

  c.distributed = ml_collections.ConfigDict()
  c.distributed.initialize = 'auto'   # 'auto' (TPU/SLURM env), 'yes' or 'no'.
  c.distributed.coordinator_address = ''  # host:port for explicit multi-process runs.
  c.distributed.num_processes = 0    # 0: from the environment.
  c.distributed.process_id = -1      # -1: from the environment.
  return c


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """The text after ':' in `--config=FILE:ARG` (config_flags passes it to get_config), as
  fields typed like their `defaults`, in the way of big_vision's configs.

    parse_arg('stage=8', stage=2, runlocal=False)  ->  stage=8, runlocal=False
    parse_arg('8', stage=2)                         ->  stage=8 (a lone value sets the first field)
    parse_arg('runlocal', stage=2, runlocal=False)  ->  stage=2, runlocal=True

  A name not in `defaults` is an error, as a mistyped --config.x field is.
  """
  out = ml_collections.ConfigDict(defaults)
  if not arg:
    return out
  if '=' not in arg and ',' not in arg and not isinstance(defaults.get(arg), bool):
    arg = f'{next(iter(defaults))}={arg}'
  for item in filter(None, arg.split(',')):
    name, _, text = item.partition('=')
    if name not in defaults:
      raise ValueError(f'config argument {name!r} is not one of {", ".join(defaults)}')
    default = defaults[name]
    if isinstance(default, bool):
      if text.lower() not in ('', 'true', 'false'):
        raise ValueError(f'config argument {name} is true or false, got {text!r}')
      out[name] = text.lower() != 'false'
    else:
      out[name] = type(default)(text)
  return out


def load_sibling(name: str, here: str, arg: str | None = None):
  """`get_config()` (or `get_config(arg)`) of configs/<name>.py next to the file `here`, so one
  config can start from another (fine-tuning from its pretraining config) without configs/ being
  a package."""
  path = os.path.join(os.path.dirname(os.path.abspath(here)), f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'_pyhanzi_config_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config() if arg is None else module.get_config(arg)


# What a training run needs of each field, checked up front: a zero count otherwise surfaces as
# a ZeroDivisionError at the first log step, a zero batch as a numpy error about empty arrays.
_INT_RANGES = (  # (field, lowest allowed)
    ('train.batch_size', 1), ('train.num_steps', 1), ('train.log_every', 1),
    ('train.eval_every', 1), ('train.checkpoint_every', 1), ('train.keep_checkpoints', 1),
    ('train.eval_batches', 0), ('train.eval_decode_sentences', 0),
    ('optim.grad_accum_steps', 1), ('optim.warmup_steps', 0),
    ('data.max_len', 2), ('model.max_len', 2), ('model.emb_dim', 1), ('model.num_heads', 1),
    ('model.enc_layers', 1), ('model.dec_layers', 1), ('model.mlp_dim', 1),
)
_FLOAT_RANGES = (  # (field, low, high, low allowed, high allowed)
    ('optim.learning_rate', 0.0, math.inf, False, False),
    ('optim.label_smoothing', 0.0, 1.0, True, False),
    ('optim.clip_norm', 0.0, math.inf, True, False),
    ('optim.weight_decay', 0.0, math.inf, True, False),
    ('model.dropout_rate', 0.0, 1.0, True, False),
    ('model.attention_dropout_rate', 0.0, 1.0, True, False),
    ('data.abbrev_prob', 0.0, 1.0, True, True),
    ('data.abbrev_syllable_prob', 0.0, 1.0, True, True),
)
_CHOICES = (
    ('train.parallel', ('jit', 'pmap')),
    ('optim.schedule', ('cosine', 'rsqrt', 'constant')),
    ('distributed.initialize', ('auto', 'yes', 'no')),
)


def check(config: ml_collections.ConfigDict) -> None:
  """Raises exit_codes.ConfigError with one line per field out of range (for training runs).

  Fields the config does not have are skipped, so a partial config (a test's) checks too.
  """
  problems = []
  for field, low in _INT_RANGES:
    value = _get(config, field)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < low):
      problems.append(f'config.{field}={value!r}: must be an integer >= {low}')
  for field, low, high, low_ok, high_ok in _FLOAT_RANGES:
    value = _get(config, field)
    if value is None:
      continue
    ok = (isinstance(value, (int, float)) and math.isfinite(value)
          and (low <= value if low_ok else low < value)
          and (value <= high if high_ok else value < high))
    if not ok:
      if math.isfinite(high):
        allowed = f'in {"[" if low_ok else "("}{low:g}, {high:g}{"]" if high_ok else ")"}'
      else:
        allowed = f'{">=" if low_ok else ">"} {low:g}'
      problems.append(f'config.{field}={value!r}: must be a finite number {allowed}')
  for field, choices in _CHOICES:
    value = _get(config, field)
    if value is not None and value not in choices:
      problems.append(f'config.{field}={value!r}: must be one of {", ".join(map(repr, choices))}')
  data_len, model_len = _get(config, 'data.max_len'), _get(config, 'model.max_len')
  if isinstance(data_len, int) and isinstance(model_len, int) and data_len > model_len:
    problems.append(f'config.data.max_len={data_len}: must be <= config.model.max_len='
                    f'{model_len} (the size of the position tables)')
  emb, heads = _get(config, 'model.emb_dim'), _get(config, 'model.num_heads')
  if isinstance(emb, int) and isinstance(heads, int) and heads > 0 and emb % heads:
    problems.append(f'config.model.emb_dim={emb}: must be a multiple of config.model.num_heads='
                    f'{heads}')
  if problems:
    raise exit_codes.ConfigError('\n'.join(problems))


def _get(config, dotted: str):
  node = config
  for part in dotted.split('.'):
    if not hasattr(node, 'get') or part not in node:
      return None
    node = node[part]
  return node
