"""The RIME plug-in (pyhanzi_jax/rime/pyhanzi.lua) in the real engine.

tests/rime_harness.c, compiled here against librime, deploys a temporary user dir holding the
shipped luna_pinyin.custom.yaml patch and lua/pyhanzi.lua, types keys into a Luna Pinyin
session and prints each key's time and the menu. Skips when librime's headers, the Lua plug-in
or Luna Pinyin's data are absent (.ci/run installs them: librime-dev librime-plugin-lua
rime-data-luna-pinyin lua-socket gcc).
"""
import glob
import json
import os
import shutil
import socket
import subprocess
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGIN_DIR = os.path.join(os.path.dirname(HERE), 'pyhanzi_jax', 'rime')
SHARED_DIR = '/usr/share/rime-data'
KEYS = 'nihaoshijie'


def _missing() -> str:
  if not shutil.which('gcc'):
    return 'gcc'
  if subprocess.run(['pkg-config', '--exists', 'rime'], check=False).returncode:
    return 'librime-dev (pkg-config rime)'
  if not glob.glob('/usr/lib/*/rime-plugins/librime-lua.so'):
    return 'librime-plugin-lua'
  if not os.path.isfile(os.path.join(SHARED_DIR, 'luna_pinyin.schema.yaml')):
    return 'rime-data-luna-pinyin'
  return ''


pytestmark = pytest.mark.skipif(
    bool(shutil.which('pkg-config') is None or _missing()),
    reason=f'needs {shutil.which("pkg-config") and _missing() or "pkg-config"} (Debian: '
    'apt-get install gcc pkg-config librime-dev librime-plugin-lua rime-data-luna-pinyin '
    'lua-socket)')


@pytest.fixture(scope='module')
def harness(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('rime') / 'rime_harness')
  flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'rime'], capture_output=True,
                         text=True, check=True).stdout.split()
  subprocess.run(['gcc', '-O2', '-Wall', '-o', out, os.path.join(HERE, 'rime_harness.c'),
                  *flags], check=True)
  return out


def _user_dir(root, port=None, **settings):
  """A RIME user dir with Luna Pinyin; with the shipped patch and plug-in unless port is None.
  settings replace the patch's pyhanzi/ values (or are added)."""
  os.makedirs(root)
  with open(os.path.join(root, 'default.custom.yaml'), 'w', encoding='utf-8') as f:
    f.write('patch:\n  schema_list:\n    - schema: luna_pinyin\n  menu/page_size: 9\n')
  if port is None:
    return root
  with open(os.path.join(PLUGIN_DIR, 'luna_pinyin.custom.yaml'), encoding='utf-8') as f:
    lines = f.read().splitlines()
  settings = {'port': port, 'translator/enable_user_dict': 'false', **settings}
  patched = []
  for line in lines:
    key = line.strip().split(':')[0]
    if line.startswith('    ') and key in settings:
      line = f'    {key}: {json.dumps(settings.pop(key))}'
    patched.append(line)
  patched += [f'    {k}: {json.dumps(v)}' for k, v in settings.items() if '/' not in k]
  patched += [f'  {k}: {v}' for k, v in settings.items() if '/' in k]
  with open(os.path.join(root, 'luna_pinyin.custom.yaml'), 'w', encoding='utf-8') as f:
    f.write('\n'.join(patched) + '\n')
  os.makedirs(os.path.join(root, 'lua'))
  shutil.copy(os.path.join(PLUGIN_DIR, 'pyhanzi.lua'), os.path.join(root, 'lua'))
  return root


def _type(harness, user_dir, keys=KEYS, rounds=1):
  """(per-key seconds, [(text, comment)] of the menu's first page) after typing `keys`."""
  proc = subprocess.run([harness, '--user-dir', user_dir, '--rounds', str(rounds), keys],
                        capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 0, proc.stderr
  times, menu = [], []
  for line in proc.stdout.splitlines():
    kind, _, rest = line.partition(' ')
    if kind == 'key':
      times.append(int(rest.split()[1]) / 1e6)
    elif kind == 'cand':
      text, _, comment = rest.partition(' ')[2].partition('\t')
      menu.append((text, comment))
  assert 'lua' not in proc.stderr.lower(), proc.stderr  # A Lua error in the filter.
  return times, menu


def _closed_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def rime_own(harness, tmp_path_factory):
  """What Luna Pinyin offers for KEYS without the plug-in."""
  return _type(harness, _user_dir(str(tmp_path_factory.mktemp('own') / 'u')))[1]


@pytest.fixture(scope='module')
def served(served):  # pylint: disable=redefined-outer-name
  """conftest's server, with KEYS converted once: the first conversion of an input's shape
  compiles, which must happen before the timed typing."""
  req = urllib.request.Request(served.url + 'convert', json.dumps({'input': KEYS}).encode(),
                               {'Content-Type': 'application/json'})
  with urllib.request.urlopen(req, timeout=300) as resp:
    assert json.loads(resp.read())['candidates'][0]['text'] == '你好世界'
  return served


def _port(proc) -> int:
  return int(proc.url.rstrip('/').rsplit(':', 1)[1])


@pytest.mark.parametrize('transport', ['socket', 'curl'])
def test_the_servers_sentence_comes_first(harness, served, rime_own, tmp_path, transport):
  if transport == 'curl' and not shutil.which('curl'):
    pytest.skip('needs curl')
  # min_length: only the whole input asks, so no prefix's first compile is waited for; a
  # generous timeout because this checks the answer, not the speed (benchmarks/serve_load.py).
  user = _user_dir(str(tmp_path / 'u'), _port(served), comment='pyhanzi', min_length=len(KEYS),
                   timeout_ms=5000, transport=transport)
  _, menu = _type(harness, user)
  assert menu[0] == ('你好世界', 'pyhanzi'), menu
  assert [t for t, _ in menu].count('你好世界') == 1  # RIME's own copy is not repeated.
  assert [t for t, _ in menu[1:]] == [t for t, _ in rime_own if t != '你好世界'][:len(menu) - 1]


def test_position_puts_the_sentence_further_down(harness, served, rime_own, tmp_path):
  user = _user_dir(str(tmp_path / 'u'), _port(served), comment='pyhanzi', min_length=len(KEYS),
                   timeout_ms=5000, position=3)
  _, menu = _type(harness, user)
  own = [c for c in rime_own if c[0] != '你好世界']
  assert menu[:3] == [own[0], own[1], ('你好世界', 'pyhanzi')], menu


def test_server_down_leaves_rimes_list_and_costs_no_wait(harness, rime_own, tmp_path):
  user = _user_dir(str(tmp_path / 'u'), _closed_port(), comment='pyhanzi', backoff_ms=0)
  times, menu = _type(harness, user)
  assert menu == rime_own
  # A refused connection is answered at once: no key waits anything like the 150 ms timeout.
  assert sorted(times)[len(times) // 2] < 0.15, times


class _Silent:
  """A port that accepts connections and never answers (a hung server)."""

  def __enter__(self):
    self.sock = socket.socket()
    self.sock.bind(('127.0.0.1', 0))
    self.sock.listen(64)  # The kernel completes the handshakes; nobody reads.
    return self.sock.getsockname()[1]

  def __exit__(self, *exc):
    self.sock.close()


def test_a_hung_server_costs_at_most_the_timeout_per_key(harness, rime_own, tmp_path):
  timeout = 0.15
  with _Silent() as port:
    user = _user_dir(str(tmp_path / 'u'), port, backoff_ms=0, timeout_ms=int(timeout * 1000))
    times, menu = _type(harness, user)
  assert menu == rime_own
  assert min(times) >= timeout * 0.9, times        # Each key asked and waited...
  assert max(times) < timeout + 0.5, times         # ...but never much past the timeout.
  with _Silent() as port:  # After a failure the plug-in stops asking for backoff_ms.
    user = _user_dir(str(tmp_path / 'v'), port, backoff_ms=60000, timeout_ms=150)
    times, menu = _type(harness, user)
  assert menu == rime_own
  assert sum(t >= timeout * 0.9 for t in times) == 1, times


class _Canned(BaseHTTPRequestHandler):
  """Answers /convert with an ASCII-escaped JSON body (\\u escapes, a surrogate pair), or a
  400 for 'nihaoshijiex'."""

  def do_POST(self):  # pylint: disable=invalid-name
    text = json.loads(self.rfile.read(int(self.headers['Content-Length'])))['input']
    status, obj = (400, {'error': 'no'}) if text.endswith('x') else (
        200, {'input': text, 'candidates': [{'text': '你好"世界"😀', 'score': -1.0}]})
    body = json.dumps(obj, ensure_ascii=True).encode()
    self.send_response(status)
    self.send_header('Content-Length', str(len(body)))
    self.end_headers()
    self.wfile.write(body)

  def log_message(self, *args):
    pass


@pytest.fixture
def canned():
  httpd = ThreadingHTTPServer(('127.0.0.1', 0), _Canned)
  thread = threading.Thread(target=httpd.serve_forever, kwargs={'poll_interval': 0.05})
  thread.start()
  try:
    yield httpd.server_address[1]
  finally:
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.mark.parametrize('transport', ['socket', 'curl'])
def test_the_plugin_reads_escaped_json(harness, canned, tmp_path, transport):
  if transport == 'curl' and not shutil.which('curl'):
    pytest.skip('needs curl')
  user = _user_dir(str(tmp_path / 'u'), canned, timeout_ms=5000, transport=transport)
  assert _type(harness, user)[1][0][0] == '你好"世界"😀'


def test_an_error_answer_leaves_rimes_list(harness, canned, tmp_path):
  _, own = _type(harness, _user_dir(str(tmp_path / 'own')), keys=KEYS + 'x')
  _, menu = _type(harness, _user_dir(str(tmp_path / 'u'), canned, timeout_ms=5000),
                  keys=KEYS + 'x')
  assert menu == own


def test_plugin_settings_are_read_from_the_shipped_patch():
  with open(os.path.join(PLUGIN_DIR, 'luna_pinyin.custom.yaml'), encoding='utf-8') as f:
    patch = f.read()
  with open(os.path.join(PLUGIN_DIR, 'pyhanzi.lua'), encoding='utf-8') as f:
    plugin = f.read()
  assert 'lua_filter@*pyhanzi' in patch
  for key in ('host', 'port', 'timeout_ms', 'backoff_ms', 'position', 'count', 'comment'):
    assert f'    {key}:' in patch, key
    assert f"'{key}'" in plugin or f"'pyhanzi/{key}'" in plugin, key
