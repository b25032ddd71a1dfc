r"""Raw text -> clean sentences -> (pinyin, hanzi) pairs -> splits, vocabularies, arrays.

  python -m pyhanzi_jax.main --config=configs/prepare.py --workdir=data

Stages, and where each one's output lives (WORKDIR is the prepared data directory,
docs/ARCHITECTURE.md gives its layout):
  1. Per source (sources.py): fetch, parse, clean, pair with pypinyin. Cached as
     WORKDIR/work/<source>.tsv plus a .json of counts, so a rerun skips finished sources.
  2. Per corpus: exact duplicates removed across sources; a sentence of an evaluation corpus
     (hsk, cuv) is removed from domain and general, and a domain sentence from general, so
     fine-tuning and the held-out checks measure something the pretraining has not seen.
     The other training corpora (tech, ui, dialogue, idiom, narrative) lose any sentence an
     evaluation corpus or an earlier training corpus holds (sources.TRAIN_CORPORA's order), and
     a dev corpus (dev_*: the sources config.prepare.dev_sources holds out) any sentence of a
     training or evaluation corpus, so general and domain come out as they did before the other
     corpora existed, and a dev set is text no training corpus holds.
     Training corpora are split train/valid/test by a hash of the hanzi sentence; a dev corpus
     is a test split of the dev_size sentences with the lowest hashes.
  3. Vocabularies from the general train split; uint16 arrays, .tsv files, manifest.json.

Cleaning (one rule each, so the data card can state them):
  - full-width digits, Latin letters and ASCII symbols become half-width; Chinese punctuation
    stays Chinese (no NFKC), and ASCII , : ; ! ? ( ) ~ " ' in Chinese text become the Chinese
    forms (',' and ':' between two digits stay: 1,000 and 12:30).
  - sentences end at 。！？；… (with any closing quotes) and at line breaks; whitespace between
    characters is removed, which rejoins segmented text.
  - a sentence with a Latin letter is dropped (pypinyin has no reading for it), as is one with a
    symbol outside PASSTHROUGH (emoji, arrows, box drawing...).
  - a sentence longer than max_len - 1 tokens is cut at '，' into clauses packed up to that
    length; a clause still too long is dropped. Fewer than min_cjk characters: dropped.
  - a sentence where pypinyin gives some character no reading, or a reading that is not a
    toneless syllable, is dropped.
"""
from __future__ import annotations

import array
import collections
import contextlib
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import time
import unicodedata
from typing import Iterable, Iterator, NamedTuple

import numpy as np
import pypinyin

from pyhanzi_jax import pinyin as pinyin_lib
from pyhanzi_jax.data import formats
from pyhanzi_jax.data import sources as sources_lib
from pyhanzi_jax.data import vocab as vocab_lib

# Bump when cleaning or pairing changes, so cached per-source work is redone.
PREP_VERSION = 1

# Digits and punctuation: one token each, written the same on both sides ("passthrough").
# Fixed here, not counted from the data, so every prepared directory has the same symbol ids.
PASSTHROUGH: tuple[str, ...] = (
    tuple('0123456789') + tuple('，。！？；：、“”‘’（）《》〈〉【】「」『』〔〕—…·～') +
    tuple('.,:%-/+'))
_PASSTHROUGH_SET = frozenset(PASSTHROUGH)

# Corpora that are only held out: never split, never in a vocabulary count.
EVAL_CORPORA = sources_lib.EVAL_CORPORA
DEV_PREFIX = sources_lib.DEV_PREFIX


is_hanzi = pinyin_lib.is_hanzi


def count_hanzi(text: str) -> int:
  return sum(1 for ch in text if is_hanzi(ch))


# ---------------------------------------------------------------------------------------------
# Cleaning: text -> sentences. Pure functions of the text.

def _translation_table() -> dict[int, str]:
  table = {c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}  # Full-width ASCII block.
  table.update({ord(k): v for k, v in {
      '﹐': ',', '﹑': '、', '﹔': ';', '﹕': ':', '︰': ':', '∶': ':', '﹝': '〔', '﹞': '〕',
      '─': '—', '―': '—', '–': '—', '╱': '/', '∕': '/', '•': '·', '・': '·', '〖': '【',
      '〗': '】', '\u3000': ' ', '\xa0': ' ', '\u2002': ' ', '\u2003': ' ', '\t': ' ',
      '\u200b': '', '\ufeff': ''}.items()})
  # ASCII punctuation that has one Chinese form whatever the context (the converter's rules,
  # pinyin.CHINESE_PUNCTUATION, so the model is trained on what the converter gives it);
  # composed into the table because str.translate makes a single pass ('！' -> '!' must not
  # stop there).
  chinese = {c: pinyin_lib.CHINESE_PUNCTUATION[c] for c in pinyin_lib.CONTEXT_FREE_PUNCTUATION}
  table = {k: chinese.get(v, v) for k, v in table.items()}
  table.update({ord(k): v for k, v in chinese.items()})
  # Compatibility ideographs (U+F900..FAFF, e.g. the HK texts' 金 and 行) look like the unified
  # ones but have no reading in pypinyin: use the unified character they stand for.
  for code in range(0xF900, 0xFB00):
    unified = unicodedata.normalize('NFKC', chr(code))
    if len(unified) == 1 and unified != chr(code):
      table[code] = unified
  return table


_TABLE = _translation_table()
# The context-dependent ones, by pinyin.chinese_punctuation's rule: ',' and ':' stay ASCII between
# two digits, '.' after one.
_NOT_BETWEEN_DIGITS = {',': re.compile(r'(?<!\d),|,(?!\d)'), ':': re.compile(r'(?<!\d):|:(?!\d)')}
_DOT_RUN = re.compile('|'.join(re.escape(c) + '{2,}' for c in pinyin_lib.ELLIPSIS_RUNS))
_LONE_DOT = re.compile(r'(?<!\d)\.')  # '1.' (a number or an enumeration) keeps its dot.
_SPACE = re.compile(r'\s+')
_SPACE_NOT_IN_NUMBER = re.compile(r'(?<![0-9]) | (?![0-9])')
_LATIN = re.compile(r'[A-Za-z]')
_SENTENCE = re.compile(r'[^。！？；…]*[。！？；…]+[”’」』）]*|[^。！？；…]+$')
_CLAUSE = re.compile(r'[^，]*，|[^，]+$')
_LEADING_JUNK = '，、；：。！？… '


def _alternate(text: str, quote: str, opening: str, closing: str) -> str:
  if quote not in text:
    return text
  parts = text.split(quote)
  out = [parts[0]]
  for i, part in enumerate(parts[1:]):
    out.append(opening if i % 2 == 0 else closing)
    out.append(part)
  return ''.join(out)


def normalise(line: str) -> str:
  """One line of raw text in the corpus's conventions (width, punctuation, no spaces)."""
  line = line.translate(_TABLE)
  line = _DOT_RUN.sub(pinyin_lib.ELLIPSIS, line)
  line = _LONE_DOT.sub(pinyin_lib.CHINESE_PUNCTUATION['.'], line)
  for ascii_, pattern in _NOT_BETWEEN_DIGITS.items():
    line = pattern.sub(pinyin_lib.CHINESE_PUNCTUATION[ascii_], line)
  line = _alternate(line, '"', '“', '”')
  line = _alternate(line, "'", '‘', '’')
  line = _SPACE.sub(' ', line).strip()
  # A space survives only inside a number ('1 000'); it is not a passthrough symbol, so such a
  # sentence is then dropped rather than silently glued into one number.
  return _SPACE_NOT_IN_NUMBER.sub('', line)


def split_sentences(line: str) -> list[str]:
  out = []
  for s in _SENTENCE.findall(line):
    s = s.lstrip(_LEADING_JUNK)
    if s:
      out.append(s)
  return out


def fit_length(sentence: str, max_tokens: int) -> list[str]:
  """The sentence itself if short enough, else its '，' clauses packed up to max_tokens."""
  if len(sentence) <= max_tokens:
    return [sentence]
  pieces, current = [], ''
  for clause in _CLAUSE.findall(sentence):
    if current and len(current) + len(clause) > max_tokens:
      pieces.append(current)
      current = ''
    current += clause
  if current:
    pieces.append(current)
  return pieces


# ---------------------------------------------------------------------------------------------
# Pairing: sentence -> one pinyin key per character.

_NO_READING = '\x00'
_SYLLABLES = frozenset(pinyin_lib.SYLLABLES)


def _no_reading(chars: str) -> list[str]:
  # pypinyin hands over runs it has no reading for: symbols pass through one per character,
  # a CJK character without a reading is marked so the sentence can be dropped.
  return [_NO_READING if is_hanzi(c) else c for c in chars]


def pinyin_keys(sentence: str) -> list[str] | str:
  """Toneless keys aligned one per character, or the reason the sentence has none."""
  keys = pypinyin.lazy_pinyin(sentence, style=pypinyin.Style.NORMAL, v_to_u=False,
                              errors=_no_reading)
  return _check_keys(sentence, keys)


def _check_keys(sentence: str, keys: list[str]) -> list[str] | str:
  if len(keys) != len(sentence):
    return 'misaligned'
  for ch, key in zip(sentence, keys):
    if is_hanzi(ch):
      if key == _NO_READING:
        return 'no_reading'
      if key not in _SYLLABLES:
        return 'bad_syllable'
    elif key != ch or ch not in _PASSTHROUGH_SET:
      return 'misaligned'
  return keys


_TONE = re.compile(r'[1-5]$')


def gold_keys(sentence: str, gold: str) -> list[str] | None:
  """Keys from hand-checked 'ni3 hao3' pinyin, when it has one syllable per CJK character."""
  syllables = [_TONE.sub('', s.lower().replace('ü', 'v').replace('u:', 'v'))
               for s in gold.split()]
  if len(syllables) != count_hanzi(sentence) or not all(s in _SYLLABLES for s in syllables):
    return None
  it = iter(syllables)
  keys = [next(it) if is_hanzi(ch) else ch for ch in sentence]
  return None if isinstance(_check_keys(sentence, keys), str) else keys


# ---------------------------------------------------------------------------------------------
# One source: passages -> pairs, with counts of what was dropped and why.

class Pair(NamedTuple):
  keys: str   # Space-separated pinyin keys.
  hanzi: str


def clean(passage: sources_lib.Passage, max_len: int, min_cjk: int,
          stats: collections.Counter) -> list[str]:
  """The sentences of one passage that pass every cleaning rule; `stats` counts the drops."""
  max_tokens = max_len - 1  # The pipeline appends EOS.
  graded = passage.gold_pinyin is not None  # A graded sentence is one unit: never split it.
  lines = passage.text.splitlines()
  sentences = ([normalise(' '.join(lines))] if graded else
               [s for line in lines for s in split_sentences(normalise(line))])
  out = []
  for sentence in sentences:
    stats['sentences'] += 1
    if _LATIN.search(sentence):
      stats['drop_latin'] += 1
      continue
    if any(not is_hanzi(ch) and ch not in _PASSTHROUGH_SET for ch in sentence):
      stats['drop_symbol'] += 1
      continue
    pieces = [sentence] if graded else fit_length(sentence, max_tokens)
    stats['cut_at_comma'] += len(pieces) > 1
    for piece in pieces:
      if len(piece) > max_tokens:
        stats['drop_long'] += 1
      elif count_hanzi(piece) < min_cjk:
        stats['drop_short'] += 1
      else:
        out.append(piece)
  return out


def pair(sentence: str, gold_pinyin: str | None, stats: collections.Counter) -> Pair | None:
  """The sentence with its keys: hand-checked ones where they align, else pypinyin's."""
  keys = None
  if gold_pinyin is not None:
    keys = gold_keys(sentence, gold_pinyin)
    stats['gold_used' if keys is not None else 'gold_fallback'] += 1
    stats['gold_agrees_with_pypinyin'] += keys is not None and keys == pinyin_keys(sentence)
  if keys is None:
    keys = pinyin_keys(sentence)
  if isinstance(keys, str):
    stats[f'drop_{keys}'] += 1
    return None
  return Pair(' '.join(keys), sentence)


def clean_and_pair(passages: Iterable[sources_lib.Passage], max_len: int, min_cjk: int,
                   stats: collections.Counter) -> list[Pair]:
  """The pairs a list of passages yields; `stats` counts passages, sentences and drops."""
  out = []
  for passage in passages:
    stats['passages'] += 1
    for sentence in clean(passage, max_len, min_cjk, stats):
      p = pair(sentence, passage.gold_pinyin, stats)
      if p is not None:
        out.append(p)
  return out


def _pair_chunk(args) -> tuple[list[Pair], collections.Counter]:
  passages, max_len, min_cjk = args
  stats = collections.Counter()
  return clean_and_pair(passages, max_len, min_cjk, stats), stats


def _chunks(items: Iterable, size: int) -> Iterator[list]:
  chunk = []
  for item in items:
    chunk.append(item)
    if len(chunk) == size:
      yield chunk
      chunk = []
  if chunk:
    yield chunk


def pair_passages(passages: Iterable[sources_lib.Passage], max_len: int, min_cjk: int,
                  num_workers: int) -> tuple[list[Pair], collections.Counter]:
  """clean_and_pair over worker processes (pypinyin is the slow part); order is kept."""
  stats = collections.Counter()
  pairs: list[Pair] = []
  jobs = ((chunk, max_len, min_cjk) for chunk in _chunks(passages, 500))
  # 'spawn', not fork: a forked child of a process that has started JAX's threads can deadlock.
  ctx = multiprocessing.get_context('spawn')
  with (ctx.Pool(num_workers) if num_workers > 1 else contextlib.nullcontext()) as pool:
    for chunk_pairs, chunk_stats in (pool.imap if pool else map)(_pair_chunk, jobs):
      pairs.extend(chunk_pairs)
      stats.update(chunk_stats)
  # Exact duplicates inside one source (reposted news, repeated reviews) go here already.
  seen, unique = set(), []
  for p in pairs:
    if p.hanzi not in seen:
      seen.add(p.hanzi)
      unique.append(p)
  stats['duplicates'] = len(pairs) - len(unique)
  stats['kept'] = len(unique)
  stats['cjk_chars'] = sum(count_hanzi(p.hanzi) for p in unique)
  return unique, stats


# ---------------------------------------------------------------------------------------------
# Units of work: a registry source, or a list of plain texts standing for one corpus.

class Unit(NamedTuple):
  name: str
  corpus: str
  info: dict           # What the manifest says about where the text came from.
  passages: object     # () -> iterable of Passage, read lazily (downloads happen here).
  content_id: str      # Changes whenever the input text can have changed.


def parse_dev_sources(spec: str) -> dict[str, str]:
  """'linux_doc:dev_tech,sanguo:dev_narrative' -> {source: dev corpus}; unknown names fail."""
  out = {}
  for item in (x.strip() for x in spec.split(',')):
    if not item:
      continue
    name, colon, corpus = (x.strip() for x in item.partition(':'))
    if not colon or not corpus.startswith(DEV_PREFIX) or len(corpus) == len(DEV_PREFIX):
      raise ValueError(f'config.prepare.dev_sources: {item!r} is not SOURCE:{DEV_PREFIX}NAME '
                       "(e.g. 'linux_doc:dev_tech')")
    if name not in sources_lib.BY_NAME:
      raise ValueError(f'config.prepare.dev_sources: unknown source {name!r}; known sources: '
                       f'{", ".join(sources_lib.BY_NAME)}')
    out[name] = corpus
  return out


def _source_units(names: str, cache_dir: str, dev_sources: str = '') -> list[Unit]:
  held_out = parse_dev_sources(dev_sources)
  units = []
  for s in sources_lib.select(names):
    corpus = held_out.get(s.name, s.corpus)
    info = dict(package=s.package, version=s.version, kind=s.kind, filename=s.filename,
                sha256=s.sha256, members=list(s.members), licence=s.licence,
                description=s.description, corpus=corpus)
    content_id = s.sha256 + repr(s.members)
    if s.more:
      info['more'] = [p._asdict() for p in s.more]
      content_id += ''.join(p.sha256 for p in s.more)
    if s.parse.__module__ == formats.__name__:  # Its parser's rules can change the text.
      content_id += f' formats {formats.VERSION}'
    units.append(Unit(s.name, corpus, info,
                      lambda s=s: sources_lib.passages(s, cache_dir), content_id))
  return units


def _text_passages(lines: list[str]) -> list[sources_lib.Passage]:
  """Plain text lines; 'sentence<TAB>ni3 hao3 ...' lines carry gold pinyin."""
  out = []
  for line in lines:
    text, tab, gold = line.partition('\t')
    out.append(sources_lib.Passage(text, gold if tab else None))
  return out


def _text_units(texts_by_corpus: dict[str, list[str]]) -> list[Unit]:
  units = []
  for corpus, lines in texts_by_corpus.items():
    if corpus not in sources_lib.CORPORA and not corpus.startswith(DEV_PREFIX):
      raise ValueError(f'unknown corpus {corpus!r}: expected one of {sources_lib.CORPORA} '
                       f'or a dev corpus {DEV_PREFIX}NAME')
    digest = hashlib.sha256('\n'.join(lines).encode('utf-8')).hexdigest()
    units.append(Unit(corpus, corpus, dict(corpus=corpus, sha256=digest, lines=len(lines)),
                      lambda lines=lines: _text_passages(lines), digest))
  return units


def _min_cjk(corpus: str, cfg) -> int:
  # Graded learner sentences and verses are short by nature; the length floor is for web junk.
  return cfg.min_cjk_eval if corpus in EVAL_CORPORA else cfg.min_cjk


def _fingerprint(obj) -> str:
  return hashlib.sha1(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _unit_fingerprint(unit: Unit, cfg) -> str:
  # The syllable set decides which pairs survive, so a changed pinyin.py redoes the work.
  return _fingerprint([PREP_VERSION, pypinyin.__version__, unit.name, unit.corpus,
                       unit.content_id, cfg.max_len, _min_cjk(unit.corpus, cfg),
                       sorted(_SYLLABLES)])


def _write_atomic(path: str, write) -> None:
  tmp = f'{path}.tmp'
  with open(tmp, 'wb') as f:
    write(f)
  os.replace(tmp, path)


def _write_text(path: str, text: str) -> None:
  _write_atomic(path, lambda f: f.write(text.encode('utf-8')))


def _read_pairs(path: str) -> list[Pair]:
  with open(path, encoding='utf-8') as f:
    return [Pair(*line.rstrip('\n').split('\t')) for line in f]


def _pairs_text(pairs: Iterable[Pair]) -> str:
  return ''.join(f'{p.keys}\t{p.hanzi}\n' for p in pairs)


def process_unit(unit: Unit, cfg, work_dir: str | None,
                 log=print) -> tuple[list[Pair], dict]:
  """Pairs of one unit, from the cache in work_dir when it is up to date."""
  fp = _unit_fingerprint(unit, cfg)
  tsv = json_path = None
  if work_dir:
    tsv, json_path = (os.path.join(work_dir, f'{unit.name}.{ext}') for ext in ('tsv', 'json'))
    if os.path.exists(json_path) and os.path.exists(tsv):
      with open(json_path, encoding='utf-8') as f:
        done = json.load(f)
      if done.get('fingerprint') == fp:
        log(f'[prepare] {unit.name:>10}: cached, {done["stats"]["kept"]:,} sentences')
        return _read_pairs(tsv), done
  start = time.time()
  pairs, stats = pair_passages(unit.passages(), cfg.max_len, _min_cjk(unit.corpus, cfg),
                               cfg.num_workers)
  done = dict(fingerprint=fp, stats=dict(sorted(stats.items())),
              seconds=round(time.time() - start, 1))
  if work_dir:
    _write_text(tsv, _pairs_text(pairs))
    _write_text(json_path, json.dumps(done, indent=1, ensure_ascii=False))  # Written last.
  log(f'[prepare] {unit.name:>10}: {stats["kept"]:,} sentences, {stats["cjk_chars"]:,} CJK chars '
      f'from {stats["passages"]:,} passages ({stats["drop_latin"]:,} with Latin, '
      f'{stats["duplicates"]:,} duplicates dropped), {done["seconds"]} s')
  return pairs, done


# ---------------------------------------------------------------------------------------------
# Corpora, splits and vocabularies: pure functions of the pairs.

def assemble(pairs_by_unit: dict[str, list[Pair]], units: list[Unit]
             ) -> tuple[dict[str, list[Pair]], dict]:
  """Pairs per corpus: deduplicated across sources, held-out sentences removed elsewhere."""
  corpora: dict[str, list[Pair]] = {}
  seen: dict[str, set[str]] = collections.defaultdict(set)
  removed = collections.Counter()
  for unit in units:  # Registry order: the first source to hold a sentence keeps it.
    for p in pairs_by_unit[unit.name]:
      if p.hanzi not in seen[unit.corpus]:
        seen[unit.corpus].add(p.hanzi)
        corpora.setdefault(unit.corpus, []).append(p)
      else:
        removed[f'{unit.corpus}_cross_source_duplicates'] += 1
  held_out = set().union(*(seen[c] for c in EVAL_CORPORA))
  for corpus, excluded in (('domain', {'eval': held_out}),
                           ('general', {'eval': held_out, 'domain': seen['domain']})):
    for what, sentences in excluded.items():
      if corpus in corpora:
        kept = [p for p in corpora[corpus] if p.hanzi not in sentences]
        removed[f'{corpus}_overlap_with_{what}'] = len(corpora[corpus]) - len(kept)
        corpora[corpus] = kept
  # The newer corpora yield to those above and to each other in TRAIN_CORPORA's order, and a dev
  # corpus to every other one: general and domain stay as they were without them.
  taken = held_out | seen['domain'] | seen['general']
  later = [c for c in sources_lib.TRAIN_CORPORA if c not in ('domain', 'general')]
  dev = sorted(c for c in corpora if c.startswith(DEV_PREFIX))
  for corpus in later + dev:
    if corpus in corpora:
      kept = [p for p in corpora[corpus] if p.hanzi not in taken]
      removed[f'{corpus}_overlap_with_other_corpora'] = len(corpora[corpus]) - len(kept)
      corpora[corpus] = kept
      taken |= seen[corpus]
  return corpora, dict(sorted(removed.items()))


def split_key(hanzi: str, seed: int = 0) -> str:
  """sha1 of the sentence (salted by a nonzero seed): decides its split and its order."""
  text = hanzi if seed == 0 else f'{seed}\t{hanzi}'
  return hashlib.sha1(text.encode('utf-8')).hexdigest()


def split_sizes(n: int, fraction: float, minimum: int, cap: int) -> int:
  """A held-out split's size: fraction * n, at least `minimum`, at most `cap` and n // 5."""
  return max(0, min(max(round(fraction * n), minimum), cap, n // 5))


def split_corpus(pairs: list[Pair], cfg, cap: int) -> dict[str, list[Pair]]:
  """train/valid/test by content hash: the lowest hashes are valid, the next test."""
  ordered = sorted(pairs, key=lambda p: split_key(p.hanzi, cfg.seed))
  n_valid = split_sizes(len(ordered), cfg.valid_fraction, cfg.split_min, cap)
  n_test = split_sizes(len(ordered), cfg.test_fraction, cfg.split_min, cap)
  return {'valid': ordered[:n_valid], 'test': ordered[n_valid:n_valid + n_test],
          'train': ordered[n_valid + n_test:]}


def char_counts(pairs: Iterable[Pair]) -> collections.Counter:
  counts = collections.Counter()
  for p in pairs:
    counts.update(ch for ch in p.hanzi if is_hanzi(ch))
  return counts


def chars_for_coverage(counts: collections.Counter, target: float) -> list[str]:
  """The most frequent characters (ties by code point), fewest that cover >= target."""
  total = sum(counts.values())
  chars, covered = [], 0
  for ch, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
    if total and covered / total >= target:
      break
    chars.append(ch)
    covered += c
  return chars


def coverage(counts: collections.Counter, vocab: vocab_lib.Vocab) -> float:
  """Share of character occurrences that the vocabulary has (1.0 for no characters)."""
  total = sum(counts.values())
  return sum(c for ch, c in counts.items() if ch in vocab) / total if total else 1.0


def pinyin_vocab() -> vocab_lib.Vocab:
  return vocab_lib.Vocab.from_tokens(
      list(pinyin_lib.SYLLABLES) + list(pinyin_lib.INITIAL_KEYS) + list(PASSTHROUGH))


def hanzi_vocab(chars: list[str]) -> vocab_lib.Vocab:
  return vocab_lib.Vocab.from_tokens(list(PASSTHROUGH) + chars)


# ---------------------------------------------------------------------------------------------
# Writing.

def encode(pairs: list[Pair], pv: vocab_lib.Vocab, hv: vocab_lib.Vocab
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """src [total] uint16, tgt [total] uint16, offsets [n + 1] int64."""
  src, tgt = array.array('H'), array.array('H')
  offsets = np.zeros(len(pairs) + 1, np.int64)
  for k, p in enumerate(pairs):
    keys = p.keys.split(' ')
    assert len(keys) == len(p.hanzi), p
    src.extend(pv.index[t] for t in keys)  # KeyError here would be a pairing bug.
    tgt.extend(hv.index.get(ch, vocab_lib.UNK) for ch in p.hanzi)
    offsets[k + 1] = len(src)
  return (np.frombuffer(src, np.uint16).copy(), np.frombuffer(tgt, np.uint16).copy(), offsets)


def write_split(out_dir: str, corpus: str, split: str, pairs: list[Pair],
                pv: vocab_lib.Vocab, hv: vocab_lib.Vocab, tsv: bool) -> dict:
  os.makedirs(os.path.join(out_dir, corpus), exist_ok=True)
  base = os.path.join(out_dir, corpus, split)
  src, tgt, offsets = encode(pairs, pv, hv)
  for part, arr in (('src', src), ('tgt', tgt), ('offsets', offsets)):
    _write_atomic(f'{base}.{part}.npy', lambda f, arr=arr: np.save(f, arr))
  if tsv:
    _write_text(f'{base}.tsv', _pairs_text(pairs))
  return dict(sentences=len(pairs), tokens=int(len(src)),
              cjk_chars=sum(count_hanzi(p.hanzi) for p in pairs),
              unk_tokens=int(np.sum(tgt == vocab_lib.UNK)))


def _cap(corpus: str, cfg) -> int:
  return cfg.general_split_cap if corpus == 'general' else cfg.domain_split_cap


def corpus_splits(corpus: str, pairs: list[Pair], cfg) -> dict[str, list[Pair]]:
  """An evaluation corpus is one test split in hash order; a dev corpus the first dev_size of
  that order (a fixed sample); a training corpus is split train/valid/test."""
  if corpus in EVAL_CORPORA or corpus.startswith(DEV_PREFIX):
    ordered = sorted(pairs, key=lambda p: split_key(p.hanzi, cfg.seed))
    return {'test': ordered[:cfg.dev_size] if corpus.startswith(DEV_PREFIX) else ordered}
  return split_corpus(pairs, cfg, _cap(corpus, cfg))


def build(units: list[Unit], out_dir: str, cfg, log=print, cache: bool = True) -> dict:
  """Every stage for these units; writes out_dir and returns the manifest."""
  start = time.time()
  fingerprint = _fingerprint([_unit_fingerprint(u, cfg) for u in units] + [
      cfg.seed, cfg.valid_fraction, cfg.test_fraction, cfg.split_min, cfg.general_split_cap,
      cfg.domain_split_cap, cfg.dev_size, cfg.coverage, PASSTHROUGH, list(pinyin_lib.SYLLABLES),
      list(pinyin_lib.INITIAL_KEYS)])  # Their order is the pinyin vocabulary's.
  manifest_path = os.path.join(out_dir, 'manifest.json')
  if os.path.exists(manifest_path):
    with open(manifest_path, encoding='utf-8') as f:
      manifest = json.load(f)
    if manifest.get('fingerprint') == fingerprint:
      log(f'[prepare] {out_dir} is already prepared with this config; nothing to do')
      return manifest
    os.remove(manifest_path)  # Stale: until the new one is written, the directory is unfinished.

  os.makedirs(out_dir, exist_ok=True)
  work_dir = os.path.join(out_dir, 'work') if cache else None
  if work_dir:
    os.makedirs(work_dir, exist_ok=True)
  pairs_by_unit, done_by_unit = {}, {}
  for unit in units:
    pairs_by_unit[unit.name], done_by_unit[unit.name] = process_unit(unit, cfg, work_dir, log)

  corpora, removed = assemble(pairs_by_unit, units)
  if not corpora.get('general'):
    raise ValueError('the general corpus is empty: config.prepare.sources must name at least '
                     'one general source (the vocabulary is counted on general/train)')
  names = list(sources_lib.CORPORA) + sorted(c for c in corpora if c.startswith(DEV_PREFIX))
  splits = {c: corpus_splits(c, corpora[c], cfg) for c in names if corpora.get(c)}

  stale = set(sources_lib.CORPORA) | {d for d in os.listdir(out_dir) if d.startswith(DEV_PREFIX)}
  for corpus in stale - set(splits):  # Left from a run with other sources or dev sets.
    shutil.rmtree(os.path.join(out_dir, corpus), ignore_errors=True)

  train_counts = char_counts(splits['general']['train'])
  pv, hv = pinyin_vocab(), hanzi_vocab(chars_for_coverage(train_counts, cfg.coverage))
  os.makedirs(os.path.join(out_dir, 'vocab'), exist_ok=True)
  pv.save(os.path.join(out_dir, 'vocab', 'pinyin.txt'))
  hv.save(os.path.join(out_dir, 'vocab', 'hanzi.txt'))

  counts, cover = {}, {}
  for corpus, by_split in splits.items():
    counts[corpus] = {}
    for split, pairs in by_split.items():
      tsv = split != 'train'
      counts[corpus][split] = write_split(out_dir, corpus, split, pairs, pv, hv, tsv)
      name = f'{corpus}/{split}'
      cover[name] = round(coverage(char_counts(pairs), hv), 6)
      log(f'[prepare] {name}: {len(pairs):,} sentences, '
          f'{counts[corpus][split]["cjk_chars"]:,} CJK chars, coverage {cover[name]:.4%}')
  domain_counts = char_counts(p for ps in splits.get('domain', {}).values() for p in ps)
  domain_oov = sorted(((ch, c) for ch, c in domain_counts.items() if ch not in hv),
                      key=lambda kv: (-kv[1], kv[0]))
  if domain_counts:
    cover['domain'] = round(coverage(domain_counts, hv), 6)

  manifest = dict(
      prep_version=PREP_VERSION,
      fingerprint=fingerprint,
      pypinyin=pypinyin.__version__,
      # text_dir is a path on the machine that made it; the sources' sha256 identify the text.
      config={k: v for k, v in cfg.to_dict().items() if k != 'text_dir'},
      sources={u.name: dict(u.info, stats=done_by_unit[u.name]['stats']) for u in units},
      removed=removed,
      corpora=counts,
      vocab=dict(pinyin=len(pv), hanzi=len(hv), hanzi_chars=len(hv) - len(vocab_lib.SPECIALS)
                 - len(PASSTHROUGH), passthrough=len(PASSTHROUGH),
                 pinyin_fingerprint=pv.fingerprint(), hanzi_fingerprint=hv.fingerprint(),
                 distinct_chars_in_general_train=len(train_counts)),
      coverage=dict(target=cfg.coverage, **cover),
      domain_chars_outside_vocab=[[ch, c] for ch, c in domain_oov],
      timing=dict(wall_s=round(time.time() - start, 1),
                  per_source_s={u.name: done_by_unit[u.name]['seconds'] for u in units}),
  )
  # The manifest is written last: its presence (with this fingerprint) means "finished".
  _write_text(manifest_path, json.dumps(manifest, indent=1, ensure_ascii=False) + '\n')
  log(f'[prepare] done in {manifest["timing"]["wall_s"]} s: vocab pinyin {len(pv)}, '
      f'hanzi {len(hv)}; coverage general/train {cover["general/train"]:.4%}'
      + (f', domain {cover["domain"]:.4%}' if 'domain' in cover else ''))
  return manifest


# ---------------------------------------------------------------------------------------------
# Entry points.

def prepare(config, workdir: str) -> dict:
  """Prepares the corpora that `config.prepare` names into `workdir`; returns the manifest.

  With `config.prepare.text_dir` set, reads `<corpus>.txt` files from there instead of the
  registry sources (that is how tests/fixtures/tiny_data is made).
  """
  cfg = config.prepare
  if cfg.get('text_dir'):
    return prepare_texts(read_text_dir(cfg.text_dir), workdir, config)
  return build(_source_units(cfg.sources, cfg.cache_dir, cfg.dev_sources), workdir, cfg)


def read_text_dir(text_dir: str) -> dict[str, list[str]]:
  """{corpus: lines} from `text_dir/<corpus>.txt` for every corpus that has a file."""
  texts = {}
  for corpus in sources_lib.CORPORA:
    path = os.path.join(text_dir, f'{corpus}.txt')
    if os.path.exists(path):
      with open(path, encoding='utf-8') as f:
        texts[corpus] = f.read().splitlines()
  if not texts:
    raise ValueError(f'{text_dir} has none of {[c + ".txt" for c in sources_lib.CORPORA]}')
  return texts


def prepare_texts(texts_by_corpus: dict[str, list[str]], workdir: str, config,
                  log=print) -> dict:
  """Prepared data from plain text: {'general': [lines], 'domain': [...], ...} -> workdir.

  Each line is raw text (split into sentences like any source); a line
  'sentence<TAB>ni3 hao3 ...' gives gold pinyin. Nothing is cached: the texts are small.
  """
  return build(_text_units(texts_by_corpus), workdir, config.prepare, log, cache=False)
