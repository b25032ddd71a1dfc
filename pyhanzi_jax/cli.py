r"""The `pyhanzi` command: convert pinyin given as arguments or read line by line.

  pyhanzi ni hao shi jie                 # the best conversion
  pyhanzi --nbest 5 nihao                # five candidates with scores
  echo 'zhrmghg' | pyhanzi --json        # {"input": ..., "candidates": [{"text", "score"}]}
  pyhanzi --eval data/general/test.tsv   # char / sentence / top-k accuracy, three input forms
  pyhanzi --user-words words.txt ...     # prefer these words ("耶和华 ye he hua" per line)
  pyhanzi serve [--port 8765]            # a local server and typing page (server.py)
  pyhanzi adapt TEXT... --out DIR        # a model adapted to your own text (adapt.py)

Reading standard input with nothing yet waiting there (an input method that starts it, then
types), it first compiles what lines of up to 16 syllables need, so that no keystroke waits for
a compile; when lines are already waiting (`echo ... | pyhanzi`, a file), it converts them at
once, since a warm-up would cost a one-off pipe more than it saves. --warmup / --no-warmup
decide it either way.
One output line per input line, in order and flushed, so it can be driven as a subprocess: an
empty line for a line that cannot be converted (no JSON "candidates", an "error" field with
--json), whose one-line message goes to stderr; the exit status says whether any line failed.
Standard input is read as bytes and each line decoded on its own, so a line that is not UTF-8
is an error for that line only, in any locale; the output is UTF-8 whatever the locale, and
carries no control characters or terminal escapes (the parser drops them; JSON escapes them).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import re
import select
import sys
from typing import BinaryIO, Iterator, Sequence

from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import compile_cache
from pyhanzi_jax import convert
from pyhanzi_jax import errors
from pyhanzi_jax import evaluate
from pyhanzi_jax import lexicon as lexicon_lib
from pyhanzi_jax import pinyin

# Longest line read whole: MAX_INPUT_CHARS characters of up to 4 bytes each, and its newline.
# A longer line is answered with an error without being held in memory.
MAX_LINE_BYTES = 4 * pinyin.MAX_INPUT_CHARS + 2


def whole_number(low: int, high: int):
  """argparse type of a whole number in [low, high], with a clear message for -1, 'x' or 10**6."""
  def parse(text: str) -> int:
    try:
      value = int(text)
    except ValueError:
      value = None
    if value is None or not low <= value <= high:
      raise argparse.ArgumentTypeError(f'expected a whole number from {low} to {high}, got '
                                       f'{text!r}')
    return value
  return parse


# argparse type of a lexicon count (paths, edits), here and in release.py and experiments/.
count_arg = whole_number(0, bundle_lib.MAX_PROPOSALS)


def finite_arg(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    value = math.nan
  if not math.isfinite(value):
    raise argparse.ArgumentTypeError(f'expected a finite number, got {text!r}')
  return value


def _parser() -> argparse.ArgumentParser:
  ap = argparse.ArgumentParser(
      prog='pyhanzi', description='Convert pinyin to Chinese characters.',
      epilog='With no TEXT, reads standard input line by line and writes one line per line.')
  ap.add_argument('text', nargs='*', help='pinyin, e.g. ni hao shi jie, nihao, nh')
  ap.add_argument('--model', help='bundle directory or training workdir (default: release model)')
  ap.add_argument('--nbest', type=whole_number(1, convert.MAX_K), default=1, metavar='K',
                  help=f'print K candidates (1-{convert.MAX_K})')
  ap.add_argument('--warmup', action=argparse.BooleanOptionalAction, default=None,
                  help='before reading standard input, compile everything lines of up to 16 '
                       'syllables use, so that no keystroke of an input method driving pyhanzi '
                       'waits for a compile (default: when no input is waiting yet)')
  ap.add_argument('--beam', type=whole_number(1, bundle_lib.MAX_BEAM), default=None,
                  help=f"beam size (1-{bundle_lib.MAX_BEAM}; default: the bundle's; at least "
                  "--nbest up to that)")
  ap.add_argument('--lm-weight', type=finite_arg, default=None,
                  help="weight of the bundle's word lexicon in re-ranking the beam (default: "
                  "the bundle's; 0: model scores only)")
  ap.add_argument('--lexicon-paths', type=count_arg, default=None,
                  metavar='K', help="add the word lexicon's K best sentences to the beam's "
                  f"candidates (0-{bundle_lib.MAX_PROPOSALS}; default: the bundle's; 0: the "
                  "beam's only, faster)")
  ap.add_argument('--lexicon-edits', type=count_arg, default=None,
                  metavar='K', help="add the word lexicon's K best one-word rewrites of the "
                  f"beam's best (0-{bundle_lib.MAX_PROPOSALS}; default: the bundle's; 0: none)")
  ap.add_argument('--user-words', metavar='FILE',
                  help='words to prefer where their pinyin is typed: one per line, optionally '
                  'followed by the pinyin ("耶和华 ye he hua"); see Converter(user_words=...)')
  ap.add_argument('--json', action='store_true', help='one JSON object per input line')
  ap.add_argument('--punctuation', choices=convert.PUNCTUATION_MODES, default='chinese',
                  help='write ASCII , . ? ! : ; ( ) typed in a sentence as ，。？！：；（） '
                  '(chinese, the default, as an IME does) or leave them as typed (ascii)')
  ap.add_argument('--compile-cache', default=None, metavar='DIR',
                  help='keep compiled programs here, so that the next run starts sooner '
                  f'(default: ${compile_cache.ENV}, else ~/.cache/pyhanzi_jax/jax; "": off)')
  ap.add_argument('--eval', metavar='TSV', help='score a "pinyin<TAB>hanzi" file instead')
  ap.add_argument('--forms', default=','.join(evaluate.FORMS), help='input forms for --eval')
  ap.add_argument('--topk', type=whole_number(1, convert.MAX_K), default=5,
                  help='k of top-k accuracy for --eval')
  ap.add_argument('--limit', type=whole_number(0, 10**9), default=0,
                  help='--eval only the first N lines')
  return ap


def _line(raw: bytes) -> tuple[str, str | None]:
  """(text, error) of one line's bytes, its line ending included or not."""
  raw = raw.rstrip(b'\r\n')
  try:
    return raw.decode('utf-8'), None
  except UnicodeDecodeError as e:
    return raw.decode('utf-8', 'backslashreplace'), (
        f'the line is not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}); '
        'convert it to UTF-8 first, e.g. with iconv')


def _over_limit(raw: bytes) -> tuple[str, str]:
  """(text, error) of a line over the limit, given its first `limit` bytes."""
  text = raw.decode('utf-8', 'replace')[:pinyin.MAX_INPUT_CHARS]
  return text + '…', (f'the line is over the limit of {pinyin.MAX_INPUT_CHARS} characters: '
                      'split it into sentences')


def read_lines(stream: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[str, str | None]]:
  """(text, error) per line of a byte stream, without its line ending: a line that is not
  UTF-8 comes with an error and its bytes escaped (\\xff) as text; one over `limit` bytes with
  an error and its first MAX_INPUT_CHARS characters, the rest skipped unread into memory."""
  while True:
    raw = stream.readline(limit)
    if not raw:
      return
    if len(raw) == limit and not raw.endswith(b'\n'):
      while True:  # Skip the rest of the line, a block at a time.
        more = stream.readline(limit)
        if not more or more.endswith(b'\n'):
          break
      yield _over_limit(raw)
      continue
    yield _line(raw)


# Bytes asked of the operating system per read by read_batches.
READ_CHUNK = 1 << 16


def _readable(fd: int) -> bool:
  """Whether a read of `fd` would not block (data or end of file there); False where that
  cannot be told (a Windows pipe is not selectable)."""
  try:
    return bool(select.select([fd], [], [], 0)[0])
  except (OSError, ValueError):
    return False


def _raw_reader(stream: BinaryIO):
  """(read(n) -> bytes, ready() -> whether a read would not block) for `stream`: its file
  descriptor, bypassing Python's buffer (whose readline would wait for a whole buffer or a line
  that the writer has yet to send), else the stream itself (in memory: always ready;
  anything else: never, so that a batch is what one read returned)."""
  try:
    fd = stream.fileno()
  except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError.
    fd = None
  if fd is not None:
    return (lambda n: os.read(fd, n)), lambda: _readable(fd)
  read = getattr(stream, 'read1', None) or stream.read
  always = isinstance(stream, io.BytesIO)
  return read, lambda: always


def read_batches(stream: BinaryIO, max_lines: int,
                 limit: int = MAX_LINE_BYTES) -> Iterator[list[tuple[str, str | None]]]:
  """read_lines' (text, error) pairs, in order, grouped: each group is at least one line
  (waiting for it) and at most `max_lines`, as many as were already waiting, so that a file or
  a pipe full of lines is converted in batches while an input method typing one line at a time
  gets each answer at once. Reads the stream's file descriptor directly: the caller must not
  have read from `stream` before."""
  read, ready = _raw_reader(stream)
  buf = bytearray()
  skipping = eof = False

  def take():  # The next whole line in `buf` as (text, error), or None.
    nonlocal skipping
    if skipping:  # The rest of an over-long line, dropped as it arrives.
      nl = buf.find(b'\n')
      if nl < 0:
        buf.clear()
        return None
      del buf[:nl + 1]
      skipping = False
    nl = buf.find(b'\n', 0, limit)
    if nl >= 0:
      raw = bytes(buf[:nl + 1])
      del buf[:nl + 1]
      return _line(raw)
    if len(buf) >= limit:
      raw = bytes(buf[:limit])
      del buf[:limit]
      skipping = True
      return _over_limit(raw)
    if eof and buf:  # A last line without its newline.
      raw = bytes(buf)
      buf.clear()
      return _line(raw)
    return None

  while True:
    batch = []
    while len(batch) < max_lines:
      item = take()
      if item is not None:
        batch.append(item)
        continue
      if eof or (batch and not ready()):
        break
      chunk = read(READ_CHUNK)
      if chunk:
        buf += chunk
      else:
        eof = True
    if batch:
      yield batch
    elif eof:
      return


def printable(text: str) -> str:
  """`text` as valid UTF-8 can carry it: an argument's undecodable bytes (surrogate escapes)
  as \\xff, any other lone surrogate as \\ud800."""
  try:
    text.encode('utf-8')
    return text
  except UnicodeEncodeError:
    pass
  try:
    return text.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')
  except UnicodeEncodeError:
    return text.encode('utf-8', 'backslashreplace').decode('utf-8')


# Valid in JSON strings but not in one line of a terminal or of str.splitlines(): C1 controls,
# DEL, line and paragraph separators, bidirectional controls (and the invisible byte-order
# mark). json.dumps escapes only < U+0020.
_JSON_UNSAFE = re.compile(
    '[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]')


def json_line(obj) -> str:
  """One JSON object on one line, every character a terminal or a line splitter could act on
  escaped."""
  return _JSON_UNSAFE.sub(lambda m: f'\\u{ord(m.group()):04x}',
                         json.dumps(obj, ensure_ascii=False))


def answer(result: convert.LineResult, text: str, args, out: BinaryIO, where: str = '') -> bool:
  """Writes one line's answer (and its error to stderr); whether it converted."""
  cands, error = result.candidates, result.error
  if error:
    print(f'pyhanzi: {where}{error}', file=sys.stderr, flush=True)
  if args.json:
    obj = {'input': printable(text),
           'candidates': [{'text': t, 'score': round(s, 4)} for t, s in cands]}
    if error:
      obj['error'] = error
    line = json_line(obj)
  elif args.nbest > 1:
    line = '\t'.join(f'{t} ({s:.2f})' for t, s in cands)
  else:
    line = cands[0][0] if cands else ''
  out.write((line + '\n').encode('utf-8'))
  out.flush()
  return not error


def input_waiting(stream: BinaryIO) -> bool:
  """Whether `stream` can be read without blocking (lines or end of file already there): a pipe
  or file, not an input method that has yet to type. False where that cannot be told."""
  try:
    fd = stream.fileno()
  except (AttributeError, OSError, ValueError):  # In memory (BytesIO): no file to ask.
    return False
  return _readable(fd)


# Lines of standard input converted together when that many are already waiting. One: with the
# fixed candidate widths, batches convert fewer lines per second than lines one at a time (300
# dev_dialogue lines on the 2-core machine at load ~8: 80 ms a line 64 at a time, 37 ms 8 at a
# time, 26-34 ms alone; conversions identical), and only the batch-1 programs are warmed up.
STDIN_BATCH = 1


def convert_stream(conv: convert.Converter, stream: BinaryIO, out: BinaryIO, args,
                   max_batch: int = STDIN_BATCH) -> bool:
  """Answers every line of `stream` on `out`, in order, each flushed as soon as it is converted;
  whether all converted. Lines already waiting are converted together, up to `max_batch` at a
  time (STDIN_BATCH says why one)."""
  ok, n = True, 0
  for batch in read_batches(stream, max_batch):
    good = [text for text, error in batch if not error]
    results = iter(conv.convert_lines(good, args.nbest) if good else [])
    for text, error in batch:
      n += 1
      result = convert.LineResult([], error) if error else next(results)
      ok &= answer(result, text, args, out, f'line {n}: ')
  return ok


# Subcommands with their own options. Imported when asked for: the server and the trainer that
# adapt uses are not needed to convert a line, and `pyhanzi ni hao` should not load them.
SUBCOMMANDS = ('serve', 'adapt')


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if argv and argv[0] in SUBCOMMANDS:
    if argv[0] == 'serve':
      from pyhanzi_jax import server  # pylint: disable=g-import-not-at-top
      return server.main(argv[1:])
    from pyhanzi_jax import adapt  # pylint: disable=g-import-not-at-top
    return adapt.main(argv[1:])
  args = _parser().parse_args(argv)
  user_words = None
  if args.user_words:
    try:
      user_words = lexicon_lib.read_user_words(args.user_words)
    except (OSError, ValueError) as e:
      print(f'pyhanzi: --user-words: {e}', file=sys.stderr)
      return 2
  compile_cache.enable(args.compile_cache)
  try:
    conv = convert.Converter(args.model, beam_size=args.beam, punctuation=args.punctuation,
                             lm_weight=args.lm_weight, lexicon_paths=args.lexicon_paths,
                             lexicon_edits=args.lexicon_edits, user_words=user_words)
  except lexicon_lib.UserWordError as e:
    print(f'pyhanzi: --user-words {args.user_words}: {e}', file=sys.stderr)
    return 2
  except (errors.CheckpointError, OSError, ValueError) as e:
    print(f'pyhanzi: cannot load the model: {e}', file=sys.stderr)
    return 2
  # At least --nbest beams, whichever beam (--beam's or the bundle's) is known only now.
  beam = min(max(conv.settings.beam_size, args.nbest), bundle_lib.MAX_BEAM)
  conv.settings = dataclasses.replace(conv.settings, beam_size=beam)
  if args.eval:
    try:
      report = evaluate.evaluate_tsv(conv, args.eval, [f.strip() for f in args.forms.split(',')],
                                     args.topk, args.limit)
    except (OSError, ValueError) as e:
      print(f'pyhanzi: {e}', file=sys.stderr)
      return 2
    print(json.dumps(report, indent=2))
    return 0
  out = getattr(sys.stdout, 'buffer', None) or sys.stdout
  try:
    if args.text:
      text = ' '.join(args.text)
      (result,) = conv.convert_lines([text], args.nbest)
      return 0 if answer(result, text, args, out) else 1
    if args.warmup or (args.warmup is None and not input_waiting(sys.stdin.buffer)):
      print(f'pyhanzi: warmed up in {conv.warmup(k=args.nbest):.1f} s', file=sys.stderr,
            flush=True)
    return 0 if convert_stream(conv, sys.stdin.buffer, out, args, STDIN_BATCH) else 1
  except BrokenPipeError:  # The reader went away (`pyhanzi ... | head -1`): not an error here.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1
  except KeyboardInterrupt:
    return 130


if __name__ == '__main__':
  sys.exit(main())
