// The typing page: pinyin typed in the composition field is converted by POST /convert as
// one types (debounced), and a picked candidate is appended to the output, as in an IME.
'use strict';

const DEBOUNCE_MS = 80;
const K = 9;  // Candidates shown: one per number key.

const compose = document.getElementById('compose');
const output = document.getElementById('output');
const list = document.getElementById('candidates');
const status = document.getElementById('status');

// What the candidates on screen were converted from; a pick waits for the current input's.
let shownFor = null;
let shown = [];
let timer = null;
let inFlight = null;     // AbortController of the request in flight.
let pendingPick = null;  // Index picked before the current input's candidates arrived.

function setStatus(text, isError) {
  status.textContent = text || '';
  status.classList.toggle('error', Boolean(isError));
}

function render(input, candidates) {
  shownFor = input;
  shown = candidates;
  list.replaceChildren(...candidates.map((c, i) => {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'cand';
    button.dataset.index = String(i);
    const num = document.createElement('span');
    num.className = 'num';
    num.textContent = String(i + 1);
    button.append(num, c.text);
    // pointerdown keeps the focus (and a phone's keyboard) on the composition field.
    button.addEventListener('pointerdown', (e) => e.preventDefault());
    button.addEventListener('click', () => { pick(i); compose.focus(); });
    li.append(button);
    return li;
  }));
}

async function convert(input) {
  if (inFlight) inFlight.abort();
  const controller = new AbortController();
  inFlight = controller;
  try {
    const response = await fetch('convert', {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({input: input, k: K, context: output.textContent.slice(-100)}),
      signal: controller.signal,
    });
    const answer = await response.json();
    if (compose.value !== input) return;  // Typed on meanwhile: a newer request follows.
    if (!response.ok) {
      render(input, []);
      setStatus(answer.error || `error ${response.status}`, true);
      pendingPick = null;
      return;
    }
    setStatus('');
    render(input, answer.candidates);
    if (pendingPick !== null) {
      const index = pendingPick;
      pendingPick = null;
      pick(index);
    }
  } catch (e) {
    if (e.name !== 'AbortError') setStatus('the server does not answer: is pyhanzi serve running?', true);
  } finally {
    if (inFlight === controller) inFlight = null;
  }
}

function schedule() {
  clearTimeout(timer);
  const input = compose.value;
  if (!input.trim()) {
    if (inFlight) inFlight.abort();
    render('', []);
    setStatus('');
    return;
  }
  timer = setTimeout(() => convert(input), DEBOUNCE_MS);
}

function commit(text) {
  output.textContent += text;
  compose.value = '';
  pendingPick = null;
  clearTimeout(timer);
  render('', []);
}

// Picks candidate `index` of the current input; if its candidates are not here yet, asks now
// and picks when they arrive.
function pick(index) {
  const input = compose.value;
  if (!input.trim()) return;
  if (shownFor === input) {
    if (index < shown.length) commit(shown[index].text);
    return;
  }
  pendingPick = index;
  clearTimeout(timer);
  convert(input);
}

function deleteLast() {
  const chars = Array.from(output.textContent);  // Code points, not UTF-16 halves.
  chars.pop();
  output.textContent = chars.join('');
}

compose.addEventListener('keydown', (e) => {
  if (e.isComposing) return;
  const composing = compose.value.trim() !== '';
  if (composing && /^[1-9]$/.test(e.key) && !e.ctrlKey && !e.metaKey && !e.altKey) {
    e.preventDefault();
    pick(Number(e.key) - 1);
  } else if (composing && e.key === ' ') {
    e.preventDefault();
    pick(0);
  } else if (composing && e.key === 'Enter') {
    e.preventDefault();
    commit(compose.value);
  } else if (e.key === 'Escape') {
    e.preventDefault();
    compose.value = '';
    schedule();
  } else if (!compose.value && e.key === 'Backspace') {
    e.preventDefault();
    deleteLast();
  }
});

// Phone keyboards often send no usable keydown: a digit or space arrives as typed text.
compose.addEventListener('input', () => {
  const m = /^(.*[A-Za-z'])([1-9 ])$/.exec(compose.value);
  if (m) {
    compose.value = m[1];
    pick(m[2] === ' ' ? 0 : Number(m[2]) - 1);
    return;
  }
  schedule();
});

document.getElementById('copy').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(output.textContent);
    setStatus('copied');
  } catch (e) {
    window.getSelection().selectAllChildren(output);
    setStatus('selected: copy with the system menu');
  }
  compose.focus();
});

document.getElementById('clear').addEventListener('click', () => {
  output.textContent = '';
  compose.focus();
});

compose.focus();
