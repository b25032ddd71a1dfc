r"""Peak memory of converting the longest line the converter accepts (pinyin.MAX_INPUT_CHARS).

  .venv/bin/python -m benchmarks.long_line_memory --form spaced [--model pyhanzi_jax/release]

One form per process, since peak RSS (getrusage's ru_maxrss) only grows: the converter is loaded
and converts one short line, then one line of MAX_INPUT_CHARS characters made of the form's
unit repeated (spaced syllables, run together, initials, or cut at punctuation). Prints the peak
RSS after each and the seconds the long line took (compiles included). docs/RELIABILITY.md has
the numbers.
"""
from __future__ import annotations

import argparse
import resource
import time

from pyhanzi_jax import convert
from pyhanzi_jax import pinyin

UNITS = {'spaced': 'ni hao shi jie ', 'together': 'nihaoshijie', 'initials': 'nhsjzgr',
         'punct': 'ni hao shi jie，'}


def peak_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> None:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument('--form', choices=sorted(UNITS), default='spaced')
  ap.add_argument('--model', default=None, help='bundle or workdir (default: the release)')
  args = ap.parse_args(argv)
  conv = convert.Converter(args.model)
  conv.convert('ni hao')
  loaded = peak_mb()
  unit = UNITS[args.form]
  text = (unit * (pinyin.MAX_INPUT_CHARS // len(unit) + 1))[:pinyin.MAX_INPUT_CHARS].strip()
  t0 = time.perf_counter()
  out = conv.convert(text)
  print(f'{args.form}: {len(text)} characters, {len(pinyin.parse(text))} tokens -> {len(out)} '
        f'characters in {time.perf_counter() - t0:.1f} s; peak RSS after loading {loaded:.0f} MB, '
        f'after the line {peak_mb():.0f} MB')


if __name__ == '__main__':
  main()
