"""The configs in configs/ and the commands that the docs give for them.

Every config builds (with every argument the docs use), sets only fields the trainer reads,
starts from at most one other config and never from the mutable release directory; every
`python -m pyhanzi_jax.main` command in the docs and the configs' docstrings parses the way
pyhanzi_jax/main.py parses it (locked config, overrides applied). Nothing trains.
"""
import ast
import glob
import json
import os
import re
import shlex

from absl import flags
import ml_collections
from ml_collections import config_flags
import pytest

from pyhanzi_jax import config_defaults

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py')))
DOCS = [os.path.join(ROOT, 'README.md')] + sorted(glob.glob(os.path.join(ROOT, 'docs', '*.md')))
RELEASE_DIR = os.path.join(ROOT, 'pyhanzi_jax', 'release')
# The validation metrics train.train_and_evaluate computes per corpus (best_metric picks one).
TRAINER_METRICS = ('loss', 'nll', 'token_acc', 'tf_sent_acc', 'greedy_char_acc',
                   'greedy_sent_acc')


def _name(path):
  return os.path.splitext(os.path.basename(path))[0]


def _docstring(path):
  with open(path, encoding='utf-8') as f:
    return ast.get_docstring(ast.parse(f.read())) or ''


def _commands(text):
  """The arguments after `python -m pyhanzi_jax.main` of each such command in `text` that
  names a --config, up to the first shell redirection, `&` or pipe."""
  out = []
  for line in text.replace('\\\n', ' ').splitlines():
    _, found, rest = line.partition('-m pyhanzi_jax.main ')
    if not found:
      continue
    args = []
    for token in shlex.split(rest.split('`')[0], comments=True):
      if token.startswith(('>', '2>', '&', '|', ';')):
        break
      args.append(token)
    if any(a.startswith('--config=') for a in args):
      out.append(args)
  return out


def _spec(args):
  """FILE[:ARG] of a command's --config."""
  return next(a for a in args if a.startswith('--config=')).split('=', 1)[1]


def _documented():
  """(where, args) of every documented command: docs first, then config docstrings."""
  found = []
  for path in DOCS:
    with open(path, encoding='utf-8') as f:
      found += [(os.path.relpath(path, ROOT), a) for a in _commands(f.read())]
  for path in CONFIGS:
    found += [(os.path.relpath(path, ROOT), a) for a in _commands(_docstring(path))]
  return found


COMMANDS = _documented()


def _variants():
  """(config path, get_config argument or None): each file alone, each argument a documented
  command passes it, and each stage of configs/release_cpu.py."""
  out = {(p, None) for p in CONFIGS}
  for _, args in COMMANDS:
    path, _, arg = _spec(args).partition(':')
    if arg:
      out.add((os.path.join(ROOT, path), arg))
  release = os.path.join(ROOT, 'configs', 'release_cpu.py')
  stages = _module(release).STAGES
  out |= {(release, f'stage={s}') for s in stages}
  return sorted(out, key=lambda v: (v[0], v[1] or ''))


def _module(path):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(f'_test_config_{_name(path)}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _keys(cfg, prefix=''):
  out = set()
  for k, v in cfg.items():
    out |= _keys(v, f'{prefix}{k}.') if hasattr(v, 'items') else {prefix + k}
  return out


def _parse(args):
  """The config of `python -m pyhanzi_jax.main ARGS`, parsed as main.py parses it."""
  argv = ['main'] + args
  values = flags.FlagValues()
  config = config_flags.DEFINE_config_file('config', None, '', flag_values=values,
                                           lock_config=True, sys_argv=argv)
  flags.DEFINE_string('workdir', None, '', flag_values=values)
  values(argv)
  assert values.workdir, 'no --workdir'
  config.value.get('mode')  # A file that failed to load raises only when read, as main.py does.
  return config.value


def _build(path, arg):
  return config_defaults.load_sibling(_name(path), path, arg)


VARIANTS = _variants()


@pytest.mark.parametrize('path,arg', VARIANTS,
                         ids=[f'{_name(p)}:{a}' if a else _name(p) for p, a in VARIANTS])
def test_config_builds_and_sets_only_known_fields(path, arg):
  cfg = _build(path, arg)
  assert isinstance(cfg, ml_collections.ConfigDict)
  cfg.lock()  # As main.py's lock_config=True; the trainer writes it out as config.json.
  json.loads(cfg.to_json_best_effort())
  if cfg.get('mode') == 'prepare':
    assert 'prepare' in cfg and 'train' not in cfg
    return
  # A field the defaults lack would be silently ignored by the trainer (num_stepz for
  # num_steps); the command line refuses those, and so must a config file.
  defaults = config_defaults.get_config()
  unknown = _keys(cfg) - _keys(defaults)
  assert not unknown, f'sets fields the trainer does not read: {sorted(unknown)}'
  assert cfg.train.num_steps > 0
  corpus, _, metric = cfg.train.best_metric.partition('/')
  assert corpus in cfg.data.eval_corpora.split(','), cfg.train.best_metric
  assert metric in TRAINER_METRICS, cfg.train.best_metric
  if cfg.optim.init_from:
    assert os.path.realpath(cfg.optim.init_from) != os.path.realpath(RELEASE_DIR), (
        'starts from the release directory, which the next release replaces')


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_config_starts_from_at_most_one_other(path, monkeypatch):
  load = config_defaults.load_sibling
  depth, deepest = [0], [0]

  def counting(name, here, arg=None):
    depth[0] += 1
    deepest[0] = max(deepest[0], depth[0])
    try:
      return load(name, here, arg)
    finally:
      depth[0] -= 1

  monkeypatch.setattr(config_defaults, 'load_sibling', counting)
  counting(_name(path), path)
  assert deepest[0] <= 2, 'starts from a config that starts from another: follow one file'


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_docstring_has_the_command_that_runs_it(path):
  rel = os.path.relpath(path, ROOT)
  specs = [_spec(args).partition(':')[0] for args in _commands(_docstring(path))]
  assert rel in specs, f'{rel} has no `python -m pyhanzi_jax.main --config={rel} ...` command'


@pytest.mark.parametrize('where,args', COMMANDS,
                         ids=[f'{w}:{_spec(a)}' for w, a in COMMANDS])
def test_documented_command_parses(where, args, monkeypatch):
  monkeypatch.chdir(ROOT)  # The docs' paths are relative to the repository root.
  cfg = _parse(args)
  for a in args:  # Each override reached the config, with its type.
    if a.startswith('--config.'):
      field, _, text = a[len('--config.'):].partition('=')
      value = cfg
      for part in field.split('.'):
        value = value[part]
      assert str(value) == text or value == type(value)(text), (where, a, value)
  if cfg.get('optim') and cfg.optim.init_from:
    assert os.path.realpath(cfg.optim.init_from) != os.path.realpath(RELEASE_DIR), where


def test_commands_are_found_in_the_docs():
  where = {w for w, _ in COMMANDS}
  assert {'docs/TRAINING.md', 'configs/release_cpu.py', 'configs/tiny.py'} <= where
  specs = {_spec(args) for w, args in COMMANDS if w == 'docs/TRAINING.md'}
  assert {f'configs/release_cpu.py:stage={s}' for s in range(2, 9)} <= specs  # The history.


def test_the_parser_refuses_what_main_refuses(monkeypatch):
  monkeypatch.chdir(ROOT)
  for bad in (['--config=configs/tiny.py', '--workdir=w', '--config.train.num_stepz=1'],
              ['--config=configs/release_cpu.py:stage=1', '--workdir=w'],
              ['--config=configs/release_cpu.py:stag=8', '--workdir=w'],
              ['--config=configs/gone.py', '--workdir=w']):
    with pytest.raises(Exception):  # absl and ml_collections raise several kinds.
      _parse(bad)


def test_no_reference_to_a_missing_config():
  # Files that name configs for people to run; `git show COMMIT:configs/x.py` names an old one.
  paths = DOCS + CONFIGS + [os.path.join(ROOT, 'Makefile')]
  for pattern in ('launch/*', 'benchmarks/*.py', 'experiments/*.py', 'tests/*.py',
                  'pyhanzi_jax/**/*.py'):
    paths += glob.glob(os.path.join(ROOT, pattern), recursive=True)
  missing = set()
  for path in set(paths) - {os.path.abspath(__file__)}:  # This file names a missing one.
    with open(path, encoding='utf-8') as f:
      for name in re.findall(r'(?<![\w:/])configs/(\w+)\.py', f.read()):
        if not os.path.isfile(os.path.join(ROOT, 'configs', f'{name}.py')):
          missing.add(f'{os.path.relpath(path, ROOT)}: configs/{name}.py')
  assert not missing, sorted(missing)


def test_parse_arg():
  parse = config_defaults.parse_arg
  assert parse(None, stage=2, runlocal=False).to_dict() == {'stage': 2, 'runlocal': False}
  assert parse('stage=8,runlocal', stage=2, runlocal=False).to_dict() == {'stage': 8,
                                                                          'runlocal': True}
  assert parse('8', stage=2).stage == 8
  assert parse('runlocal=false', stage=2, runlocal=True).runlocal is False
  assert parse('lr=3e-4', lr=1e-3).lr == 3e-4
  with pytest.raises(ValueError, match='stag'):
    parse('stag=8', stage=2)
  with pytest.raises(ValueError):
    parse('stage=eight', stage=2)
