r"""The `pyhanzi` command: convert pinyin given as arguments or read line by line.

  pyhanzi ni hao shi jie                 # the best conversion
  pyhanzi --nbest 5 nihao                # five candidates with scores
  echo 'zhrmghg' | pyhanzi --json        # {"input": ..., "candidates": [{"text", "score"}]}
  pyhanzi --eval data/general/test.tsv   # char / sentence / top-k accuracy, three input forms
  pyhanzi --user-words words.txt ...     # prefer these words ("耶和华 ye he hua" per line)

One output line per input line, flushed, so it can be driven as a subprocess; a line that
cannot be converted gets a one-line message on stderr (and an "error" field with --json), and the
exit status says whether any line failed.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import convert
from pyhanzi_jax import evaluate
from pyhanzi_jax import lexicon as lexicon_lib


def count_arg(text: str) -> int:
  """argparse type of a count: a clear message for -1 or 'x'."""
  try:
    value = int(text)
  except ValueError:
    value = -1
  if value < 0:
    raise argparse.ArgumentTypeError(f'expected a whole number >= 0, got {text!r}')
  return value


def _parser() -> argparse.ArgumentParser:
  ap = argparse.ArgumentParser(
      prog='pyhanzi', description='Convert pinyin to Chinese characters.',
      epilog='With no TEXT, reads standard input line by line and writes one line per line.')
  ap.add_argument('text', nargs='*', help='pinyin, e.g. ni hao shi jie, nihao, nh')
  ap.add_argument('--model', help='bundle directory or training workdir (default: release model)')
  ap.add_argument('--nbest', type=int, default=1, metavar='K', help='print K candidates')
  ap.add_argument('--warmup', action='store_true',
                  help='compile the decoders for up to 16 syllables before reading standard '
                       'input, so that no line waits for a compile (for input methods that '
                       'drive pyhanzi as a subprocess)')
  ap.add_argument('--beam', type=int, default=4, help='beam size (at least --nbest)')
  ap.add_argument('--lm-weight', type=float, default=None,
                  help="weight of the bundle's word lexicon in re-ranking the beam (default: "
                  "the bundle's; 0: model scores only)")
  ap.add_argument('--lexicon-paths', type=count_arg, default=None, metavar='K',
                  help="add the word lexicon's K best sentences to the beam's candidates "
                  "(default: the bundle's; 0: the beam's only, faster)")
  ap.add_argument('--lexicon-edits', type=count_arg, default=None, metavar='K',
                  help="add the word lexicon's K best one-word rewrites of the beam's best "
                  "(default: the bundle's; 0: none)")
  ap.add_argument('--user-words', metavar='FILE',
                  help='words to prefer where their pinyin is typed: one per line, optionally '
                  'followed by the pinyin ("耶和华 ye he hua"); see Converter(user_words=...)')
  ap.add_argument('--json', action='store_true', help='one JSON object per input line')
  ap.add_argument('--punctuation', choices=convert.PUNCTUATION_MODES, default='chinese',
                  help='write ASCII , . ? ! : ; ( ) typed in a sentence as ，。？！：；（） '
                  '(chinese, the default, as an IME does) or leave them as typed (ascii)')
  ap.add_argument('--eval', metavar='TSV', help='score a "pinyin<TAB>hanzi" file instead')
  ap.add_argument('--forms', default=','.join(evaluate.FORMS), help='input forms for --eval')
  ap.add_argument('--topk', type=int, default=5, help='k of top-k accuracy for --eval')
  ap.add_argument('--limit', type=int, default=0, help='--eval only the first N lines')
  return ap


def _emit(conv: convert.Converter, text: str, args, out) -> bool:
  try:
    cands = conv.candidates(text, max(args.nbest, 1))
    ok, error = True, None
  except convert.ConversionError as e:
    cands, ok, error = [], False, str(e)
    print(f'pyhanzi: {error}', file=sys.stderr, flush=True)
  if args.json:
    obj = {'input': text, 'candidates': [{'text': t, 'score': round(s, 4)} for t, s in cands]}
    if error:
      obj['error'] = error
    out.write(json.dumps(obj, ensure_ascii=False) + '\n')
  elif args.nbest > 1:
    out.write('\t'.join(f'{t} ({s:.2f})' for t, s in cands) + '\n')
  else:
    out.write((cands[0][0] if cands else '') + '\n')
  out.flush()
  return ok


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  user_words = None
  if args.user_words:
    try:
      user_words = lexicon_lib.read_user_words(args.user_words)
    except (OSError, ValueError) as e:
      print(f'pyhanzi: --user-words: {e}', file=sys.stderr)
      return 2
  try:
    conv = convert.Converter(args.model, beam_size=max(args.beam, args.nbest),
                             punctuation=args.punctuation, lm_weight=args.lm_weight,
                             lexicon_paths=args.lexicon_paths, lexicon_edits=args.lexicon_edits,
                             user_words=user_words)
  except lexicon_lib.UserWordError as e:
    print(f'pyhanzi: --user-words {args.user_words}: {e}', file=sys.stderr)
    return 2
  except (ckpt_lib.CheckpointError, FileNotFoundError, ValueError) as e:
    print(f'pyhanzi: cannot load the model: {e}', file=sys.stderr)
    return 2
  if args.eval:
    try:
      report = evaluate.evaluate_tsv(conv, args.eval, [f.strip() for f in args.forms.split(',')],
                                     args.topk, args.limit)
    except (OSError, ValueError) as e:
      print(f'pyhanzi: {e}', file=sys.stderr)
      return 2
    print(json.dumps(report, indent=2))
    return 0
  if args.text:
    return 0 if _emit(conv, ' '.join(args.text), args, sys.stdout) else 1
  if args.warmup:
    print(f'pyhanzi: warmed up in {conv.warmup(k=max(args.nbest, 1)):.1f} s', file=sys.stderr)
  failed = False
  for line in sys.stdin:
    failed |= not _emit(conv, line.rstrip('\r\n'), args, sys.stdout)
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
