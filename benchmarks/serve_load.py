r"""What `pyhanzi serve` answers under load, and what the RIME plug-in adds to a keystroke.

  .venv/bin/python -m benchmarks.serve_load [--model PATH] [--requests 40] [--rounds 20]
      [--no-rime] [--compare-batching]

Against 127.0.0.1 only, bounded: each client sends --requests requests and stops.
- /convert: requests per second and p50 / p95 latency at 1, 4 and 16 concurrent clients, each
  client on its own keep-alive connection, over a fixed set of everyday sentences (k=5); first
  the latency of each sentence's first conversion after the ready line (what warm-up left to
  compile), then an unmeasured 16-client pass (batched shapes). --compare-batching runs a
  second server with --max-batch 1 for the same numbers without batching.
- RIME: tests/rime_harness.c types `nihaoshijie` --rounds times into Luna Pinyin (librime's C
  API) with the plug-in absent, with it and the server up, and with it and the server down
  (a closed port); per-key process_key + get_context time, the first round (lazy loading) left
  out, and the share of keys on which pyhanzi's sentence came first (answered within the
  150 ms timeout; with the server up the back-off is off, so every key asks). "added" is the
  difference of the medians to the plug-in absent.
Prints the machine's load average before and after: on a shared machine say how busy it was.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import glob
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

from pyhanzi_jax import server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN_DIR = os.path.join(ROOT, 'pyhanzi_jax', 'rime')
HARNESS_C = os.path.join(ROOT, 'tests', 'rime_harness.c')
KEYS = 'nihaoshijie'
SENTENCES = [
    'nihaoshijie', 'jintiantianqihenhao', 'womenyiqiquchifan', 'tamingtianqubeijing',
    'zhegewentihenzhongyao', 'qingbangwokaimen', 'woxihuankanshu', 'nizaiganshenme',
    'zhongguorenmin', 'xiexienidebangzhu', 'womenxiawukaihui', 'zhejianshiqinghenjiandan',
    'diannaohuaile', 'tadedianhuahaoma', 'mingtianjiandao', 'zaoshanghao',
]


def _percentile(values: list[float], q: float) -> float:
  values = sorted(values)
  return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _client(port: int, texts: list[str]) -> list[float]:
  """Seconds per request of one client sending `texts` in turn on one connection."""
  conn = http.client.HTTPConnection('127.0.0.1', port, timeout=300)
  times = []
  try:
    for text in texts:
      t = time.perf_counter()
      conn.request('POST', '/convert', json.dumps({'input': text, 'k': 5}),
                   {'Content-Type': 'application/json'})
      resp = conn.getresponse()
      body = resp.read()
      if resp.status != 200:
        raise RuntimeError(f'{resp.status}: {body[:200]!r}')
      times.append(time.perf_counter() - t)
  finally:
    conn.close()
  return times


def load(port: int, clients: int, requests: int) -> dict:
  """Requests per second and latency percentiles of `clients` concurrent clients."""
  plans = [[SENTENCES[(c * 5 + i) % len(SENTENCES)] for i in range(requests)]
           for c in range(clients)]
  t = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(clients) as pool:
    times = [x for r in pool.map(lambda p: _client(port, p), plans) for x in r]
  wall = time.perf_counter() - t
  return {'clients': clients, 'requests': len(times), 'rps': len(times) / wall,
          'p50_ms': 1000 * _percentile(times, 0.5), 'p95_ms': 1000 * _percentile(times, 0.95)}


def serve_numbers(args, extra: list[str], cache: str) -> list[dict]:
  with server.ServerProcess(['--port', '0', '--timeout', '600', '--compile-cache', cache,
                             *(['--model', args.model] if args.model else []), *extra],
                            timeout_s=1800) as proc:
    port = int(proc.url.rstrip('/').rsplit(':', 1)[1])
    print('  ' + next(line for line in proc.lines if ' ready on ' in line).strip(), flush=True)
    # First use after the ready line: what warm-up left to compile shows here.
    first = load(port, 1, len(SENTENCES))
    print(f"  first conversion of each sentence after ready: p50 {first['p50_ms']:.0f} ms, "
          f"p95 {first['p95_ms']:.0f} ms", flush=True)
    t = time.perf_counter()
    for _ in range(2):
      load(port, 16, 4)  # Unmeasured: the batched shapes they fall into.
    print(f'  (16-client warm pass: {time.perf_counter() - t:.0f} s)', flush=True)
    return [load(port, c, args.requests) for c in (1, 4, 16)]


# --- RIME ----------------------------------------------------------------------------------------


def _user_dir(root: str, port: int | None, backoff_ms: int = 2000) -> str:
  os.makedirs(os.path.join(root, 'lua'))
  with open(os.path.join(root, 'default.custom.yaml'), 'w', encoding='utf-8') as f:
    f.write('patch:\n  schema_list:\n    - schema: luna_pinyin\n  menu/page_size: 9\n')
  if port is not None:
    with open(os.path.join(PLUGIN_DIR, 'luna_pinyin.custom.yaml'), encoding='utf-8') as f:
      patch = f.read()
    patch = (patch.replace('port: 8765', f'port: {port}')
             .replace('backoff_ms: 2000', f'backoff_ms: {backoff_ms}')
             .replace('comment: ""', 'comment: "pyhanzi"'))
    with open(os.path.join(root, 'luna_pinyin.custom.yaml'), 'w', encoding='utf-8') as f:
      f.write(patch + '  translator/enable_user_dict: false\n')
    shutil.copy(os.path.join(PLUGIN_DIR, 'pyhanzi.lua'), os.path.join(root, 'lua'))
  return root


def _keystrokes(harness: str, user_dir: str, rounds: int) -> tuple[list[float], float]:
  """Milliseconds per key after the first round, and the share of those keys whose first
  candidate was pyhanzi's (answered within the timeout)."""
  out = subprocess.run([harness, '--user-dir', user_dir, '--rounds', str(rounds), KEYS],
                       capture_output=True, text=True, check=True, timeout=600).stdout
  keys = [line.split() for line in out.splitlines() if line.startswith('key ')][len(KEYS):]
  return [int(k[2]) / 1000 for k in keys], sum(k[3:] == ['pyhanzi'] for k in keys) / len(keys)


def rime_numbers(args, tmp: str) -> list[dict] | str:
  if not (shutil.which('gcc') and glob.glob('/usr/lib/*/rime-plugins/librime-lua.so')):
    return 'skipped: needs gcc, librime-dev and librime-plugin-lua'
  harness = os.path.join(tmp, 'rime_harness')
  flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'rime'], capture_output=True,
                         text=True, check=True).stdout.split()
  subprocess.run(['gcc', '-O2', '-o', harness, HARNESS_C, *flags], check=True)
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    closed = s.getsockname()[1]
  rows = []
  with server.ServerProcess(['--port', '0', '--timeout', '600', '--warmup-syllables', '0',
                             *(['--model', args.model] if args.model else [])],
                            timeout_s=900) as proc:
    port = int(proc.url.rstrip('/').rsplit(':', 1)[1])
    for n in range(1, len(KEYS) + 1):  # Each prefix's shape compiles before the timed typing.
      req = urllib.request.Request(proc.url + 'convert',
                                   json.dumps({'input': KEYS[:n], 'k': 1}).encode(),
                                   {'Content-Type': 'application/json'})
      urllib.request.urlopen(req, timeout=600).read()
    # Server up without back-off: every key asks, even after one that timed out.
    for name, p, backoff in (('plug-in absent', None, 0), ('server up', port, 0),
                             ('server down', closed, 2000)):
      user = _user_dir(os.path.join(tmp, name), p, backoff)
      times, answered = _keystrokes(harness, user, args.rounds)
      rows.append({'case': name, 'keys': len(times), 'p50_ms': _percentile(times, 0.5),
                   'p95_ms': _percentile(times, 0.95), 'mean_ms': statistics.mean(times),
                   'max_ms': max(times), 'answered': answered})
  base = rows[0]['p50_ms']
  for row in rows:
    row['added_p50_ms'] = row['p50_ms'] - base
  return rows


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--model', help='bundle (default: the release model)')
  ap.add_argument('--requests', type=int, default=40, help='requests per client')
  ap.add_argument('--rounds', type=int, default=20, help='times nihaoshijie is typed in RIME')
  ap.add_argument('--no-rime', action='store_true', help='skip the keystroke measurement')
  ap.add_argument('--compare-batching', action='store_true',
                  help='also measure a server with --max-batch 1')
  args = ap.parse_args(argv)
  print(f'load average before: {os.getloadavg()}, {os.cpu_count()} CPUs', flush=True)
  configs = [('batched (--max-batch 8 --min-batch 6)', [])]
  if args.compare_batching:
    configs.append(('unbatched (--max-batch 1)', ['--max-batch', '1']))
  # One compile cache for the run: the first server starts cold, the second from the cache
  # (what a restart costs).
  cache = tempfile.mkdtemp(prefix='pyhanzi-jax-cache-')
  for name, extra in configs:
    print(f'/convert, {name}:', flush=True)
    for row in serve_numbers(args, extra, cache):
      print(f"  {row['clients']:2d} clients: {row['rps']:6.1f} req/s, p50 {row['p50_ms']:6.1f} "
            f"ms, p95 {row['p95_ms']:6.1f} ms ({row['requests']} requests)", flush=True)
    print(f'  load average: {os.getloadavg()}', flush=True)
  shutil.rmtree(cache, ignore_errors=True)
  if not args.no_rime:
    with tempfile.TemporaryDirectory(prefix='pyhanzi-rime-') as tmp:
      rows = rime_numbers(args, tmp)
    print('RIME keystroke (process_key + get_context), nihaoshijie:')
    if isinstance(rows, str):
      print('  ' + rows)
    else:
      for r in rows:
        print(f"  {r['case']:15s} p50 {r['p50_ms']:6.2f} ms (added {r['added_p50_ms']:+6.2f}), "
              f"p95 {r['p95_ms']:6.2f}, mean {r['mean_ms']:6.2f}, max {r['max_ms']:6.1f} ms "
              f"over {r['keys']} keys; pyhanzi's sentence first on {r['answered']:.0%}")
  print(f'load average after: {os.getloadavg()}', flush=True)
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
