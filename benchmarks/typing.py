r"""Typing through the `pyhanzi` process, one letter at a time, as an input method drives it.

  .venv/bin/python -m benchmarks.typing                      # built-in everyday sentences
  .venv/bin/python -m benchmarks.typing --tsv data/dev_dialogue/test.tsv --sentences 20

Starts the command a user starts (`pyhanzi --json --nbest K --warmup`, reading standard
input; --warmup because this benchmark types its first key at once, which pyhanzi would
otherwise take for a piped file and skip the warm-up) and, for each sentence, writes every prefix of its run-together pinyin
(`w`, `wo`, `woj`, ...) as one line and waits for that line's answer, as an input method
converts at every keystroke. Reports:
- start-up: from starting the process to its first answer (imports, loading, warm-up);
- per keystroke: p50 / p95 / max milliseconds from writing a line to reading its answer, and
  how many keystrokes took over 100 ms (a stall a typist notices).
The issue's goals (issue 19): p50 <= 30 ms, max <= 100 ms after the first answer.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Everyday sentences (the issue's own examples first), typed without spaces.
SENTENCES = (
    'wojintianqushangban', 'dajiahao', 'ni', 'a', 'nizaiganshenme', 'zaoshanghao',
    'mingtianxiawusandiankaihui', 'qingbawenjianfageiwo', 'womenyiqiquchifanba',
    'zhegewentihennanjiejue', 'jintiantianqibucuo', 'tashiyigehaoren',
    'wanshangqikandianyingma', 'xiexienidebangzhu', 'zhegedifangzenmezou',
)


def pyhanzi_command() -> list[str]:
  """The `pyhanzi` command of this checkout's environment (its console script if installed)."""
  script = os.path.join(os.path.dirname(sys.executable), 'pyhanzi')
  return [script] if os.path.exists(script) else [sys.executable, '-m', 'pyhanzi_jax.cli']


def sentences_from_tsv(path: str, count: int) -> list[str]:
  """The first `count` lines' pinyin, run together, punctuation dropped (what one types for a
  sentence between punctuation marks)."""
  out = []
  with open(path, encoding='utf-8') as f:
    for line in f:
      syllables = [s for s in line.split('\t')[0].split() if s.isascii() and s.isalpha()]
      if syllables:
        out.append(''.join(syllables))
      if len(out) == count:
        break
  return out


class Process:
  """`pyhanzi` with pipes: ask(line) -> (answer JSON, seconds)."""

  def __init__(self, args: list[str]):
    self.proc = subprocess.Popen(pyhanzi_command() + args, cwd=ROOT, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    self.stderr: list[str] = []
    threading.Thread(target=self._read_stderr, daemon=True).start()

  def _read_stderr(self):
    for line in self.proc.stderr:
      self.stderr.append(line.decode('utf-8', 'replace'))

  def ask(self, text: str) -> tuple[dict, float]:
    t = time.perf_counter()
    self.proc.stdin.write(text.encode('utf-8') + b'\n')
    self.proc.stdin.flush()
    line = self.proc.stdout.readline()
    elapsed = time.perf_counter() - t
    if not line:
      raise RuntimeError('pyhanzi stopped:\n' + ''.join(self.stderr[-20:]))
    return json.loads(line), elapsed

  def close(self) -> int:
    self.proc.stdin.close()
    return self.proc.wait(60)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--model', help='bundle or workdir (default: the release model)')
  ap.add_argument('--tsv', help='take the sentences from this test TSV instead of the built-in '
                  'ones')
  ap.add_argument('--sentences', type=int, default=20, help='sentences from --tsv')
  ap.add_argument('--nbest', type=int, default=5, help='candidates per answer (an IME shows a few)')
  ap.add_argument('--extra', default='', help='more pyhanzi options, e.g. "--no-warmup"')
  ap.add_argument('--json', action='store_true', help='print the summary as JSON too')
  args = ap.parse_args(argv)

  texts = sentences_from_tsv(args.tsv, args.sentences) if args.tsv else list(SENTENCES)
  cmd = ['--json', '--nbest', str(args.nbest), '--warmup'] + (['--model', args.model]
                                                               if args.model else [])
  cmd += args.extra.split()
  load0 = os.getloadavg()[0]
  t0 = time.perf_counter()
  proc = Process(cmd)
  first, first_s = proc.ask(texts[0][:1])  # Start-up: until the first answer.
  startup = time.perf_counter() - t0
  keys, slow = [], []
  for text in texts:
    for i in range(1, len(text) + 1):
      answer, seconds = proc.ask(text[:i])
      keys.append(seconds)
      if seconds > 0.1:
        slow.append((text[:i], round(1e3 * seconds)))
      if 'candidates' not in answer:
        print(f'{text[:i]}: {answer.get("error")}', file=sys.stderr)
  status = proc.close()
  ms = 1e3 * np.asarray(keys)
  summary = {
      'command': ' '.join(['pyhanzi'] + cmd), 'sentences': len(texts), 'keystrokes': len(keys),
      'startup_s': round(startup, 2), 'first_answer_ms': round(1e3 * first_s, 1),
      'p50_ms': round(float(np.percentile(ms, 50)), 1),
      'p95_ms': round(float(np.percentile(ms, 95)), 1), 'max_ms': round(float(ms.max()), 1),
      'over_100ms': len(slow), 'load': [round(load0, 2), round(os.getloadavg()[0], 2)],
      'warmup_line': next((l.strip() for l in proc.stderr if 'warmed up' in l), None),
      'exit_status': status}
  print(f'{summary["command"]}: {len(texts)} sentences, {len(keys)} keystrokes, load '
        f'{load0:.2f} -> {os.getloadavg()[0]:.2f}')
  print(f'start-up (process start to first answer): {startup:.2f} s '
        f'({summary["warmup_line"] or "no warm-up line"})')
  print(f'per keystroke: p50 {summary["p50_ms"]} ms, p95 {summary["p95_ms"]} ms, max '
        f'{summary["max_ms"]} ms; {len(slow)} over 100 ms {slow[:10]}')
  if args.json:
    print(json.dumps(summary))
  return summary


if __name__ == '__main__':
  main()
