"""What the converter and the `pyhanzi` command do with input that is not plain pinyin: Latin
words, syllables the vocabulary cannot write, bad lines in a batch, counts out of range, bytes
that are not UTF-8, control characters, over-long lines (docs/RELIABILITY.md lists each). An
untrained tiny bundle is enough: these are about the shape of the answer, not its quality."""
import io
import json
import os
import subprocess
import sys
import types

import pytest

from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import cli
from pyhanzi_jax import convert
from pyhanzi_jax import pinyin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def model(untrained_bundle):
  return untrained_bundle('input')


@pytest.fixture(scope='module')
def conv(model):
  return convert.Converter(model)


def _args(**kw):
  return types.SimpleNamespace(**{'json': True, 'nbest': 1, **kw})


# --- Text that is not pinyin ------------------------------------------------------------------

def test_latin_words_and_urls_pass_through_as_typed(model, conv):
  out = conv.convert('wo yong iPhone15')
  assert out.endswith('iPhone15') and len(out) == 2 + len('iPhone15')
  assert all(pinyin.is_hanzi(c) for c in out[:2])
  out = conv.convert('kan https://example.com/a?b=1, hao')
  assert out[1:-2] == 'https://example.com/a?b=1' and out[-2] == '，'
  assert conv.convert('shuo `hello world` ba')[1:-1] == 'hello world'
  assert conv.convert('ni hao señor').endswith('señor')
  assert convert.Converter(model, punctuation='ascii').convert('wo yong iphone').endswith('iphone')


def test_pinyin_stays_pinyin(conv):
  for text in ['nihao', 'ni hao', 'nh', 'shijie', 'zhongguo ren']:
    out = conv.convert(text)
    assert len(out) == len(pinyin.parse(text)) and all(pinyin.is_hanzi(c) for c in out), out


@pytest.mark.parametrize('text', ['iphone', 'iphone 15', 'ipad!', 'señor'])
def test_a_line_with_no_pinyin_is_an_error(conv, text):
  with pytest.raises(convert.ConversionError, match='cannot read'):
    conv.convert(text)


def test_a_syllable_no_character_reads_is_kept_as_typed_or_an_error_alone(conv):
  # `hm` has no character in this vocabulary (nor in the release's).
  assert conv.table.ids_for_key('hm') == [3]
  out = conv.convert('wo hm ni')
  assert out[1:3] == 'hm' and '<unk>' not in out and len(out) == 4
  for text in ['hm', 'hm4', 'hm iphone', 'hm, hm!']:
    with pytest.raises(convert.ConversionError, match="no character the model knows is read 'hm'"):
      conv.convert(text)


def test_control_characters_and_escapes_never_reach_the_output(conv):
  for text in ['ni\x1b[31mhao\x1b[0m', 'ni\x07hao', 'ni\u202ehao', '\ufeffni hao', 'ni\x85hao']:
    out = conv.convert(text)
    assert len(out) == 2 and all(pinyin.is_hanzi(c) for c in out), repr(out)
  with pytest.raises(convert.ConversionError, match='surrogate'):
    conv.convert('ni \udcffhao')


# --- Batches: every line answered, or the bad one named ---------------------------------------

def test_convert_lines_answers_every_line(conv):
  texts = ['ni hao', '', 'iphone', 'shi jie', 'x' * 3000, None]
  results = conv.convert_lines(texts, k=2)
  assert len(results) == len(texts)
  assert [r.error is None for r in results] == [True, False, False, True, False, False]
  assert results[0].text == conv.convert('ni hao') and results[2].text is None
  assert 'iphone' in results[2].error and 'limit of 2000' in results[4].error
  assert 'expected text' in results[5].error


def test_a_bad_line_of_a_batch_is_named(conv):
  with pytest.raises(convert.ConversionError) as e:
    conv.convert_batch(['ni hao', 'shi jie', 'iphone'])
  assert (e.value.index, e.value.text) == (2, 'iphone')
  assert str(e.value).startswith("line 2 ('iphone'): cannot read")
  with pytest.raises(convert.ConversionError, match=r"^line 0 \('xxx.*\(3000 chars\)"):
    conv.candidates_batch(['x' * 3000, 'ni hao'])
  with pytest.raises(convert.ConversionError, match='^input is 3000') as e:  # One line: as is.
    conv.candidates_batch(['x' * 3000])
  assert e.value.index == 0
  with pytest.raises(TypeError, match='sequence of texts'):
    conv.convert_batch('ni hao')
  # A single text keeps the parser's message.
  with pytest.raises(convert.ConversionError, match='^cannot read'):
    conv.convert('iphone')


def test_conversion_error_pickles_with_its_line():
  import pickle
  e = pickle.loads(pickle.dumps(convert.ConversionError('m', 3, 'iphone')))
  assert (str(e), e.index, e.text) == ('m', 3, 'iphone')


# --- Counts ------------------------------------------------------------------------------------

@pytest.mark.parametrize('k', [0, -1, convert.MAX_K + 1, 2.5, True, '3'])
def test_k_out_of_range_is_a_value_error(conv, k):
  with pytest.raises(ValueError, match='k .* from 1 to 100'):
    conv.candidates('ni hao', k)


def test_k_up_to_the_limit_works(conv):
  assert 1 <= len(conv.candidates('shi', convert.MAX_K)) <= convert.MAX_K


@pytest.mark.parametrize('kwargs, message', [
    (dict(beam_size=0), 'beam_size must be at least 1'),
    (dict(beam_size=bundle_lib.MAX_BEAM + 1), 'beam_size must be at most 64'),
    (dict(lexicon_paths=100000), 'lexicon_paths must be at most 64'),
    (dict(lexicon_edits=-1), 'lexicon_edits must be a whole number >= 0'),
    (dict(lm_weight=float('nan')), 'lm_weight must be a finite number'),
    (dict(compute_dtype='int8'), 'compute_dtype must be a float dtype'),
])
def test_converter_settings_out_of_range_are_value_errors(model, kwargs, message):
  with pytest.raises(ValueError, match=message):
    convert.Converter(model, **kwargs)


@pytest.mark.parametrize('flag, value', [
    ('--nbest', '0'), ('--nbest', '-2'), ('--nbest', '101'), ('--beam', '0'), ('--beam', '65'),
    ('--lexicon-paths', '100000'), ('--lexicon-paths', '-1'), ('--lexicon-edits', 'x'),
    ('--lm-weight', 'nan'), ('--topk', '0'),
])
def test_cli_counts_out_of_range_are_clear_errors(flag, value, capsys, tmp_path):
  # No model: were a count let through, nothing would load (100,000 paths asked for 48 GB).
  with pytest.raises(SystemExit) as e:
    cli.main(['--model', str(tmp_path / 'none'), flag, value, 'ni hao'])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert f'argument {flag}: expected a' in err and 'Traceback' not in err


@pytest.fixture(scope='module')
def beam2_model(untrained_bundle):
  return untrained_bundle('beam2', settings=bundle_lib.ConversionSettings(beam_size=2))


@pytest.mark.parametrize('argv, beam', [([], 2), (['--nbest', '3'], 3), (['--beam', '5'], 5)])
def test_cli_beam_is_the_bundle_s_unless_given(beam2_model, monkeypatch, capsys, argv, beam):
  # The bundle's settings.beam_size applies; --beam overrides it; either widens to --nbest.
  used = []

  class Spy(convert.Converter):
    def convert_lines(self, texts, k=1):
      used.append(self.settings.beam_size)
      return super().convert_lines(texts, k)

  monkeypatch.setattr(convert, 'Converter', Spy)
  assert cli.main(['--model', beam2_model, *argv, 'ni hao']) == 0
  assert used == [beam]


# --- Long lines --------------------------------------------------------------------------------

def test_a_long_line_is_decoded_in_bounded_batches(conv, monkeypatch):
  sizes = []
  decode_group = conv._decode_group  # pylint: disable=protected-access

  def spy(group, beam):
    sizes.append(len(group))
    return decode_group(group, beam)
  monkeypatch.setattr(conv, '_decode_group', spy)
  text = 'ni hao shi jie ' * 133   # 1,995 characters, 532 syllables: 10 windows.
  out = conv.convert(text)
  assert len(out) == len(pinyin.parse(text))
  assert sizes and max(sizes) <= convert.LONG_LINE_BATCH and sum(sizes) >= 10
  sizes.clear()
  text = 'ni hao shi jie，' * 133   # Cut at punctuation instead.
  assert len(conv.convert(text)) == len(pinyin.parse(text))
  assert max(sizes) <= convert.LONG_LINE_BATCH
  # Short lines of a batch still share a batch of up to 64.
  sizes.clear()
  conv.convert_batch(['ni hao'] * 20)
  assert sizes == [20]


# --- The command: standard input as bytes, one answer per line ---------------------------------

def _stream(conv, data: bytes, **kw):
  out = io.BytesIO()
  ok = cli.convert_stream(conv, io.BytesIO(data), out, _args(**kw))
  return ok, out.getvalue()


def test_invalid_utf8_is_an_error_for_its_line_only(conv, capsys):
  ok, out = _stream(conv, b'ni hao\n\xff\xfe\nshi jie\n')
  assert not ok
  rows = [json.loads(line) for line in out.decode('utf-8').splitlines()]
  assert [r['input'] for r in rows] == ['ni hao', '\\xff\\xfe', 'shi jie']
  assert rows[0]['candidates'] and rows[2]['candidates'] and not rows[1]['candidates']
  assert 'not valid UTF-8 (byte 0xff at offset 0)' in rows[1]['error']
  assert 'line 2: the line is not valid UTF-8' in capsys.readouterr().err


def test_over_long_lines_are_answered_without_reading_them_whole(conv):
  huge = b'ni' * 100000
  ok, out = _stream(conv, b'ni hao\n' + huge + b'\nshi jie')
  rows = [json.loads(line) for line in out.decode('utf-8').splitlines()]
  assert len(rows) == 3 and not ok
  assert 'over the limit of 2000' in rows[1]['error']
  assert len(rows[1]['input']) == pinyin.MAX_INPUT_CHARS + 1
  assert rows[2]['input'] == 'shi jie' and rows[2]['candidates']
  lines = list(cli.read_lines(io.BytesIO(b'a' * 10 + b'\r\n' + b'b' * 10), limit=8))
  assert [e is not None for _, e in lines] == [True, True]


def test_batched_reading_gives_the_lines_read_lines_gives():
  data = (b'ni hao\r\n\xff\xfe\n' + b'a' * 10 + b'\r\n' + b'b' * 7 + b'\n\n' + b'c' * 20 +
          b'\nshi jie')
  want = list(cli.read_lines(io.BytesIO(data), limit=8))
  for max_lines in (1, 2, 3, 64):
    for chunk in (1, 3, 1 << 16):  # Lines split across reads, or many lines in one read.
      stream = io.BytesIO(data)
      stream.read1 = lambda n, read=stream.read, chunk=chunk: read(min(n, chunk))
      batches = list(cli.read_batches(stream, max_lines, limit=8))
      assert [x for b in batches for x in b] == want, (max_lines, chunk)
      assert all(1 <= len(b) <= max_lines for b in batches)
  assert [len(b) for b in cli.read_batches(io.BytesIO(data), 64, limit=8)] == [len(want)]


def test_batched_reading_does_not_wait_for_lines_not_yet_sent():
  # An input method writes a line and waits for its answer: the line must come back alone,
  # at once, while lines already waiting in a pipe come back together.
  read_end, write_end = os.pipe()
  with os.fdopen(read_end, 'rb') as reader, os.fdopen(write_end, 'wb') as writer:
    batches = cli.read_batches(reader, 64)
    writer.write(b'ni\nni hao\nni hao shi\n')
    writer.flush()
    assert next(batches) == [('ni', None), ('ni hao', None), ('ni hao shi', None)]
    writer.write(b'wo')
    writer.flush()
    writer.write(b'men\n')
    writer.flush()
    assert next(batches) == [('women', None)]
    writer.close()
    assert list(batches) == []


def test_waiting_lines_are_converted_together_and_answered_in_order(conv, monkeypatch):
  sizes = []
  convert_lines = conv.convert_lines

  def spy(texts, k=1):
    sizes.append(len(texts))
    return convert_lines(texts, k)
  monkeypatch.setattr(conv, 'convert_lines', spy)
  data = b'ni hao\n\xff\nshi jie\nwo men\n'
  out = io.BytesIO()
  ok = cli.convert_stream(conv, io.BytesIO(data), out, _args(), max_batch=64)
  out = out.getvalue()
  rows = [json.loads(line) for line in out.decode('utf-8').splitlines()]
  assert not ok and [r['input'] for r in rows] == ['ni hao', '\\xff', 'shi jie', 'wo men']
  assert sizes == [3]
  alone = [conv.convert_lines([r['input']])[0].text for r in rows if 'error' not in r]
  assert [r['candidates'][0]['text'] for r in rows if 'error' not in r] == alone
  sizes.clear()
  cli.convert_stream(conv, io.BytesIO(data), io.BytesIO(), _args())  # cli.STDIN_BATCH
  assert sizes == [1, 1, 1]


def test_plain_output_carries_no_control_characters(conv):
  ok, out = _stream(conv, b'ni\x1b[2Jhao\n\x1b]0;pwned\x07\nwo\x9b31m\n', json=False)
  assert not ok  # The second line is empty once its escapes are dropped.
  text = out.decode('utf-8')
  assert len(text.splitlines()) == 3
  assert not any(ord(c) < 32 and c != '\n' or 0x7f <= ord(c) <= 0x9f for c in text)


def test_json_lines_escape_what_splits_lines_or_moves_the_cursor():
  line = cli.json_line({'input': 'a\u2028b\x85c\u202ed\x1b', 'x': '中'})
  assert line == '{"input": "a\\u2028b\\u0085c\\u202ed\\u001b", "x": "中"}'
  assert len(line.splitlines()) == 1 and json.loads(line)['input'] == 'a\u2028b\x85c\u202ed\x1b'
  assert cli.printable('ni\udcffhao') == 'ni\\xffhao'
  assert cli.printable('a\ud800') == 'a\\ud800'


def _cli(args, stdin: bytes, env_extra):
  env = {k: v for k, v in os.environ.items() if not k.startswith(('LC_', 'PYTHONIO'))}
  env.update(env_extra)
  return subprocess.run([sys.executable, '-m', 'pyhanzi_jax.cli', *args], cwd=ROOT, input=stdin,
                        capture_output=True, env=env, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize('env', [{'PYTHONIOENCODING': 'utf-8'}, {'LC_ALL': 'C.UTF-8'},
                                 {'LC_ALL': 'C', 'PYTHONIOENCODING': 'ascii'}])
def test_cli_in_every_locale(model, env):
  """The issue's command: the bad line is an error, both good lines are converted, the output
  is UTF-8 whatever the locale."""
  r = _cli(['--model', model, '--json'], b'ni hao\n\xff\xfe\nshi jie\n', env)
  assert r.returncode == 1, r.stderr
  assert b'Traceback' not in r.stderr
  rows = [json.loads(line) for line in r.stdout.decode('utf-8').splitlines()]
  assert [bool(row['candidates']) for row in rows] == [True, False, True]
  assert 'not valid UTF-8' in rows[1]['error']
  r = _cli(['--model', model, 'ni', 'hao'], b'', env)
  assert r.returncode == 0 and len(r.stdout.decode('utf-8').strip()) == 2


@pytest.mark.slow
def test_cli_stops_quietly_when_its_reader_goes_away(model, tmp_path):
  """`pyhanzi ... | head -1`: no traceback when the pipe closes."""
  (tmp_path / 'in').write_bytes(b'ni hao\n' + b'\n' * 200000)  # Quick errors, 20 MB of answers.
  with open(tmp_path / 'in', 'rb') as stdin, open(tmp_path / 'err', 'wb') as err:
    p = subprocess.Popen([sys.executable, '-m', 'pyhanzi_jax.cli', '--model', model, '--json'],
                         cwd=ROOT, stdin=stdin, stdout=subprocess.PIPE, stderr=err)
    assert json.loads(p.stdout.readline())['candidates']
    p.stdout.close()
    assert p.wait(timeout=300) == 1
  assert b'Traceback' not in (tmp_path / 'err').read_bytes()
