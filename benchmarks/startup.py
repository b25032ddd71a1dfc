r"""Start-up of the `pyhanzi` command as a user meets it: wall time and peak memory of one call.

  python -m benchmarks.startup                       # 5 cold and 5 warm runs of pyhanzi ni hao
  python -m benchmarks.startup --runs 3 --text 'wo men'

Runs the installed entry point (`.venv/bin/pyhanzi TEXT`, a new process each time) with the
compile cache (compile_cache.py) pointed at a fresh directory for every cold run, and at one
directory filled by an untimed run for the warm ones. Reports the median wall seconds, the
median CPU seconds and the largest peak RSS (the child's own, from wait4) of each, beside issue
19's goals. The operating
system's file cache is warm in both (the package's files were read by the run before): "cold"
is a first call after the compile cache was emptied, not after a reboot.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_COMMAND = os.path.join(ROOT, '.venv', 'bin', 'pyhanzi')
# Issue 19: `pyhanzi ni hao` <= 5 s on the very first call, <= 1.5 s on a second, <= 400 MB.
GOALS = {'cold': 5.0, 'warm': 1.5, 'rss_mb': 400.0}


def run_once(command: list[str], cache_dir: str) -> tuple[float, float, float, str]:
  """(wall seconds, CPU seconds (user + system), peak RSS in MB, stdout) of one run;
  RuntimeError if it fails. On a shared machine the CPU seconds move less with the load."""
  env = dict(os.environ, PYHANZI_COMPILE_CACHE=cache_dir)
  start = time.perf_counter()
  proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
  out, err = proc.stdout.read(), proc.stderr.read()
  _, status, usage = os.wait4(proc.pid, 0)
  wall = time.perf_counter() - start
  proc.returncode = os.waitstatus_to_exitcode(status)
  proc.stdout.close()
  proc.stderr.close()
  if proc.returncode != 0:
    raise RuntimeError(f'{" ".join(command)} exited {proc.returncode}: {err.decode()[-500:]}')
  return (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
          out.decode('utf-8').strip())


def load() -> str:
  """The 1, 5 and 15 minute load averages (the machine is shared: say how busy it was)."""
  return ' '.join(f'{x:.2f}' for x in os.getloadavg())


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument('--runs', type=int, default=5, help='cold runs, and warm runs (each)')
  ap.add_argument('--text', default='ni hao', help='what to convert')
  ap.add_argument('--command', default=DEFAULT_COMMAND, help='the pyhanzi entry point')
  args = ap.parse_args(argv)
  command = [args.command, *args.text.split()]
  print(f'{" ".join(command)}; {args.runs} cold + {args.runs} warm runs; load average before '
        f'{load()}', flush=True)
  root = tempfile.mkdtemp(prefix='pyhanzi_startup_')
  rows = {}
  try:
    cold = [run_once(command, os.path.join(root, f'cold{i}')) for i in range(args.runs)]
    warm_dir = os.path.join(root, 'warm')
    run_once(command, warm_dir)  # Fills the cache.
    warm = [run_once(command, warm_dir) for _ in range(args.runs)]
  finally:
    shutil.rmtree(root, ignore_errors=True)
  outputs = {o for *_, o in cold + warm}
  for name, runs in (('cold', cold), ('warm', warm)):
    walls = [w for w, *_ in runs]
    rows[name] = (statistics.median(walls), min(walls), max(walls),
                  statistics.median(c for _, c, _, _ in runs), max(r for _, _, r, _ in runs))
  print(f'output: {" / ".join(sorted(outputs))}')
  print(f'{"compile cache":14s} {"median s":>9s} {"min s":>7s} {"max s":>7s} {"goal s":>7s} '
        f'{"median CPU s":>13s} {"max RSS MB":>11s} {"goal MB":>8s}')
  for name, (median, low, high, cpu, rss) in rows.items():
    print(f'{name:14s} {median:9.2f} {low:7.2f} {high:7.2f} {GOALS[name]:7.1f} {cpu:13.2f} '
          f'{rss:11.0f} {GOALS["rss_mb"]:8.0f}')
  print(f'load average after {load()}')
  return 0 if len(outputs) == 1 else 1


if __name__ == '__main__':
  sys.exit(main())
