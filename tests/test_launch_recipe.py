"""The device machine's recipe (experiments/device_recipe.py, launch/device_recipe.sh): the data
packed exactly, the bundle back within the limits (as it is, or as int8 blocks), the run sized
to its budget, and the whole run on CPU with the tiny model."""
import argparse
import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from experiments import device_recipe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_DATA = os.path.join(ROOT, 'tests', 'fixtures', 'tiny_data')


def test_data_pack_rebuilds_every_array(tmp_path):
  tarball = str(tmp_path / 'data.tar.xz')
  meta = device_recipe.pack_data(TINY_DATA, ['general', 'domain'], tarball)
  assert meta['src_from_guess']
  assert meta['splits'] == ['domain/train', 'domain/valid', 'general/train', 'general/valid']
  out = str(tmp_path / 'data')
  device_recipe.unpack_data(tarball, out)
  for key in meta['splits']:
    for part in ('src', 'tgt', 'offsets'):
      want = np.load(os.path.join(TINY_DATA, f'{key}.{part}.npy'))
      got = np.load(os.path.join(out, f'{key}.{part}.npy'))
      assert got.dtype == want.dtype and np.array_equal(got, want), (key, part)
  for name in ('pinyin.txt', 'hanzi.txt'):
    with open(os.path.join(out, 'vocab', name), 'rb') as a, \
         open(os.path.join(TINY_DATA, 'vocab', name), 'rb') as b:
      assert a.read() == b.read()


def test_src_guess_is_each_characters_commonest_reading():
  src = np.array([5, 5, 6, 7, 9], np.uint16)
  tgt = np.array([1, 1, 1, 2, 0], np.uint16)
  guess = device_recipe.src_guess_table([(src, tgt)])
  assert guess.tolist() == [9, 5, 7]


def test_q8_error_is_at_most_half_a_step_per_block():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 7)).astype(np.float32)  # Not a multiple of the block.
  x[:64] = 0.0  # An all-zero block stays zero.
  q, scale = device_recipe.quantize_q8(x)
  assert q.dtype == np.int8 and q.shape == (-(-x.size // device_recipe.Q8_BLOCK),
                                            device_recipe.Q8_BLOCK)
  back = device_recipe.dequantize_q8(q, scale, x.shape, np.float32)
  assert back.shape == x.shape
  assert np.all(back.reshape(-1)[:448] == 0.0)
  err = np.abs(back - x).reshape(-1)
  bound = np.repeat(scale, device_recipe.Q8_BLOCK)[:x.size] / 2
  assert np.all(err <= bound * (1 + 1e-5))


@pytest.mark.parametrize('transport', ['lossless', 'q8'])
def test_bundle_comes_back_in_parts_and_loads(untrained_bundle, tmp_path, transport):
  from pyhanzi_jax import bundle as bundle_lib  # pylint: disable=g-import-not-at-top
  src = untrained_bundle(f'recipe_{transport}', dtype='float16')
  out = str(tmp_path / 'out')
  report = device_recipe.pack_bundle(src, out, transport, part_bytes=20_000)
  assert report['transport'] == transport and len(report['parts']) > 1
  assert sorted(os.listdir(out)) == report['parts']
  dest = str(tmp_path / 'bundle')
  device_recipe.unpack_bundle(out, dest)
  a, b = bundle_lib.load_bundle(src), bundle_lib.load_bundle(dest)
  flatten = bundle_lib._flatten  # pylint: disable=protected-access
  flat_a, flat_b = flatten(a.params), flatten(b.params)
  assert flat_a.keys() == flat_b.keys()
  for k in flat_a:
    if transport == 'lossless':
      assert np.array_equal(flat_a[k], flat_b[k]), k
    else:
      np.testing.assert_allclose(flat_b[k], flat_a[k], atol=report['max_abs_error'] + 1e-3)
  if transport == 'q8':
    assert 'int8 blocks' in b.meta['provenance']['transport']
    assert report['tar_bytes'] < report['bundle_bytes']  # Its small arrays stay float16.


def test_auto_transport_keeps_small_bundles_exact(untrained_bundle, tmp_path):
  src = untrained_bundle('recipe_auto', dtype='float16')
  assert device_recipe.pack_bundle(src, str(tmp_path / 'a'))['transport'] == 'lossless'
  assert device_recipe.pack_bundle(src, str(tmp_path / 'b'),
                                   lossless_limit=1000)['transport'] == 'q8'


def _sizing_config():
  return ml_collections.ConfigDict({'train': {'eval_every': 2000, 'num_steps': 30000},
                                    'optim': {'warmup_steps': 2000}})


def test_pretraining_is_sized_to_fit_its_seconds():
  config = _sizing_config()
  bench = {'step_s': 0.04, 'length': 32, 'first_step_s': 20.0}
  stats = {'longest': [10, 20, 30, 40, 50, 60], 'host_batch_s': 0.01,
           'buckets': [16, 24, 32, 48, 64]}
  s = device_recipe.size_pretraining(345.0, bench, stats, config)
  assert s['mean_padded_len'] == pytest.approx((16 + 24 + 32 + 48 + 64 + 64) / 6)
  assert s['est_step_s'] == pytest.approx(0.04 * s['mean_padded_len'] / 32)
  evals = s['num_steps'] // 2000 + 1
  used = s['num_steps'] * s['est_step_s'] + s['est_overhead_s'] + evals * s['est_validation_s']
  assert 0 < s['num_steps'] < 30000 and used <= 345.0
  assert s['warmup_steps'] == min(2000, s['num_steps'] // 5)
  # A host slower than the step bounds it; the config's steps bound it from above.
  slow_host = dict(stats, host_batch_s=0.5)
  assert device_recipe.size_pretraining(345.0, bench, slow_host, config)['est_step_s'] == 0.5
  assert device_recipe.size_pretraining(1e6, bench, stats, config)['num_steps'] == 30000


def test_fewer_buckets_when_compiling_costs_more_than_padding():
  config = _sizing_config()
  stats = {'longest': [10, 20, 30, 40, 50, 60], 'host_batch_s': 0.0,
           'buckets': [16, 24, 32, 48, 64]}
  slow_compile = {'step_s': 0.04, 'length': 32, 'first_step_s': 40.0}
  plan = device_recipe.plan_pretraining(400.0, slow_compile, stats, config)
  assert plan['buckets'] != stats['buckets']
  assert plan['num_steps'] == max(plan['steps_by_buckets'].values())
  fast_compile = dict(slow_compile, first_step_s=0.1)
  assert device_recipe.plan_pretraining(400.0, fast_compile, stats,
                                        config)['buckets'] == stats['buckets']


def test_a_step_past_its_deadline_gets_sigterm_and_is_recorded(tmp_path):
  args = argparse.Namespace(out=str(tmp_path / 'out'), work=str(tmp_path / 'work'),
                            budget_s=60.0)
  recipe = device_recipe.Recipe(args)
  # Stands in for the trainer: saves and exits 75 on SIGTERM.
  trainer = ('import signal, sys, time\n'
             'signal.signal(signal.SIGTERM, lambda *a: (print("saved", flush=True), '
             'sys.exit(75)))\n'
             'print("training", flush=True)\n'
             'time.sleep(60)\n')
  assert recipe.call('pretrain', [sys.executable, '-c', trainer], seconds=2.0) == 75
  assert recipe.call('quick', [sys.executable, '-c', 'print("ok")'], seconds=30.0) == 0
  phases = recipe.report['phases']
  assert phases['pretrain']['cut_at_deadline'] and not phases['quick']['cut_at_deadline']
  recipe.log.close()
  log = (tmp_path / 'out' / 'recipe.log').read_text()
  assert 'training' in log and 'saved' in log and 'SIGTERM' in log
  with open(tmp_path / 'out' / 'recipe.json', encoding='utf-8') as f:
    assert json.load(f)['phases']['pretrain']['rc'] == 75


def test_out_dir_limits(tmp_path):
  for i in range(9):
    (tmp_path / f'f{i}').write_bytes(b'x')
  assert device_recipe.check_out_dir(str(tmp_path)) == ['9 files (> 8)']


@pytest.mark.slow
def test_tiny_run_end_to_end(tmp_path):
  """The device command on CPU (~85 s on a busy 2-core machine): packed data in; the bundle
  (forced through int8 parts), recipe.json and the logs out within the limits; the bundle
  converts."""
  tarball = str(tmp_path / 'data.tar.xz')
  device_recipe.pack_data(TINY_DATA, ['general', 'domain'], tarball)
  out, work = str(tmp_path / 'out'), str(tmp_path / 'work')
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}  # One device, as there.
  env.update(JAX_PLATFORMS='cpu', PYTHON=sys.executable)
  proc = subprocess.run(
      [os.path.join(ROOT, 'launch', 'device_recipe.sh'), 'run', '--tiny', '--data', tarball,
       '--out', out, '--work', work, '--transport', 'q8', '--part-mib', '0.2',
       '--pretrain-steps', '20', '--finetune-steps', '10'],
      env=env, capture_output=True, text=True, timeout=400)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  files = sorted(os.listdir(out))
  assert files[:2] == ['bundle.tar.000', 'bundle.tar.001']
  assert {'recipe.json', 'recipe.log', 'workdirs.tar.gz'} <= set(files)
  assert device_recipe.check_out_dir(out) == []
  with open(os.path.join(out, 'recipe.json'), encoding='utf-8') as f:
    report = json.load(f)
  assert report['ok'] and report['pretrain']['last_step'] == 20
  assert report['finetune']['last_step'] == 10
  assert report['benchmark']['tokens_per_sec'] > 0 and report['benchmark']['mfu'] > 0
  assert report['bundle']['source'].endswith('finetune')
  assert set(report['q8_check']) == {'domain', 'general'}
  assert not any(p['cut_at_deadline'] for p in report['phases'].values())

  bundle = str(tmp_path / 'gpu_raw')
  subprocess.run([sys.executable, '-m', 'experiments.device_recipe', 'unpack', out, bundle],
                 cwd=ROOT, env=env, check=True, capture_output=True)
  conv = subprocess.run([sys.executable, '-m', 'pyhanzi_jax.cli', '--model', bundle, 'ni', 'hao'],
                        cwd=ROOT, env=env, capture_output=True, text=True)
  assert conv.returncode == 0, conv.stderr[-2000:]
  assert len(conv.stdout.strip()) == 2  # Two characters for two syllables.
