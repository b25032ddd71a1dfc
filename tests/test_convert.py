"""The Converter API and the `pyhanzi` command on a tiny trained model."""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import tiny
from pyhanzi_jax import cli
from pyhanzi_jax import convert
from pyhanzi_jax import evaluate
from pyhanzi_jax import pinyin
from pyhanzi_jax import train
from pyhanzi_jax.data.vocab import EOS, PAD

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  wd = str(tmp_path_factory.mktemp('tiny'))
  c = tiny.get_config()
  c.train.num_steps = 40
  c.train.eval_every = 40
  c.train.eval_decode_sentences = 16
  train.train_and_evaluate(c, wd)
  return wd


@pytest.fixture(scope='module')
def conv(workdir):
  return convert.Converter(os.path.join(workdir, 'export'))


def _readable(ch, key):
  return key in pinyin.char_readings(ch) if key in pinyin.SYLLABLES else True


def test_output_length_and_readings_match_the_input(conv):
  for text in ['ni hao shi jie', 'zhong guo ren min', "xi'an", 'wo men 3 ge ren。']:
    toks = pinyin.parse(text)
    out = conv.convert(text)
    assert len(out) == len(toks), (text, out)
    for ch, tok in zip(out, toks):
      if tok.kind == 'passthrough':
        assert ch == tok.key
      else:
        assert _readable(ch, tok.key), (text, out, ch, tok.key)


def test_all_input_forms_convert(conv):
  """Every input form gives one character per token, readable as its syllable (or starting
  with its initial); a syllable no character of the vocabulary reads is kept as typed (the
  fixture vocabulary has no nv: 'nv ren' -> 'nv人')."""
  from pyhanzi_jax.data.vocab import UNK  # pylint: disable=g-import-not-at-top
  for text in ['nihao', 'NI3 HAO3', 'nh', 'zhongh renm', 'nv ren', 'nü ren']:
    toks = pinyin.parse(text)
    out, at = conv.convert(text), 0
    for tok in toks:
      if conv.table.ids_for_token(tok) == [UNK]:
        assert out[at:at + len(tok.text)] == tok.text, (text, out)
        at += len(tok.text)
        continue
      ch, key = out[at], tok.key
      at += 1
      if tok.kind == pinyin.SYLLABLE:
        assert _readable(ch, key), (text, out, ch, key)
      else:  # An initial: some reading of the character starts with it.
        assert any(r.startswith(key.rstrip('*')) for r in pinyin.char_readings(ch)), (
            text, out, ch, key)
    assert at == len(out), (text, out)


def test_candidates_are_sorted_distinct_and_batch_matches_single(conv):
  cands = conv.candidates('shi jie', k=4)
  scores = [s for _, s in cands]
  assert scores == sorted(scores, reverse=True)
  assert len({t for t, _ in cands}) == len(cands)
  batch = conv.convert_batch(['shi jie', 'ni hao', 'zhong guo'])
  assert batch == [conv.convert(t) for t in ['shi jie', 'ni hao', 'zhong guo']]


def test_warmup_compiles_everything_typing_meets(conv):
  """After warm-up no line of up to max_syllables compiles anything, whatever its candidate
  counts: few (spaced `ni`), the most of any syllable, an abbreviation at the end as while a
  syllable is typed, several, tones, punctuation, run-together input typed letter by letter.
  A stall in typing came back with any shape that depends on the counts."""
  from pyhanzi_jax import decode  # pylint: disable=g-import-not-at-top
  conv.warmup(max_syllables=8, k=3)
  before = decode.TRACE_COUNT['n']
  counts = {key: len(conv.table.ids_for_key(key)) for key in pinyin.SYLLABLES + pinyin.INITIAL_KEYS}
  widest = max((k for k in counts if k in pinyin.SYLLABLES), key=counts.get)
  widest_initial = max((k for k in counts if k in pinyin.INITIAL_KEYS), key=counts.get)
  inputs = ['ni', 'shi', widest, f'ni {widest_initial[:-1]}', 'zh sh ch', 'ni3 hao3 ma？',
            ' '.join([widest] * 8), ' '.join(['ni'] * 7 + [widest_initial[:-1]])]
  word = 'nizaiganshenme'
  inputs += [word[:i] for i in range(1, len(word) + 1)]
  for text in inputs:  # convert_lines: the fixture's small vocabulary reads no `n`.
    conv.convert_lines([text], 3)
  assert decode.TRACE_COUNT['n'] == before
  conv.candidates(' '.join(['ni'] * 12), 3)  # Longer than warmed: compiles (the test can fail).
  assert decode.TRACE_COUNT['n'] > before


def test_warmup_compiles_batches_it_is_asked_for(conv):
  from pyhanzi_jax import decode  # pylint: disable=g-import-not-at-top
  conv.warmup(max_syllables=4, k=1, batch_sizes=(1, 3))
  before = decode.TRACE_COUNT['n']
  conv.candidates_batch(['ni hao', 'shi j', 'zh'], 1)
  conv.candidates_batch(['ni', 'hao'], 1)
  assert decode.TRACE_COUNT['n'] == before


def test_ascii_punctuation_reads_and_writes_as_chinese_except_in_numbers():
  keys = [t.key for t in pinyin.chinese_punctuation(pinyin.parse('ni hao, shi jie. 3.14 1,000 (ma)?'))]
  assert keys == ['ni', 'hao', '，', 'shi', 'jie', '。', '3', '.', '1', '4', '1', ',', '0', '0',
                  '0', '（', 'ma', '）', '？']


def test_punctuation_modes(workdir, conv):
  out = conv.convert('ni hao, shi jie!')
  assert out[2] == '，' and out[-1] == '！' and len(out) == 6
  # The model reads the same full-width input either way: only the rendering differs.
  assert conv.convert('ni hao，shi jie！') == out
  ascii_conv = convert.Converter(os.path.join(workdir, 'export'), punctuation='ascii')
  assert ascii_conv.convert('ni hao, shi jie!') == out[:2] + ',' + out[3:5] + '!'
  with pytest.raises(ValueError, match='punctuation'):
    convert.Converter(os.path.join(workdir, 'export'), punctuation='full')


def test_over_long_input_is_split_not_truncated(conv):
  text = ' '.join(['ni hao shi jie'] * 40)  # 160 syllables, no punctuation: windows.
  out = conv.convert(text)
  assert len(out) == 160
  text = '，'.join(['ni hao shi jie'] * 40)  # Cut at punctuation.
  assert len(conv.convert(text)) == 160 + 39


def test_windows_take_each_position_from_the_window_where_it_is_most_central():
  # 30 tokens, windows of 12 overlapping by 8: starts 0, 4, 8, 12, 16, 18. Window j writes
  # letter j everywhere, so the text shows which window each position came from.
  assert convert.WINDOW_OVERLAP == 8
  seen = []

  def decode(windows):
    seen.extend(windows)
    return [(chr(ord('a') + j) * len(w), 1.0) for j, w in enumerate(windows)]
  text, score = convert.decode_in_windows(list(range(30)), 12, decode)
  assert [w[0] for w in seen] == [0, 4, 8, 12, 16, 18] and all(len(w) == 12 for w in seen)
  assert score == 6.0 and len(text) == 30
  # 0 is only in the first; 10 is 6 from window 4's start and 5 from its end (1 and 2 in the
  # windows at 0 and 8); 29 only in the last.
  assert text[0] == 'a' and text[10] == 'b' and text[29] == 'f'


def test_table_inputs_pad_the_batch_and_end_every_row_with_eos(conv):
  pieces = [convert.parse_line(t, conv.table, conv.window)[0] for t in ('ni hao', 'shi jie ma')]
  src, rows = conv.table.inputs(pieces, 8)
  assert src.shape == (8, 4)
  assert src[0].tolist() == [conv.pinyin_vocab.id('ni'), conv.pinyin_vocab.id('hao'), EOS, PAD]
  assert src[2].tolist() == [EOS, PAD, PAD, PAD]  # Rows past the pieces: only EOS.
  assert rows[0][:2] == [conv.table.ids_for_key('ni'), conv.table.ids_for_key('hao')]
  assert rows[0][2:] == [[EOS], [PAD]] and rows[1][3] == [EOS] and rows[7] == [[EOS]] + [[PAD]] * 3


def test_bad_input_is_a_conversion_error(conv):
  for text in ['', '   ', 'iphone', 'x' * 5000]:
    with pytest.raises(convert.ConversionError):
      conv.convert(text)


def _cli(args, stdin=None):
  return subprocess.run([sys.executable, '-m', 'pyhanzi_jax.cli', *args], cwd=ROOT,
                        input=stdin, capture_output=True, text=True, timeout=300)


def test_cli_streams_lines_reports_errors_and_continues(workdir):
  r = _cli(['--model', workdir, '--json', '--warmup'], stdin='ni hao\niphone\n\nshi jie\n')
  assert r.returncode == 1 and 'warmed up in' in r.stderr
  rows = [json.loads(l) for l in r.stdout.splitlines()]
  assert [row['input'] for row in rows] == ['ni hao', 'iphone', '', 'shi jie']
  assert rows[0]['candidates'] and len(rows[0]['candidates'][0]['text']) == 2
  assert 'error' in rows[1] and not rows[1]['candidates']
  assert 'error' in rows[2]
  assert 'iphone' in r.stderr and 'Traceback' not in r.stderr
  r = _cli(['--model', workdir, '--nbest', '3', 'shi'])  # 'shi' has many characters.
  assert r.returncode == 0 and r.stdout.count('\t') == 2, r.stdout


def test_cli_warms_up_only_when_no_input_is_waiting(workdir):
  # A one-off pipe is answered at once: warming up first cost `echo ni hao | pyhanzi` 8-15 s.
  r = _cli(['--model', workdir], stdin='ni hao\n')
  assert r.returncode == 0 and len(r.stdout.strip()) == 2
  assert 'warmed up' not in r.stderr
  # An input method that starts pyhanzi and has not typed yet: nothing waiting, so it warms up.
  read_end, write_end = os.pipe()
  with os.fdopen(read_end, 'rb') as reader, os.fdopen(write_end, 'wb') as writer:
    assert not cli.input_waiting(reader)
    writer.write(b'ni hao\n')
    writer.flush()
    assert cli.input_waiting(reader)
  assert not cli.input_waiting(io.BytesIO(b'ni hao\n'))  # Not a file: cannot tell.


def test_cli_missing_model_is_a_clear_error(tmp_path):
  r = _cli(['--model', str(tmp_path / 'nope'), 'ni hao'])
  assert r.returncode == 2
  assert 'does not exist' in r.stderr and 'Traceback' not in r.stderr


@pytest.mark.parametrize('flag,value', [('--lexicon-paths', '-1'), ('--lexicon-paths', 'x'),
                                        ('--lexicon-edits', '-2')])
def test_cli_bad_lexicon_count_is_a_clear_error(flag, value):
  r = _cli([flag, value, 'ni hao'])
  assert r.returncode == 2
  assert f'{flag}: expected a whole number from 0 to 64' in r.stderr
  assert 'Traceback' not in r.stderr


@pytest.mark.parametrize('config_text', ['{}', '{"data": {"dir": "d"}', 'not json'])
def test_damaged_workdir_config_is_a_clear_error(tmp_path, config_text):
  (tmp_path / 'config.json').write_text(config_text)
  r = _cli(['--model', str(tmp_path), 'ni hao'])
  assert r.returncode == 2
  assert 'config.json is damaged' in r.stderr and 'Traceback' not in r.stderr


def test_corrupt_bundle_is_refused(workdir, tmp_path):
  import shutil
  bad = str(tmp_path / 'bundle')
  shutil.copytree(os.path.join(workdir, 'export'), bad)
  with open(os.path.join(bad, 'params.npz'), 'r+b') as f:
    f.seek(100)
    f.write(b'garbage')
  r = _cli(['--model', bad, 'ni hao'])
  assert r.returncode == 2 and 'checksum' in r.stderr


def test_eval_mode_scores_three_forms(workdir):
  path = os.path.join(tiny.get_config().data.dir, 'general', 'test.tsv')
  r = _cli(['--model', workdir, '--eval', path, '--limit', '20'])
  assert r.returncode == 0, r.stderr
  report = json.loads(r.stdout)
  assert set(report) == set(evaluate.FORMS)
  for form in report.values():
    assert 0.0 <= form['sent_acc'] <= form['topk_acc'] <= 1.0
    assert 0.0 <= form['char_acc'] <= 1.0


def test_input_forms_parse_back_to_the_syllables():
  syl = ['xi', 'an', 'fang', 'an', 'zhong', 'guo']
  assert [t.key for t in pinyin.parse(evaluate.input_form(syl, 'runtogether'))] == syl
  assert [t.key for t in pinyin.parse(evaluate.input_form(syl, 'spaced'))] == syl
  assert [t.key for t in pinyin.parse(evaluate.input_form(syl, 'initials'))] == [
      pinyin.initial_key(s) for s in syl]
