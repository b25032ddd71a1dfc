"""`pyhanzi adapt` (pyhanzi_jax/adapt.py, adapt_text.py, adapt_words.py, adapt_sample.py).

The end-to-end run adapts the tiny untrained bundle (conftest's `untrained_bundle`, with a small
word list) to tests/fixtures/adapt/notes.txt for 3 steps, interrupted by a Ctrl-C after its
first step and resumed by the same call; the bad inputs fail before any training.
"""
import errno
import io
import json
import os
import shutil
import signal
import time

from absl import logging as absl_logging
import jax
import numpy as np
import pytest

from pyhanzi_jax import adapt
from pyhanzi_jax import adapt_sample
from pyhanzi_jax import adapt_text
from pyhanzi_jax import adapt_words
from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import convert
from pyhanzi_jax import lexicon as lexicon_lib
from pyhanzi_jax import model as model_lib
from pyhanzi_jax import optim
from pyhanzi_jax.data import prepare
from pyhanzi_jax.data import vocab as vocab_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTES = os.path.join(ROOT, 'tests', 'fixtures', 'adapt', 'notes.txt')
TINY_DATA = os.path.join(ROOT, 'tests', 'fixtures', 'tiny_data')
BASE_WORDS = {'房间': 50, '早餐': 40, '服务': 60, '酒店': 30, '我们': 100, '一般': 20}
# Small and quick: 16 sentences a batch (2 on each of the 8 test devices), 4 held-out lines.
RUN = dict(steps=3, general_data=TINY_DATA, batch_size=16, eval_sentences=4)


@pytest.fixture(scope='module')
def base(untrained_bundle):
  return untrained_bundle('adapt_base', extensions=[lexicon_lib.BundleLexicon(BASE_WORDS)],
                          settings=bundle_lib.ConversionSettings.with_lexicon())


class _CtrlCAt(adapt.Progress):
  """Progress that presses Ctrl-C when the trainer reports step `at`."""

  def __init__(self, at: int):
    super().__init__(enabled=False)
    self.at = at

  def step(self, step, total, eta_s):
    if step == self.at:
      os.kill(os.getpid(), signal.SIGINT)


def _train_log(out):
  with open(os.path.join(out + '.work', 'train.log'), encoding='utf-8') as f:
    return f.read()


@pytest.fixture(scope='module')
def adapted(base, tmp_path_factory):
  """The run interrupted after step 1, the same call resuming it, and once more when done."""
  out = str(tmp_path_factory.mktemp('adapt') / 'mine')
  absl_level = absl_logging.get_absl_logger().level
  first = adapt.adapt([NOTES], out, base, progress=_CtrlCAt(1), **RUN)
  first_bundle = bundle_lib.load_bundle(out)
  second = adapt.adapt([NOTES], out, base, progress=False, **RUN)
  log = _train_log(out)
  third = adapt.adapt([NOTES], out, base, progress=False, **RUN)
  return dict(out=out, first=first[1], first_bundle=first_bundle, second=second[1],
              log=log, third=third[1], log_after_third=_train_log(out),
              absl_levels=(absl_level, absl_logging.get_absl_logger().level))


# --- The run ---------------------------------------------------------------------------------

def test_ctrl_c_keeps_a_bundle_and_the_same_command_resumes(adapted):
  first, second = adapted['first'], adapted['second']
  assert first.status == 'interrupted' and 1 <= first.steps < 3
  assert first.user_adapted is None  # No measuring after a Ctrl-C.
  assert adapted['first_bundle'].meta['provenance']['adapt']['steps'] == first.steps
  assert second.status == 'finished' and second.steps == second.num_steps == 3
  with open(os.path.join(adapted['out'] + '.work', 'train', 'metrics.jsonl')) as f:
    train_steps = [r['step'] for r in map(json.loads, f) if 'train/loss' in r]
  assert train_steps == [1, 2, 3]  # Each step trained once: the rerun resumed.


def test_the_loggers_level_is_left_as_it_was(adapted):
  # Restoring the effective level pinned an unset absl logger at WARNING for the rest of the
  # process, which hid the trainer's INFO lines from whoever ran next.
  before, after = adapted['absl_levels']
  assert after == before


def test_a_finished_run_is_not_redone(adapted):
  assert adapted['third'] == adapted['second']
  assert adapted['log_after_third'] == adapted['log']


def _flat(params):
  return {optim.param_path(path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_leaves_with_path(params)}


def test_decoder_adapted_encoder_bit_identical(base, adapted):
  before = _flat(bundle_lib.load_bundle(base).params)
  after = _flat(bundle_lib.load_bundle(adapted['out']).params)
  assert before.keys() == after.keys()
  for name in before:
    if name.startswith('encoder/'):
      np.testing.assert_array_equal(after[name], before[name], err_msg=name)
  still = [n for n in before if n.startswith('decoder/') and np.array_equal(after[n], before[n])]
  assert not still, f'decoder leaves that did not move: {still}'


def test_the_adapted_bundle_loads_and_converts(adapted):
  conv = convert.Converter(adapted['out'])
  assert len(conv.convert('fang jian hen hao')) == 4
  assert conv.settings == bundle_lib.ConversionSettings.with_lexicon()  # The base's.


def test_the_word_list_learns_the_text(adapted):
  lm = bundle_lib.load_bundle(adapted['out']).lexicon
  assert set(BASE_WORDS) <= set(lm.counts)
  assert lm.readings['性价比'] == ('xing', 'jia', 'bi')  # A term of the text, not of the list.
  assert adapted['second'].new_word_count > 10
  assert ('性价比', 14) in adapted['second'].new_words
  assert lm.bigrams is not None and any(k.startswith('房间\t') for k in lm.bigrams.pairs)


def test_report(adapted):
  report = adapted['second']
  assert report.sentences == 395 and report.split == {'test': 32, 'valid': 16, 'train': 347}
  assert 'with Latin letters' in report.left_out and report.outside_vocab[0] == ('李', 3)
  assert report.general == f'{TINY_DATA}/general/train' and report.general_share == 0.3
  for scores in (report.user_base, report.user_adapted, report.general_base,
                 report.general_adapted):
    assert scores.sentences == 4 and 0 <= scores.char_acc <= 1
  text = report.to_text()
  assert 'your text (4 lines)' in text and 'general text (4 lines)' in text and ' -> ' in text
  assert adapt.AdaptReport.from_json(json.loads(json.dumps(report.to_json()))) == report


def test_other_options_do_not_resume_the_run(base, adapted):
  with pytest.raises(adapt.AdaptError, match=r'other steps'):
    adapt.adapt([NOTES], adapted['out'], base, progress=False, **dict(RUN, steps=4))


# --- Bad input -------------------------------------------------------------------------------

def _adapt(tmp_path, texts, base, **kwargs):
  return adapt.adapt(texts, str(tmp_path / 'out'), base, progress=False, **dict(RUN, **kwargs))


def test_unreadable_files(tmp_path, base):
  with pytest.raises(adapt.AdaptError, match='no such file'):
    _adapt(tmp_path, [str(tmp_path / 'missing.txt')], base)
  with pytest.raises(adapt.AdaptError, match='is a directory'):
    _adapt(tmp_path, [str(tmp_path)], base)
  bad = tmp_path / 'gbk.txt'
  bad.write_bytes('第一行\n第二行\n'.encode() + '第三行'.encode('gb18030') + b'\n')
  with pytest.raises(adapt.AdaptError, match=r'gbk.txt:3: not UTF-8 .*column 1'):
    _adapt(tmp_path, [NOTES, str(bad)], base)


def test_no_chinese_and_too_little_text(tmp_path, base):
  english = tmp_path / 'english.txt'
  english.write_text('Only English here.\n1, 2, 3.\n')
  with pytest.raises(adapt.AdaptError, match='no Chinese text in'):
    _adapt(tmp_path, [str(english)], base)
  short = tmp_path / 'short.txt'
  short.write_text('房间很好。\n早餐一般。\nWiFi很快。\n')
  with pytest.raises(adapt.AdaptError, match=r'too little text.* 2 usable sentences .*at least '
                     r'200 sentences .*1 with Latin letters'):
    _adapt(tmp_path, [str(short)], base)


def test_a_base_of_another_vocabulary(tmp_path, base):
  pv = vocab_lib.Vocab(prepare.pinyin_vocab().tokens[:-1])  # One symbol short.
  hv = vocab_lib.load_vocabs(TINY_DATA)[1]
  config = model_lib.ModelConfig(len(pv), len(hv), emb_dim=8, num_heads=1, enc_layers=1,
                                 dec_layers=1, mlp_dim=8)
  other = bundle_lib.export_bundle(str(tmp_path / 'other'), model_lib.init_params(
      config, jax.random.key(0)), config, pv, hv, max_len=64, dtype='float32')
  with pytest.raises(adapt.AdaptError, match='another pinyin vocabulary'):
    _adapt(tmp_path, [NOTES], other)
  data = tmp_path / 'data'
  (data / 'vocab').mkdir(parents=True)
  prepare.pinyin_vocab().save(data / 'vocab' / 'pinyin.txt')
  vocab_lib.Vocab(hv.tokens[:-1]).save(data / 'vocab' / 'hanzi.txt')
  with pytest.raises(adapt.AdaptError, match='prepared with other vocabularies'):
    _adapt(tmp_path, [NOTES], base, general_data=str(data))


def test_a_full_disk(tmp_path, base, monkeypatch):
  class Usage:
    free = 10 * 2**20
  monkeypatch.setattr(adapt.shutil, 'disk_usage', lambda path: Usage)
  with pytest.raises(adapt.AdaptError, match=r'not enough disk space .* 10 MB free'):
    _adapt(tmp_path, [NOTES], base)
  monkeypatch.undo()

  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device', str(tmp_path / 'x.npy'))
  monkeypatch.setattr(adapt.prepare, 'write_split', full)
  with pytest.raises(adapt.AdaptError, match='the disk is full .*x.npy.* run the same command'):
    _adapt(tmp_path, [NOTES], base)


def test_out_must_be_new_or_ours(tmp_path, base):
  (tmp_path / 'out').mkdir()
  (tmp_path / 'out' / 'thesis.tex').write_text('...')
  with pytest.raises(adapt.AdaptError, match='already exists and was not written by'):
    _adapt(tmp_path, [NOTES], base)
  with pytest.raises(adapt.AdaptError, match='is the base model itself'):
    adapt.adapt([NOTES], base, base, progress=False, **RUN)


def test_bad_options(tmp_path, base):
  with pytest.raises(adapt.AdaptError, match='--general-share'):
    _adapt(tmp_path, [NOTES], base, general_share=1.0)
  with pytest.raises(adapt.AdaptError, match='--batch-size 12 must be a multiple of the 8'):
    _adapt(tmp_path, [NOTES], base, batch_size=12)


def test_main_reports_bad_input_in_one_line(tmp_path, base, capsys):
  code = adapt.main([str(tmp_path / 'missing.txt'), '--out', str(tmp_path / 'o'), '--model',
                     base, '--quiet'])
  assert code == 2
  assert capsys.readouterr().err.strip() == f'pyhanzi adapt: {tmp_path}/missing.txt: no such file'


# --- The parts -------------------------------------------------------------------------------

def _release_hanzi():
  return vocab_lib.Vocab.load(os.path.join(bundle_lib.RELEASE_DIR, bundle_lib.HANZI_VOCAB))


def test_text_is_prepared_as_the_corpora_are():
  hv = _release_hanzi()
  lines = ['价格适中,总体感觉还可以.', 'I like it.', '我用Python写代码。',
           '１２月３１日，我们到了！你呢?', '', '价格适中，总体感觉还可以。']
  pairs, stats, outside = adapt_text.text_pairs(lines, hv, 64)
  assert [p.hanzi for p in pairs] == ['价格适中，总体感觉还可以。', '12月31日，我们到了！', '你呢？']
  assert pairs[1].keys.split(' ')[:4] == ['1', '2', 'yue', '3']
  assert stats['drop_latin'] == 2 and stats['duplicates'] == 1 and not outside


def test_split_by_content_hash():
  pairs = [prepare.Pair('a', f'第{i}句') for i in range(500)]
  splits = adapt_text.split_pairs(pairs)
  assert {k: len(v) for k, v in splits.items()} == {'test': 40, 'valid': 20, 'train': 440}
  assert adapt_text.split_pairs(pairs[::-1]) == splits
  held_out = {p.hanzi for p in splits['test'] + splits['valid']}
  assert not held_out & {p.hanzi for p in splits['train']}


def _pairs(sentences):
  return [prepare.Pair(' '.join(prepare.pinyin_keys(s)), s) for s in sentences]


TEXT = ['我们看见约押来了。', '他对约押说话。', '约押的兵很多。', '于是约押回去了。',
        '耶和华说话了。', '我们看见耶和华。', '他对耶和华说。', '这是耶和华的话。']


def test_find_terms_keeps_whole_terms_not_their_pieces():
  # 53 characters bound the cohesion count(ab) N / (count(a) count(b)) by N / count = 13.
  terms = adapt_words.find_terms(_pairs(TEXT), known={'我们': 1, '看见': 1, '说话': 1},
                                 min_cohesion=10)
  words = {t.word: t for t in terms}
  assert words['约押'].reading == ('yue', 'ya') and words['约押'].count == 4
  assert words['耶和华'].reading == ('ye', 'he', 'hua')
  assert '和华' not in words and '耶和' not in words  # Always inside 耶和华.
  assert '我们' not in words  # Known.


def _text_with_filler():
  """TEXT twice among 150 lines of the fixture's reviews, enough text for cohesion."""
  lines = adapt_text.read_text_file(NOTES)[:150]
  return _pairs(TEXT * 2) + adapt_text.text_pairs(lines, _release_hanzi(), 64)[0]


def test_adapted_word_list_mixes_the_text_in():
  base = lexicon_lib.WordLM({'我们': 1000, '看见': 500, '说话': 300, '他': 800, '的': 2000},
                            {'我们': ('wo', 'men'), '看见': ('kan', 'jian')},
                            lexicon_lib.Bigrams({'我们\t看见': 50}, {'我们': 100}))
  pairs = _text_with_filler()
  words = adapt_words.adapt_word_list(base, pairs, writable=set(''.join(p.hanzi for p in pairs)))
  assert words.readings['约押'] == ('yue', 'ya')
  # Its probability: TEXT_SHARE x its share of the text's words (8 of them).
  assert words.counts['约押'] == round(adapt_words.TEXT_SHARE * 4600 * 8 / words.text_words)
  assert words.readings['我们'] == ('wo', 'men')  # The base's readings are kept.
  assert words.counts['的'] < 2000  # The base's share is 1 - TEXT_SHARE.
  assert words.bigrams.pairs['我们\t看见'] > 50 and '约押\t说话' in words.bigrams.pairs
  assert '约押' in words.lm().segment('我们看见约押说话')


def test_word_list_files_read_back(tmp_path):
  base = lexicon_lib.WordLM({'我们': 1000, '看见': 500}, {'我们': ('wo', 'men')})
  pairs = _text_with_filler()
  words = adapt_words.adapt_word_list(base, pairs, writable=set(''.join(p.hanzi for p in pairs)))
  files, section = adapt_words.WordListFiles(words).write(str(tmp_path))
  assert section == {'words': len(words.counts), 'bigrams': len(words.bigrams.pairs)}
  lm = lexicon_lib.BundleLexicon.read(str(tmp_path), section)
  assert lm.counts == words.counts and lm.readings['约押'] == ('yue', 'ya')
  assert lm.bigrams == words.bigrams and len(files) == 2


def test_interpolate_between_the_base_and_the_tuned_parameters():
  base = {'encoder': np.array([1.0, -2.0], np.float32), 'decoder': np.array([0.0, 4.0], np.float32)}
  tuned = {'encoder': base['encoder'].copy(), 'decoder': np.array([1.0, 2.0], np.float32)}
  half = bundle_lib.interpolate(base, tuned, 0.5)
  np.testing.assert_array_equal(half['decoder'], [0.5, 3.0])
  assert half['decoder'].dtype == np.float32
  np.testing.assert_array_equal(half['encoder'], base['encoder'])
  signed_zero = bundle_lib.interpolate({'w': np.array([-0.0], np.float32)},
                                  {'w': np.array([-0.0], np.float32)}, 0.25)['w']
  assert np.signbit(signed_zero[0])  # Bit-identical, not only equal.
  np.testing.assert_array_equal(bundle_lib.interpolate(base, tuned, 0.0)['decoder'], base['decoder'])
  assert bundle_lib.interpolate(base, tuned, 1.0) is tuned


def test_the_bundle_is_strength_of_the_way_to_the_checkpoint(base, adapted):
  before = _flat(bundle_lib.load_bundle(base).params)
  after = _flat(bundle_lib.load_bundle(adapted['out']).params)
  strength = bundle_lib.load_bundle(adapted['out']).meta['provenance']['adapt']['strength']
  assert strength == adapt.STRENGTH < 1
  with adapt._absl_quiet():
    tuned, _, _ = ckpt_lib.restore_params_from_workdir(
        os.path.join(adapted['out'] + '.work', 'train'),
        ckpt_lib.abstract_like(bundle_lib.load_bundle(base).params))
  tuned = _flat(tuned)
  name = next(n for n in before if n.startswith('decoder/') and
              not np.array_equal(tuned[n], before[n]))
  moved = tuned[name] - before[name]
  # Three small steps move a weight by ~1e-3 at most: the tolerance is far below the difference
  # one strength makes from another.
  np.testing.assert_allclose(after[name], before[name] + strength * moved, rtol=0,
                             atol=1e-7 + 1e-3 * np.abs(moved).max())
  assert np.abs(after[name] - tuned[name]).max() > 0.5 * np.abs(moved).max()


def test_another_strength_re_exports_without_training(base, adapted, tmp_path):
  out = str(tmp_path / 'mine')
  shutil.copytree(adapted['out'], out)
  shutil.copytree(adapted['out'] + '.work', out + '.work')
  _, report = adapt.adapt([NOTES], out, base, progress=False, **dict(RUN, strength=1.0))
  assert report.steps == adapted['second'].steps and report.status == 'finished'
  assert _train_log(out) == adapted['log_after_third']  # Nothing trained again.
  with adapt._absl_quiet():
    tuned, _, _ = ckpt_lib.restore_params_from_workdir(
        os.path.join(out + '.work', 'train'),
        ckpt_lib.abstract_like(bundle_lib.load_bundle(base).params))
  after = _flat(bundle_lib.load_bundle(out).params)
  for name, value in _flat(tuned).items():
    np.testing.assert_array_equal(after[name], value, err_msg=name)
  assert report.user_adapted is not None  # Measured again, at the new strength.


def test_a_run_the_time_limit_stopped_is_measured(base, tmp_path, monkeypatch):
  train = adapt._train
  monkeypatch.setattr(adapt, '_train', lambda *a, **k: (train(*a, **k), 'time limit')[1])
  _, report = adapt.adapt([NOTES], str(tmp_path / 'out'), base, progress=False, **RUN)
  assert report.status == 'time limit'
  assert report.user_adapted is not None and report.general_adapted is not None


def test_plan_steps():
  assert adapt.plan_steps(600, 20, 2.0, 0.0) == int((600 - 15 - 70 - 18) / 2.0)
  assert adapt.plan_steps(600, 20, 2.0, 0.5) < adapt.plan_steps(600, 20, 2.0, 0.0)
  assert adapt.plan_steps(60, 20, 2.0, 0.0) == 0


def test_passes_cap():
  assert adapt.passes_cap(8, 64, 640) == 80        # 8 passes over 640 sentences, 64 a batch.
  assert adapt.passes_cap(2.5, 64, 100) == adapt.MIN_STEPS
  assert adapt.passes_cap(0, 64, 640) == 0         # No cap.


def test_a_budget_stops_at_the_passes_cap(base, tmp_path, monkeypatch):
  # A step measured as ~free would fill a minute with thousands of steps: the cap keeps 20.
  monkeypatch.setattr(adapt, 'measure_step', lambda *a, **k: (0.01, 0.01))
  run = dict(RUN, steps=None, eval_sentences=0)
  out = str(tmp_path / 'out')
  _, report = adapt.adapt([NOTES], out, base, minutes=1, progress=False, max_passes=0.1, **run)
  with open(out + '.work/adapt.json', encoding='utf-8') as f:
    state = json.load(f)
  assert report.status == 'finished'
  assert report.num_steps == report.steps == state['num_steps'] == adapt.MIN_STEPS
  assert state['budget_steps'] > 1000


def test_trainer_lines_drive_the_progress(tmp_path):
  seen = []
  sink = adapt._TrainerOutput(str(tmp_path / 'train.log'), lambda s, n: seen.append((s, n)))
  sink.write('step 3/10  loss 1.2345  acc 0.5000  1,000 tok/s  ETA 0m07s\nsomething else\nst')
  sink.write('ep 4/10  loss 1.0\n')
  sink.close()
  assert seen == [(3, 10), (4, 10)]
  assert (tmp_path / 'train.log').read_text().count('\n') == 3
  stream = io.StringIO()
  show = adapt.Progress(stream)
  for step in range(1, 21):
    show.step(step, 20, 60.0)
  assert stream.getvalue().splitlines()[0] == 'adapt: step 1/20  ETA 1m00s'
  assert len(stream.getvalue().splitlines()) == 11  # A line a tenth off a terminal.


def test_the_time_limit_asks_the_trainer_to_stop():
  with adapt._Stopper() as stopper:
    stopper.deadline(0.01)
    for _ in range(200):
      if stopper.reason:
        break
      time.sleep(0.01)
  assert stopper.reason == 'time limit'


def test_the_general_sample_is_small_and_held_out():
  sizes = [os.path.getsize(os.path.join(adapt_sample.SAMPLE_DIR, f))
           for f in (adapt_sample.TRAIN, adapt_sample.TEST)]
  assert sum(sizes) < 2 * 2**20
  train, test = adapt_sample.read_sample('train'), adapt_sample.read_sample('test')
  assert len(train) == adapt_sample.TRAIN_SENTENCES and len(test) == adapt_sample.TEST_SENTENCES
  assert all(len(p.keys.split(' ')) == len(p.hanzi) for p in train + test)
  assert not {p.hanzi for p in train} & {p.hanzi for p in test}
