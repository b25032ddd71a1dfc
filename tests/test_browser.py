"""The typing page in a real browser: headless Chromium driven over the WebDriver protocol
(chromedriver's HTTP API, spoken with urllib), against `pyhanzi serve` with the release model.

Skips when chromium or chromedriver is absent (.ci/run installs Debian's). Set
PYHANZI_SCREENSHOT=docs/screenshots/typing.png to keep the screenshot with candidates showing.
"""
import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
# Without the networking flags Chromium keeps calling home, which floods a closed network.
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                  '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--window-size=412,760']
ELEMENT = 'element-6066-11e4-a52e-4f735466cecf'  # The W3C key of an element reference.
BACKSPACE = '\ue003'
WAIT_S = 120  # A first conversion compiles; on a busy 2-core machine that takes a while.

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason='needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


class WebDriver:
  """The few WebDriver commands the test needs, over chromedriver's HTTP API."""

  def __init__(self, base: str):
    self.base = base
    caps = {'browserName': 'chrome',
            'goog:chromeOptions': {'binary': CHROMIUM, 'args': CHROMIUM_FLAGS + [
                f'--user-data-dir={tempfile.mkdtemp(prefix="pyhanzi-chromium-")}']}}
    self.session = self._call('POST', '/session', {'capabilities': {'alwaysMatch': caps}},
                              session=False)['sessionId']

  def _call(self, method, path, body=None, session=True):
    url = self.base + (f'/session/{self.session}' if session else '') + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={'Content-Type': 'application/json'})
    try:
      with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())['value']
    except urllib.error.HTTPError as e:
      raise AssertionError(f'WebDriver {method} {path}: {e.read()[:500]!r}') from None

  def get(self, url):
    self._call('POST', '/url', {'url': url})

  def find(self, css):
    return self._call('POST', '/element', {'using': 'css selector', 'value': css})[ELEMENT]

  def type(self, element, text):
    self._call('POST', f'/element/{element}/value', {'text': text})

  def click(self, element):
    self._call('POST', f'/element/{element}/click', {})

  def script(self, source, *args):
    return self._call('POST', '/execute/sync', {'script': source, 'args': list(args)})

  def screenshot(self) -> bytes:
    return base64.b64decode(self._call('GET', '/screenshot'))

  def quit(self):
    with contextlib.suppress(Exception):
      self._call('DELETE', '')


@pytest.fixture(scope='module')
def browser():
  port = _free_port()
  driver_proc = subprocess.Popen([CHROMEDRIVER, f'--port={port}'], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
  driver = None
  try:
    base = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 30
    while True:
      try:
        with urllib.request.urlopen(base + '/status', timeout=5) as resp:
          if json.loads(resp.read())['value']['ready']:
            break
      except OSError:
        pass
      assert time.monotonic() < deadline, 'chromedriver did not start'
      time.sleep(0.2)
    driver = WebDriver(base)
    yield driver
  finally:
    if driver is not None:
      driver.quit()
    driver_proc.terminate()
    driver_proc.wait(30)


def _state(driver):
  return driver.script(
      'return {compose: document.getElementById("compose").value,'
      ' output: document.getElementById("output").textContent,'
      ' status: document.getElementById("status").textContent,'
      ' candidates: Array.from(document.querySelectorAll("#candidates button"))'
      '   .map(b => b.lastChild.textContent)};')


def _wait(driver, predicate, what):
  deadline = time.monotonic() + WAIT_S
  while True:
    state = _state(driver)
    if predicate(state):
      return state
    assert time.monotonic() < deadline, f'waited {WAIT_S} s for {what}; page: {state}'
    time.sleep(0.1)


def test_typing_pinyin_offers_and_picks_the_sentence(served, browser):
  browser.get(served.url)
  compose = browser.find('#compose')
  browser.type(compose, 'nihaoshijie')
  state = _wait(browser, lambda s: '你好世界' in s['candidates'], '你好世界 among the candidates')
  assert state['compose'] == 'nihaoshijie' and state['output'] == ''
  shot = browser.screenshot()
  assert shot.startswith(b'\x89PNG')
  if os.environ.get('PYHANZI_SCREENSHOT'):
    with open(os.environ['PYHANZI_SCREENSHOT'], 'wb') as f:
      f.write(shot)

  # A number key picks; the composition empties.
  browser.type(compose, str(state['candidates'].index('你好世界') + 1))
  state = _wait(browser, lambda s: s['output'] == '你好世界', 'the pick in the output')
  assert state['compose'] == '' and state['candidates'] == []

  # Backspace on an empty composition deletes from the output.
  browser.type(compose, BACKSPACE)
  _wait(browser, lambda s: s['output'] == '你好世', 'Backspace to delete 界')

  # Space right after typing picks the first candidate once it arrives; a click picks too.
  browser.type(compose, 'nihaoshijie ')
  state = _wait(browser, lambda s: s['output'].startswith('你好世') and len(s['output']) == 7,
                'Space to pick the first candidate')
  assert state['compose'] == ''
  first = state['output'][3:]
  browser.type(compose, 'nihaoshijie')
  _wait(browser, lambda s: s['candidates'] and s['compose'] == 'nihaoshijie', 'candidates')
  browser.click(browser.find('#candidates li:first-child button'))
  state = _wait(browser, lambda s: s['output'] == '你好世' + first * 2, 'a click to pick')


def test_bad_pinyin_shows_the_servers_message(served, browser):
  browser.get(served.url)
  browser.type(browser.find('#compose'), 'iphone')
  state = _wait(browser, lambda s: s['status'], 'an error message')
  assert 'iphone' in state['status'] and state['candidates'] == []
