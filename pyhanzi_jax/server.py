r"""`pyhanzi serve`: a local conversion server for input methods and the typing page.

  pyhanzi serve                          # http://127.0.0.1:8765/, the release model
  python -m pyhanzi_jax.server --port 0  # any free port; the ready line names it

  curl -s localhost:8765/convert -H 'Content-Type: application/json' \
       -d '{"input": "nihaoshijie", "k": 3}'
  {"input": "nihaoshijie", "candidates": [{"text": "你好世界", "score": -6.6215}, ...]}

Endpoints
- POST /convert: {"input": pinyin, "k": 1-10 (default 5), "context": text committed before
  this input (optional; accepted and not used yet: the model reads one sentence, and the
  answer says "context_used": false), "timeout_ms": how long the client waits (optional; a
  request still queued after it is dropped, not converted for nobody)}. Answers {"input",
  "candidates": [{"text", "score"}, ...]}, best first. A problem with the request is a 4xx
  with {"error": "..."} naming it; 503 when the queue is full, 504 past the time limit, 500
  (logged) for anything unexpected. The server stays up after every request.
- GET /health: {"status": "ok", ...} for scripts.
- GET /: the typing page (pyhanzi_jax/web/), served from the package, no network needed.

How requests reach the model
The Converter is not thread-safe, so one worker thread owns it. Connection threads put jobs
on a queue whose size is bounded (admission counts jobs not yet answered), wait for their
answer up to the time limit, and answer. The worker takes the oldest job and, when at least
`min_batch` jobs with the same k are waiting, converts up to `max_batch` of them in one
candidates_batch call (decoding pads a batch to 8). Measured on the busy 2-core machine
(benchmarks/RESULTS.md): 16 clients got 47 requests/s batched against 35 unbatched, but 4
clients 21 against 34 (groups of 4 cost more as a batch of 8 than one at a time), so groups
of fewer than 6 go one at a time.

Warm-up compiles the shapes typing meets (Converter.warmup) before the ready line, and compiled
programs are kept on disk (--compile-cache), so a restart is ready sooner.

Bound to loopback unless told otherwise; while it is, requests must name a loopback Host (a
web page elsewhere cannot reach it by DNS rebinding), and POST /convert must be sent as
application/json (a cross-site form cannot send that without a CORS preflight, which this
server does not grant).
"""
from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Sequence

DEFAULT_HOST = '127.0.0.1'
DEFAULT_PORT = 8765
WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'web')
# The typing page's files: a fixed list, so no request path ever reaches the file system.
WEB_FILES = {'/': ('index.html', 'text/html; charset=utf-8'),
             '/index.html': ('index.html', 'text/html; charset=utf-8'),
             '/app.js': ('app.js', 'text/javascript; charset=utf-8'),
             '/style.css': ('style.css', 'text/css; charset=utf-8')}
REQUEST_FIELDS = frozenset({'input', 'k', 'context', 'timeout_ms'})

log = logging.getLogger('pyhanzi.serve')


@dataclasses.dataclass(frozen=True)
class Limits:
  """What one request may ask for, so that one client cannot starve the rest."""
  max_input: int = 200        # Characters of pinyin; a sentence is far shorter.
  max_context: int = 2000     # Characters of context.
  max_body: int = 16 * 1024   # Bytes of a request body (413 above).
  max_k: int = 10             # Above the release bundle's 4 beams + 8 proposals k widens the beam.
  timeout_s: float = 10.0     # Longest a request waits for its answer (504 after).
  max_connections: int = 64   # Open connections (each holds a thread); more get 503.


class RequestError(Exception):
  """A request the server refuses: the HTTP status and a message naming the problem."""

  def __init__(self, status: HTTPStatus, message: str):
    super().__init__(message)
    self.status = status


@dataclasses.dataclass(frozen=True)
class ConvertRequest:
  text: str
  k: int
  context: str | None
  timeout_s: float


def parse_request(body: bytes, limits: Limits) -> ConvertRequest:
  """The fields of a POST /convert body; RequestError (400) naming what is wrong."""
  bad = HTTPStatus.BAD_REQUEST
  try:
    obj = json.loads(body.decode('utf-8'))
  except UnicodeDecodeError:
    raise RequestError(bad, 'the body is not UTF-8') from None
  except json.JSONDecodeError as e:
    raise RequestError(bad, f'the body is not JSON: {e}') from None
  if not isinstance(obj, dict):
    raise RequestError(bad, f'the body must be a JSON object, got {type(obj).__name__}')
  unknown = sorted(set(obj) - REQUEST_FIELDS)
  if unknown:
    raise RequestError(bad, f'unknown field {unknown[0]!r}; the fields are '
                       f'{", ".join(sorted(REQUEST_FIELDS))}')
  if 'input' not in obj:
    raise RequestError(bad, 'missing field "input" (the pinyin to convert)')
  text = obj['input']
  if not isinstance(text, str):
    raise RequestError(bad, f'"input" must be a string, got {_json_type(text)}')
  if len(text) > limits.max_input:
    raise RequestError(bad, f'"input" is {len(text)} characters long; at most '
                       f'{limits.max_input} are converted at once')
  k = obj.get('k', 5)
  if not _is_int(k):
    raise RequestError(bad, f'"k" must be a whole number, got {_json_type(k)}')
  if not 1 <= k <= limits.max_k:
    raise RequestError(bad, f'"k" must be between 1 and {limits.max_k}, got {k}')
  context = obj.get('context')
  if context is not None and not isinstance(context, str):
    raise RequestError(bad, f'"context" must be a string, got {_json_type(context)}')
  if context is not None and len(context) > limits.max_context:
    raise RequestError(bad, f'"context" is {len(context)} characters long; at most '
                       f'{limits.max_context} are accepted')
  timeout_s = limits.timeout_s
  if 'timeout_ms' in obj:
    ms = obj['timeout_ms']
    if not _is_int(ms) or ms < 1:
      raise RequestError(bad, f'"timeout_ms" must be a whole number >= 1, got {ms!r}')
    timeout_s = min(timeout_s, ms / 1000)
  return ConvertRequest(text, k, context, timeout_s)


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value) -> str:
  return {str: 'a string', bool: 'true/false', int: 'a number', float: 'a number',
          list: 'a list', dict: 'an object', type(None): 'null'}.get(type(value), 'a value')


# --- the worker that owns the converter ---------------------------------------------------------


class QueueFull(Exception):
  """More jobs are waiting than the queue admits (503)."""


class Expired(Exception):
  """A job not answered within its time limit (504)."""


@dataclasses.dataclass(eq=False)
class _Job:
  text: str
  k: int
  deadline: float
  done: threading.Event = dataclasses.field(default_factory=threading.Event)
  result: list | None = None
  error: BaseException | None = None
  abandoned: bool = False


class ConversionWorker:
  """One thread that owns the converter and answers jobs from a bounded queue.

  convert_batch: (texts, k) -> one [(text, score), ...] list per text; raises for a bad text
    (ConversionError), in which case the group's texts are retried one by one, so a bad
    input fails alone.
  """

  def __init__(self, convert_batch: Callable[[Sequence[str], int], list], *,
               queue_size: int = 64, max_batch: int = 8, min_batch: int = 6):
    self._convert_batch = convert_batch
    self.max_batch, self.min_batch = max(1, max_batch), max(1, min_batch)
    self._queue: queue.SimpleQueue = queue.SimpleQueue()
    self._slots = threading.BoundedSemaphore(queue_size)  # Jobs admitted and not answered.
    self._waiting: list[_Job] = []  # Taken off the queue, not yet converted (worker only).
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, name='pyhanzi-worker', daemon=True)
    self.queue_size = queue_size
    self._count_lock = threading.Lock()
    self.in_flight = 0
    self.calls = 0  # Calls of convert_batch (one per group).
    self.converted = 0

  def start(self) -> None:
    self._thread.start()

  def stop(self, timeout: float = 5.0) -> None:
    self._stop.set()
    self._queue.put(None)
    self._thread.join(timeout)

  def submit(self, text: str, k: int, timeout_s: float) -> list[tuple[str, float]]:
    """Candidates of one text; QueueFull, Expired, or the converter's exception."""
    if not self._slots.acquire(blocking=False):
      raise QueueFull(f'{self.queue_size} requests are already waiting; try again shortly')
    job = _Job(text, k, time.monotonic() + timeout_s)
    self._count(+1)
    try:
      self._queue.put(job)
      if not job.done.wait(timeout_s):
        job.abandoned = True  # The worker skips it if it has not started it.
        raise Expired(f'no answer within {timeout_s:g} s (the server is busy)')
      if job.error is not None:
        raise job.error
      return job.result
    finally:
      self._count(-1)
      self._slots.release()

  def _count(self, delta: int) -> None:
    with self._count_lock:
      self.in_flight += delta

  def _run(self) -> None:
    while not self._stop.is_set():
      group = self._next_group()
      if group:
        self._convert(group)

  def _next_group(self) -> list[_Job]:
    """The oldest live job and, if enough are waiting, others with the same k."""
    if not self._waiting:
      job = self._queue.get()
      if job is None:
        return []
      self._waiting.append(job)
    while len(self._waiting) < 4 * self.max_batch:  # Drain what has arrived meanwhile.
      try:
        job = self._queue.get_nowait()
      except queue.Empty:
        break
      if job is not None:
        self._waiting.append(job)
    now = time.monotonic()
    live = []
    for job in self._waiting:
      if job.abandoned or job.deadline <= now:
        job.error = Expired('the request expired before it was converted')
        job.done.set()
      else:
        live.append(job)
    if not live:
      self._waiting = []
      return []
    same = [j for j in live if j.k == live[0].k]
    group = same[:self.max_batch] if len(same) >= self.min_batch else same[:1]
    self._waiting = [j for j in live if j not in group]
    return group

  def _convert(self, group: list[_Job]) -> None:
    try:
      results = self._convert_batch([j.text for j in group], group[0].k)
      self.calls += 1
    except Exception as e:  # pylint: disable=broad-except
      if len(group) > 1:  # One bad text fails the batch call: find it by converting singly.
        for job in group:
          self._convert([job])
        return
      results, error = None, e
    else:
      error = None
    for i, job in enumerate(group):
      job.result, job.error = (results[i], None) if results is not None else (None, error)
      job.done.set()
    self.converted += len(group)


# --- HTTP ----------------------------------------------------------------------------------------


class Server(ThreadingHTTPServer):
  """The HTTP server: one thread per connection, at most limits.max_connections at once."""
  daemon_threads = True
  allow_reuse_address = True
  request_queue_size = 64

  def __init__(self, address: tuple[str, int], limits: Limits,
               worker: ConversionWorker | None = None, model_name: str = ''):
    host = address[0]
    if ':' in host:
      self.address_family = socket.AF_INET6
    super().__init__(address, Handler)
    self.worker, self.limits, self.model_name = worker, limits, model_name
    self.loopback = _is_loopback(host)
    self.started = time.monotonic()
    self.requests = 0
    self._connections = threading.BoundedSemaphore(limits.max_connections)

  @property
  def url(self) -> str:
    host, port = self.server_address[:2]
    return f'http://{f"[{host}]" if ":" in host else host}:{port}/'

  def process_request(self, request, client_address):
    if not self._connections.acquire(blocking=False):
      try:
        request.sendall(_TOO_MANY_CONNECTIONS)
      except OSError:
        pass
      self.shutdown_request(request)
      return
    super().process_request(request, client_address)

  def process_request_thread(self, request, client_address):
    try:
      super().process_request_thread(request, client_address)
    finally:
      self._connections.release()


_BUSY = b'{"error": "too many open connections; try again shortly"}'
_TOO_MANY_CONNECTIONS = (b'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n'
                         b'Content-Length: %d\r\nConnection: close\r\n\r\n%s'
                         % (len(_BUSY), _BUSY))


def _is_loopback(host: str) -> bool:
  if host == 'localhost':
    return True
  try:
    return ipaddress.ip_address(host).is_loopback
  except ValueError:
    return False


class Handler(BaseHTTPRequestHandler):
  """One connection's requests; every request is answered, whatever goes wrong."""
  server: Server
  server_version = 'pyhanzi'
  protocol_version = 'HTTP/1.1'  # Keep-alive: an input method sends a request per keystroke.
  timeout = 15  # Seconds a connection may sit idle or send slowly before it is closed.

  def do_GET(self):  # pylint: disable=invalid-name
    self._guarded(self._get)

  def do_HEAD(self):  # pylint: disable=invalid-name
    self._guarded(self._get)

  def do_POST(self):  # pylint: disable=invalid-name
    self._guarded(self._post)

  def _guarded(self, serve: Callable[[], None]) -> None:
    self.server.requests += 1
    try:
      self._check_host()
      serve()
    except RequestError as e:
      self._json(e.status, {'error': str(e)})
    except Exception:  # pylint: disable=broad-except
      log.exception('unexpected error in %s %s', self.command, self.path)
      self.close_connection = True
      self._json(HTTPStatus.INTERNAL_SERVER_ERROR,
                 {'error': 'internal error (logged by the server); the server is still up'})

  def _check_host(self) -> None:
    if not self.server.loopback:
      return
    host = (self.headers.get('Host') or '').strip().lower()
    if host.startswith('['):  # [::1]:8765
      name = host[:host.find(']') + 1]
    else:
      name = host.rsplit(':', 1)[0] if host.count(':') == 1 else host
    if name not in ('127.0.0.1', 'localhost', '[::1]', '::1', ''):
      raise RequestError(HTTPStatus.FORBIDDEN, f'Host {host!r} is not this machine; a server '
                         'bound to loopback only answers requests addressed to it')

  def _get(self) -> None:
    path = self.path.split('?', 1)[0]
    if path == '/health':
      worker = self.server.worker
      self._json(HTTPStatus.OK, {
          'status': 'ok', 'model': self.server.model_name,
          'uptime_s': round(time.monotonic() - self.server.started, 1),
          'waiting': worker.in_flight, 'queue_size': worker.queue_size,
          'max_batch': worker.max_batch, 'converted': worker.converted,
          'limits': dataclasses.asdict(self.server.limits)})
    elif path in WEB_FILES:
      name, content_type = WEB_FILES[path]
      with open(os.path.join(WEB_DIR, name), 'rb') as f:
        self._send(HTTPStatus.OK, f.read(), content_type)
    else:
      raise RequestError(HTTPStatus.NOT_FOUND, f'no such page: {path}; try / or /health')

  def _post(self) -> None:
    path = self.path.split('?', 1)[0]
    if path != '/convert':
      self.close_connection = True  # The body is left unread.
      raise RequestError(HTTPStatus.NOT_FOUND, f'no such endpoint: POST {path}; try /convert')
    body = self._read_body()
    content_type = (self.headers.get('Content-Type') or '').split(';')[0].strip().lower()
    if content_type != 'application/json':
      raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                         f'send the body as Content-Type: application/json, got '
                         f'{content_type or "none"!r}')
    req = parse_request(body, self.server.limits)
    from pyhanzi_jax import convert  # pylint: disable=g-import-not-at-top
    try:
      cands = self.server.worker.submit(req.text, req.k, req.timeout_s)
    except convert.ConversionError as e:
      raise RequestError(HTTPStatus.BAD_REQUEST, f'cannot convert "input": {e}') from None
    except QueueFull as e:
      raise RequestError(HTTPStatus.SERVICE_UNAVAILABLE, str(e)) from None
    except Expired as e:
      raise RequestError(HTTPStatus.GATEWAY_TIMEOUT, str(e)) from None
    answer = {'input': req.text,
              'candidates': [{'text': t, 'score': round(float(s), 4)} for t, s in cands]}
    if req.context is not None:
      answer['context_used'] = False
    self._json(HTTPStatus.OK, answer)

  def _read_body(self) -> bytes:
    if self.headers.get('Transfer-Encoding'):
      self.close_connection = True
      raise RequestError(HTTPStatus.LENGTH_REQUIRED, 'send the body with a Content-Length, '
                         'not chunked')
    length = self.headers.get('Content-Length')
    try:
      n = int(length)
    except (TypeError, ValueError):
      self.close_connection = True
      raise RequestError(HTTPStatus.LENGTH_REQUIRED,
                         f'a Content-Length header is required, got {length!r}') from None
    if n < 0 or n > self.server.limits.max_body:
      self.close_connection = True  # Not reading it: the connection cannot be reused.
      raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                         f'the body is {n} bytes; at most {self.server.limits.max_body} '
                         'are accepted')
    body = self.rfile.read(n)
    if len(body) < n:
      self.close_connection = True
      raise RequestError(HTTPStatus.BAD_REQUEST, 'the body ended before its Content-Length')
    return body

  def _json(self, status: HTTPStatus, obj) -> None:
    self._send(status, json.dumps(obj, ensure_ascii=False).encode('utf-8'),
               'application/json; charset=utf-8')

  def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
    self.send_response(status)
    self.send_header('Content-Type', content_type)
    self.send_header('Content-Length', str(len(body)))
    self.send_header('Cache-Control', 'no-store')
    self.send_header('X-Content-Type-Options', 'nosniff')
    if self.close_connection:
      self.send_header('Connection', 'close')
    self.end_headers()
    if self.command != 'HEAD':
      self.wfile.write(body)

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    log.info('%s %s', self.address_string(), format % args)


# --- the command ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
  d = Limits()
  ap = argparse.ArgumentParser(
      prog='pyhanzi serve',
      description='Serve conversions over HTTP on this machine (POST /convert, GET /health) '
      'and a typing page at /, for input-method plug-ins and scripts.')
  ap.add_argument('--host', default=DEFAULT_HOST,
                  help='address to listen on (default %(default)s: this machine only)')
  ap.add_argument('--port', type=int, default=DEFAULT_PORT,
                  help='port (default %(default)s; 0: any free port, named in the ready line)')
  ap.add_argument('--model', help='bundle directory or training workdir (default: release model)')
  ap.add_argument('--warmup-syllables', type=int, default=12, metavar='N',
                  help='compile for inputs of up to N syllables before saying ready (default '
                  '%(default)s; 0: compile on first use)')
  ap.add_argument('--max-batch', type=int, default=8,
                  help='most waiting requests converted in one call (default %(default)s)')
  ap.add_argument('--min-batch', type=int, default=6,
                  help='fewest waiting requests worth one batched call; fewer go one at a '
                  'time (default %(default)s)')
  ap.add_argument('--queue', type=int, default=64,
                  help='requests that may wait for the model; more get 503 (default %(default)s)')
  ap.add_argument('--timeout', type=float, default=d.timeout_s,
                  help='seconds a request may wait for its answer; 504 after (default %(default)s)')
  ap.add_argument('--max-input', type=int, default=d.max_input,
                  help='longest input in characters (default %(default)s)')
  ap.add_argument('--compile-cache', default=None, metavar='DIR',
                  help='keep compiled programs here, so that a restart compiles faster '
                  '(default: $PYHANZI_COMPILE_CACHE, else ~/.cache/pyhanzi_jax/jax; "": off)')
  ap.add_argument('--verbose', action='store_true', help='log every request to stderr')
  return ap


def warmup(conv, max_syllables: int, max_batch: int) -> float:
  """Compiles every program that requests of up to max_syllables syllables use, one at a time
  or batched up to max_batch (Converter.warmup: one per length bucket and candidate width, so
  that no request waits for a compile); seconds. Warming `shi shi ...` only had left
  `nizaiganshenme` 13-20 s to compile on first use on the busy 2-core machine."""
  if max_syllables <= 0:
    return 0.0
  return conv.warmup(max_syllables, k=5, batch_sizes=range(1, max(1, max_batch) + 1))


class _Stop(Exception):
  """SIGTERM/SIGINT before the server was serving."""


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                      format='pyhanzi serve: %(message)s', stream=sys.stderr)
  for name in ('max_batch', 'min_batch', 'queue', 'max_input'):
    if getattr(args, name) < 1:
      print(f'pyhanzi serve: --{name.replace("_", "-")} must be at least 1', file=sys.stderr)
      return 2
  if not 0 <= args.port <= 65535:
    print(f'pyhanzi serve: --port must be between 0 and 65535, got {args.port}', file=sys.stderr)
    return 2
  if not args.timeout > 0:
    print('pyhanzi serve: --timeout must be > 0', file=sys.stderr)
    return 2
  limits = Limits(max_input=args.max_input, timeout_s=args.timeout)

  serving = threading.Event()
  httpd: Server | None = None

  def on_signal(signum, frame):  # pylint: disable=unused-argument
    if serving.is_set() and httpd is not None:
      # shutdown() waits for serve_forever() to return, so not from its own thread.
      threading.Thread(target=httpd.shutdown, daemon=True).start()
    else:
      raise _Stop()
  previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

  worker = None
  try:
    try:  # Bind first: a port in use is found before the model loads.
      httpd = Server((args.host, args.port), limits)
    except OSError as e:
      print(f'pyhanzi serve: cannot listen on {args.host}:{args.port}: {e}', file=sys.stderr)
      return 2
    if not httpd.loopback:
      print(f'pyhanzi serve: listening on {args.host}, which other machines may reach; '
            'the server has no authentication', file=sys.stderr)
    from pyhanzi_jax import bundle as bundle_lib  # pylint: disable=g-import-not-at-top
    from pyhanzi_jax import compile_cache  # pylint: disable=g-import-not-at-top
    from pyhanzi_jax import convert  # pylint: disable=g-import-not-at-top
    from pyhanzi_jax import errors  # pylint: disable=g-import-not-at-top
    # A restarted server compiles its shapes in about a third of the time (measured: 17.3 s ->
    # 4.8 s for a first conversion, busy machine).
    compile_cache.enable(args.compile_cache)
    t0 = time.perf_counter()
    try:
      conv = convert.Converter(args.model)
    except (errors.CheckpointError, OSError, ValueError) as e:
      print(f'pyhanzi serve: cannot load the model: {e}', file=sys.stderr)
      return 2
    httpd.model_name = args.model or bundle_lib.default_model_path()
    loaded = time.perf_counter() - t0
    warm = warmup(conv, args.warmup_syllables, args.max_batch)
    worker = httpd.worker = ConversionWorker(conv.candidates_batch, queue_size=args.queue,
                                             max_batch=args.max_batch, min_batch=args.min_batch)
    worker.start()
    serving.set()
    print(f'pyhanzi serve: ready on {httpd.url} (model loaded in {loaded:.1f} s, warmed up in '
          f'{warm:.1f} s; POST /convert, GET /health; Ctrl-C stops)', file=sys.stderr,
          flush=True)
    httpd.serve_forever(poll_interval=0.2)
    print('pyhanzi serve: stopped', file=sys.stderr, flush=True)
    return 0
  except _Stop:
    print('pyhanzi serve: stopped before it was ready', file=sys.stderr, flush=True)
    return 0
  finally:
    if httpd is not None:
      httpd.server_close()
    if worker is not None:
      worker.stop()
    for s, handler in previous.items():
      signal.signal(s, handler)


class ServerProcess:
  """`pyhanzi serve` in a child process, for tests, benchmarks and IME harnesses:

    with ServerProcess(['--port', '0', '--warmup-syllables', '4']) as srv:
      ... srv.url ...

  Waits for the ready line (RuntimeError with the child's output if it exits or times out
  first); keeps reading the child's stderr into `lines` so its pipe never fills; stop() sends
  SIGTERM and returns the exit status.
  """

  def __init__(self, args: Sequence[str], timeout_s: float = 300.0, env=None):
    self.lines: list[str] = []
    self.url = ''
    self._ready = threading.Event()
    self.proc = subprocess.Popen([sys.executable, '-m', 'pyhanzi_jax.server', *args],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, encoding='utf-8', env=env)
    threading.Thread(target=self._read, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while not self._ready.wait(0.1):
      if self.proc.poll() is not None or time.monotonic() > deadline:
        self.stop()
        raise RuntimeError('pyhanzi serve did not get ready:\n' + ''.join(self.lines[-30:]))

  def _read(self) -> None:
    for line in self.proc.stderr:
      self.lines.append(line)
      if not self._ready.is_set() and ' ready on ' in line:
        self.url = line.split(' ready on ', 1)[1].split()[0]
        self._ready.set()

  def stop(self, timeout_s: float = 30.0) -> int:
    if self.proc.poll() is None:
      self.proc.send_signal(signal.SIGTERM)
      try:
        self.proc.wait(timeout_s)
      except Exception:  # pylint: disable=broad-except
        self.proc.kill()
    return self.proc.wait()

  def __enter__(self) -> 'ServerProcess':
    return self

  def __exit__(self, *exc) -> None:
    self.stop()


if __name__ == '__main__':
  sys.exit(main())
