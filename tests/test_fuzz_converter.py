"""Fuzzing the converter and the `pyhanzi` command's input path with hypothesis: arbitrary
Unicode, arbitrary bytes on standard input, huge lines. Whatever comes in, no exception but
ConversionError leaves the converter, every line gets exactly one answer, in order, and what
comes out is valid UTF-8 with no control characters. An untrained tiny bundle and derandomized,
bounded examples keep it to a few minutes (most of it compiling the decoder for each new
shape)."""
import io
import json
import types

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pyhanzi_jax import cli
from pyhanzi_jax import convert
from pyhanzi_jax import pinyin

pytestmark = pytest.mark.slow

FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope='module')
def conv(untrained_bundle):
  return convert.Converter(untrained_bundle('fuzz'))


# Pinyin pieces and everything around them people (and programs) send: Latin words, URLs,
# digits, punctuation, CJK, emoji, controls, escapes, bidi marks, surrogates.
_PIECES = st.sampled_from([
    'ni', 'hao', 'shi', 'jie', 'zhong', 'guo', 'nh', 'zh', 'ni3', 'nǐ', 'lü', 'xi\'an', 'hm',
    'iphone', 'hello', 'https://a.cn/x?y=1', 'a@b.com', 'main.py', '`raw text`', '`', 'señor',
    '3.14', '1,000', '12:30', ',', '.', '?', '!', '，', '。', '中文', '😀', '\u200d', '\ufe0f',
    ' ', '  ', "'", '\t', '\x1b[31m', '\x1b', '\x00', '\x7f', '\x85', '\u2028', '\u202e',
    '\ufeff', '\udcff', 'Ａ１', 'u:', '\u0301'])
_TEXT = st.one_of(
    st.lists(_PIECES, max_size=12).map(''.join),
    st.text(max_size=30),
    st.text(st.characters(codec='utf-8', categories=['L', 'N', 'P', 'S', 'Z', 'C']), max_size=30),
)


def _clean(text: str) -> bool:
  return not any(ord(c) < 32 or 0x7f <= ord(c) <= 0x9f or 0xd800 <= ord(c) <= 0xdfff or
                 c in '\u2028\u2029\u202e\ufeff' for c in text)


@settings(FUZZ, max_examples=60)
@given(st.lists(_TEXT, min_size=1, max_size=6))
def test_any_text_converts_or_is_a_conversion_error(conv, texts):
  results = conv.convert_lines(texts, k=2)
  assert len(results) == len(texts)
  for text, r in zip(texts, results):
    if r.error is None:
      assert 1 <= len(r.candidates) <= 2
      for out, score in r.candidates:
        assert out and _clean(out) and out.encode('utf-8')
        assert score == score  # Not NaN.
    else:
      assert not r.candidates and r.error
  # The single-text API agrees on the bad lines: ConversionError with the same message.
  for text, r in zip(texts, results):
    if r.error is not None:
      with pytest.raises(convert.ConversionError) as e:
        conv.candidates(text)
      assert str(e.value) == r.error


_LINE = st.one_of(
    _TEXT.map(lambda t: t.encode('utf-8', 'surrogatepass')),
    st.binary(max_size=40),
    st.sampled_from([b'\xff\xfe', b'ni \xe4\xb8', b'\xed\xa0\x80', b'\xc0\xafni', b'ni\rhao',
                     b'\r', b'']))


def _answers(conv, data: bytes, **kw):
  out = io.BytesIO()
  args = types.SimpleNamespace(**{'json': True, 'nbest': 1, **kw})
  cli.convert_stream(conv, io.BytesIO(data), out, args)
  return out.getvalue()


def _line_count(data: bytes) -> int:
  return data.count(b'\n') + (1 if data and not data.endswith(b'\n') else 0)


@settings(FUZZ, max_examples=60)
@given(st.lists(_LINE, max_size=6), st.sampled_from([b'\n', b'\r\n']), st.booleans())
def test_any_bytes_on_stdin_get_one_answer_per_line(conv, lines, newline, last_newline):
  data = newline.join(lines) + (newline if last_newline and lines else b'')
  out = _answers(conv, data)
  text = out.decode('utf-8')  # Valid UTF-8 whatever came in.
  rows = text.split('\n')
  assert rows[-1] == ''
  rows = rows[:-1]
  assert len(rows) == _line_count(data)
  for row, raw in zip(rows, data.split(b'\n')):
    obj = json.loads(row)
    assert set(obj) <= {'input', 'candidates', 'error'}
    assert bool(obj['candidates']) != ('error' in obj)
    if 'error' not in obj:
      assert obj['input'] == raw.rstrip(b'\r\n').decode('utf-8')
    assert _clean(row)


@settings(FUZZ, max_examples=20)
@given(st.lists(_LINE, min_size=1, max_size=4))
def test_plain_output_is_one_clean_line_per_line(conv, lines):
  data = b'\n'.join(lines) + b'\n'
  rows = _answers(conv, data, json=False, nbest=1).decode('utf-8').split('\n')[:-1]
  assert len(rows) == _line_count(data)
  assert all(_clean(row) for row in rows)


_HUGE = st.one_of(
    st.lists(st.sampled_from(pinyin.SYLLABLES), min_size=400, max_size=700).map(' '.join),
    st.lists(st.sampled_from(['ni', 'hao', 'shi', 'jie', 'zh', 'x', '，', 'iphone', '3', ' ']),
             min_size=600, max_size=900).map(''.join),
    st.text(min_size=1900, max_size=2100),
)


@settings(FUZZ, max_examples=4)
@given(_HUGE)
def test_huge_lines_convert_in_one_piece_or_are_refused(conv, text):
  results = conv.convert_lines([text, 'ni hao'])
  assert len(results) == 2 and results[1].error is None
  r = results[0]
  if len(text) > pinyin.MAX_INPUT_CHARS:
    assert 'limit of 2000' in r.error
  elif r.error is None:
    assert r.text and _clean(r.text)


def test_stdin_lines_far_over_the_limit(conv):
  data = b'ni hao\n' + b'x' * 300000 + b'\n' + b'\xff' * 20000 + b'\nshi jie'
  rows = [json.loads(r) for r in _answers(conv, data).decode('utf-8').splitlines()]
  assert len(rows) == 4
  assert [bool(r['candidates']) for r in rows] == [True, False, False, True]
  assert all('over the limit' in r['error'] for r in rows[1:3])
