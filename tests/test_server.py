"""`pyhanzi serve`: request checks, the worker that owns the converter, HTTP answers to good
and bad requests, and the command's start and clean stop."""
import concurrent.futures
import http.client
import json
import os
import re
import signal
import socket
import threading
import time

import pytest

from pyhanzi_jax import convert
from pyhanzi_jax import server

LIMITS = server.Limits()


def _fake_batch(calls=None, gate=None):
  """A converter's candidates_batch stand-in: reverses the text; 'iphone' cannot be read,
  'boom' is a bug; records each call's texts; waits for `gate` before answering."""
  def convert_batch(texts, k):
    if gate is not None:
      gate.wait(10)
    if calls is not None:
      calls.append(list(texts))
    for t in texts:
      if t == 'iphone':
        raise convert.ConversionError("cannot read 'iphone' as pinyin")
      if t == 'boom':
        raise RuntimeError('a bug')
    return [[(t[::-1] + str(i), -float(i)) for i in range(k)] for t in texts]
  return convert_batch


# --- parse_request -------------------------------------------------------------------------------


def test_parse_request_reads_the_fields():
  req = server.parse_request(b'{"input": "nihao", "k": 3, "context": "\xe6\x88\x91"}', LIMITS)
  assert (req.text, req.k, req.context, req.timeout_s) == ('nihao', 3, '我', LIMITS.timeout_s)
  req = server.parse_request(b'{"input": "ni", "timeout_ms": 150}', LIMITS)
  assert (req.k, req.context, req.timeout_s) == (5, None, 0.15)


@pytest.mark.parametrize('body,message', [
    (b'{', 'not JSON'),
    (b'\xff', 'not UTF-8'),
    (b'[1]', 'JSON object'),
    (b'{"k": 1}', 'missing field "input"'),
    (b'{"input": 3}', '"input" must be a string'),
    (b'{"input": "ni", "kk": 1}', "unknown field 'kk'"),
    (b'{"input": "ni", "k": "3"}', '"k" must be a whole number'),
    (b'{"input": "ni", "k": true}', '"k" must be a whole number'),
    (b'{"input": "ni", "k": 0}', '"k" must be between 1 and 10'),
    (b'{"input": "ni", "k": 11}', '"k" must be between 1 and 10'),
    (b'{"input": "ni", "context": 5}', '"context" must be a string'),
    (b'{"input": "ni", "timeout_ms": 0}', '"timeout_ms" must be a whole number >= 1'),
    (json.dumps({'input': 'a' * 201}).encode(), '"input" is 201 characters long'),
    (json.dumps({'input': 'a', 'context': 'a' * 2001}).encode(), '"context" is 2001'),
])
def test_parse_request_names_the_problem(body, message):
  with pytest.raises(server.RequestError, match=message) as e:
    server.parse_request(body, LIMITS)
  assert e.value.status == 400


# --- the worker ----------------------------------------------------------------------------------


def test_worker_batches_waiting_requests_with_the_same_k():
  calls, gate = [], threading.Event()
  worker = server.ConversionWorker(_fake_batch(calls, gate), max_batch=4, min_batch=3)
  worker.start()
  results = {}

  def ask(text, k):
    results[text] = worker.submit(text, k, 10)
  try:
    threads = [threading.Thread(target=ask, args=(t, k)) for t, k in
               [('first', 1), ('a', 2), ('b', 2), ('c', 2), ('d', 2), ('e', 2), ('odd', 3)]]
    threads[0].start()
    time.sleep(0.2)  # 'first' is being converted (held at the gate) while the rest queue up.
    for t in threads[1:]:
      t.start()
    time.sleep(0.3)
    gate.set()
    for t in threads:
      t.join(10)
  finally:
    worker.stop()
  assert calls[0] == ['first']
  assert calls[1] == ['a', 'b', 'c', 'd']     # Same k, oldest first, at most max_batch.
  assert sorted(map(tuple, calls[2:])) == [('e',), ('odd',)]  # Fewer than min_batch: singly.
  assert results['b'] == [('b0', 0.0), ('b1', -1.0)]
  assert results['odd'][2] == ('ddo2', -2.0)


def test_worker_fails_a_bad_input_alone_and_survives_a_bug():
  gate = threading.Event()
  worker = server.ConversionWorker(_fake_batch(gate=gate), max_batch=8, min_batch=2)
  worker.start()
  outcome = {}

  def ask(text):
    try:
      outcome[text] = worker.submit(text, 1, 10)
    except Exception as e:  # pylint: disable=broad-except
      outcome[text] = e
  try:
    threads = [threading.Thread(target=ask, args=(t,)) for t in ('x', 'iphone', 'ok', 'boom')]
    for t in threads:
      t.start()
    time.sleep(0.3)
    gate.set()
    for t in threads:
      t.join(10)
    assert worker.submit('after', 1, 10) == [('retfa0', 0.0)]
  finally:
    worker.stop()
  assert isinstance(outcome['iphone'], convert.ConversionError)
  assert isinstance(outcome['boom'], RuntimeError)
  assert outcome['ok'] == [('ko0', 0.0)] and outcome['x'] == [('x0', 0.0)]


def test_worker_refuses_past_its_queue_and_expires_stale_jobs():
  gate = threading.Event()
  worker = server.ConversionWorker(_fake_batch(gate=gate), queue_size=2)
  worker.start()
  errors = []

  def ask(text, timeout):
    try:
      worker.submit(text, 1, timeout)
    except Exception as e:  # pylint: disable=broad-except
      errors.append((text, type(e)))
  try:
    held = threading.Thread(target=ask, args=('held', 10))
    held.start()
    time.sleep(0.2)
    short = threading.Thread(target=ask, args=('short', 0.1))
    short.start()
    short.join(5)
    slots = [threading.Thread(target=ask, args=('w', 10))]
    for t in slots:  # 'short' gave its slot back when it expired: 'held' and 'w' take both.
      t.start()
    time.sleep(0.2)
    with pytest.raises(server.QueueFull):
      worker.submit('one too many', 1, 10)
    gate.set()
    for t in [held, *slots]:
      t.join(10)
  finally:
    worker.stop()
  assert ('short', server.Expired) in errors
  assert worker.converted == 2, errors  # held, w; 'short' expired before it was converted.


# --- HTTP with a fake converter ------------------------------------------------------------------


@pytest.fixture
def fake_server():
  worker = server.ConversionWorker(_fake_batch())
  httpd = server.Server(('127.0.0.1', 0), LIMITS, worker, model_name='fake')
  worker.start()
  thread = threading.Thread(target=httpd.serve_forever, kwargs={'poll_interval': 0.05})
  thread.start()
  try:
    yield httpd
  finally:
    httpd.shutdown()
    httpd.server_close()
    worker.stop()
    thread.join(5)


def _request(httpd, method, path, body=None, headers=None):
  conn = http.client.HTTPConnection('127.0.0.1', httpd.server_address[1], timeout=10)
  try:
    hdrs = {'Content-Type': 'application/json', **(headers or {})}
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    ctype = resp.getheader('Content-Type', '')
    return resp.status, json.loads(data) if ctype.startswith('application/json') else data
  finally:
    conn.close()


def _post(httpd, obj, **kwargs):
  body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
  return _request(httpd, 'POST', '/convert', body, **kwargs)


def test_convert_answers_candidates(fake_server):
  status, answer = _post(fake_server, {'input': 'nihao', 'k': 2})
  assert status == 200
  assert answer == {'input': 'nihao', 'candidates': [{'text': 'oahin0', 'score': 0.0},
                                                     {'text': 'oahin1', 'score': -1.0}]}
  status, answer = _post(fake_server, {'input': 'nihao', 'context': '今天'})
  assert status == 200 and answer['context_used'] is False and len(answer['candidates']) == 5


@pytest.mark.parametrize('body,headers,status,message', [
    ({'input': 'iphone'}, None, 400, "cannot convert \"input\": cannot read 'iphone'"),
    ({'input': 'ni', 'k': 99}, None, 400, '"k" must be between 1 and 10'),
    ({'input': 'ni', 'extra': 1}, None, 400, "unknown field 'extra'"),
    (b'{"input": ', None, 400, 'not JSON'),
    ({'input': 'ni'}, {'Content-Type': 'text/plain'}, 415, 'application/json'),
    ({'input': 'ni'}, {'Host': 'evil.example:8765'}, 403, 'is not this machine'),
    ({'input': 'boom'}, None, 500, 'internal error'),
])
def test_bad_requests_get_a_4xx_naming_the_problem(fake_server, body, headers, status,
                                                   message):
  got, answer = _post(fake_server, body, headers=headers)
  assert (got, message in answer['error']) == (status, True), answer
  assert _post(fake_server, {'input': 'ok', 'k': 1})[0] == 200  # Still up.


@pytest.mark.parametrize('host', ['127.0.0.1:8765', 'localhost', 'LOCALHOST:1', '[::1]:8765',
                                  '[::1]'])
def test_loopback_host_names_are_accepted(fake_server, host):
  assert _post(fake_server, {'input': 'ni'}, headers={'Host': host})[0] == 200


def test_body_size_length_and_unknown_paths(fake_server):
  status, answer = _post(fake_server, b'{"input": "' + b'a' * 20000 + b'"}')
  assert status == 413 and 'at most 16384' in answer['error']
  # A request without Content-Length, sent by hand.
  with socket.create_connection(fake_server.server_address, timeout=10) as s:
    s.sendall(b'POST /convert HTTP/1.1\r\nHost: 127.0.0.1\r\n'
              b'Content-Type: application/json\r\n\r\n')
    assert b' 411 ' in s.recv(4096).split(b'\r\n')[0]
  assert _request(fake_server, 'GET', '/nope')[0] == 404
  assert _post(fake_server, {'input': 'ni'})[0] == 200


def test_a_busy_server_answers_503_and_504():
  gate = threading.Event()
  worker = server.ConversionWorker(_fake_batch(gate=gate), queue_size=1)
  httpd = server.Server(('127.0.0.1', 0), LIMITS, worker)
  worker.start()
  thread = threading.Thread(target=httpd.serve_forever, kwargs={'poll_interval': 0.05})
  thread.start()
  try:
    # A client that gives up after 300 ms holds the only slot until then.
    status, answer = _post(httpd, {'input': 'slow', 'timeout_ms': 300})
    assert status == 504 and 'no answer within 0.3 s' in answer['error']
    held = threading.Thread(target=_post, args=(httpd, {'input': 'held'}))
    held.start()
    time.sleep(0.3)
    status, answer = _post(httpd, {'input': 'more'})
    assert status == 503 and 'already waiting' in answer['error']
    gate.set()
    held.join(10)
    assert _post(httpd, {'input': 'ok'})[0] == 200
  finally:
    gate.set()
    httpd.shutdown()
    httpd.server_close()
    worker.stop()
    thread.join(5)


def test_keep_alive_serves_several_requests_on_one_connection(fake_server):
  conn = http.client.HTTPConnection('127.0.0.1', fake_server.server_address[1], timeout=10)
  try:
    for text in ('a', 'b', 'c'):
      conn.request('POST', '/convert', json.dumps({'input': text, 'k': 1}),
                   {'Content-Type': 'application/json'})
      resp = conn.getresponse()
      assert resp.status == 200 and json.loads(resp.read())['candidates'][0]['text'] == text + '0'
  finally:
    conn.close()


def test_health_and_the_typing_page(fake_server):
  status, health = _request(fake_server, 'GET', '/health')
  assert status == 200 and health['status'] == 'ok' and health['model'] == 'fake'
  status, page = _request(fake_server, 'GET', '/')
  assert status == 200 and b'<input id="compose"' in page and b'name="viewport"' in page
  for name in ('/app.js', '/style.css'):
    assert _request(fake_server, 'GET', name)[0] == 200
  assert _request(fake_server, 'GET', '/../server.py')[0] == 404
  # Everything the page loads comes from this server (it works offline): no other host.
  for name in ('index.html', 'app.js', 'style.css'):
    with open(os.path.join(server.WEB_DIR, name), encoding='utf-8') as f:
      assert not re.search(r'https?:|//\w', f.read()), name


def test_concurrent_clients_all_get_their_own_answer(fake_server):
  answers, errors = {}, []

  def client(i):
    try:
      for j in range(5):
        text = f'c{i}x{j}'
        status, answer = _post(fake_server, {'input': text, 'k': 1})
        answers[text] = (status, answer['candidates'][0]['text'])
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)
  threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
  for t in threads:
    t.start()
  for t in threads:
    t.join(30)
  assert not errors
  assert len(answers) == 80
  assert all(v == (200, k[::-1] + '0') for k, v in answers.items())


# --- the command, with an untrained model --------------------------------------------------------


def test_serve_gets_ready_converts_and_stops_cleanly_on_sigterm_and_sigint(untrained_bundle):
  model = untrained_bundle('serve')
  args = ['--model', model, '--port', '0', '--warmup-syllables', '0', '--timeout', '120',
          '--compile-cache', '']
  with concurrent.futures.ThreadPoolExecutor(2) as pool:  # Together: most of it is start-up.
    futures = {sig: pool.submit(server.ServerProcess, args, timeout_s=240)
               for sig in (signal.SIGTERM, signal.SIGINT)}
  procs = {sig: f.result() for sig, f in futures.items() if not f.exception()}
  try:
    assert len(procs) == 2, [f.exception() for f in futures.values()]
    for sig, proc in procs.items():
      assert proc.url.startswith('http://127.0.0.1:')
      port = int(proc.url.rstrip('/').rsplit(':', 1)[1])
      conn = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
      conn.request('POST', '/convert', json.dumps({'input': 'ni hao', 'k': 2}),
                   {'Content-Type': 'application/json'})
      resp = conn.getresponse()
      answer = json.loads(resp.read())
      conn.close()
      assert resp.status == 200, answer
      assert len(answer['candidates']) >= 1 and len(answer['candidates'][0]['text']) == 2
      proc.proc.send_signal(sig)
      assert proc.proc.wait(60) == 0, ''.join(proc.lines)
      assert 'stopped' in proc.lines[-1]
      with pytest.raises(OSError):  # The socket is closed.
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
  finally:
    for proc in procs.values():
      proc.stop()


def test_serve_refuses_a_port_in_use_and_bad_options(capsys):
  with socket.socket() as busy:
    busy.bind(('127.0.0.1', 0))
    busy.listen(1)
    assert server.main(['--port', str(busy.getsockname()[1])]) == 2
  assert 'cannot listen on 127.0.0.1' in capsys.readouterr().err
  assert server.main(['--max-batch', '0']) == 2
  assert '--max-batch must be at least 1' in capsys.readouterr().err
  assert server.main(['--port', '70000']) == 2
  assert '--port must be between 0 and 65535' in capsys.readouterr().err
