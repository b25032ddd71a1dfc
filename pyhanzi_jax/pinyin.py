"""Pinyin parser: turns what a person types into syllable tokens, exactly and fast.

`parse("ni3hao, shijie nh")` gives one `Token` per syllable, abbreviation or symbol: the
vocabulary key the model reads (`ni`, `hao`, `,`, `shi`, `jie`, `n*`, `h*`), the tone if one
was typed, and the character offsets it came from, so a caller can point at what it could not
read. `candidates` says which characters a key may become; `char_readings` reads pypinyin's
dictionary the same way the training data does (toneless, ü written v).

What the parser reads
- Letters in any case. ü may be typed `v`, `ü` or `u:`; `lue`/`nue` mean `lve`/`nve`, and
  `jv qv xv yv` (also `xvan`, `yve`, ...) mean `ju qu xu yu`, which stay as they are.
- Syllables separated by spaces or apostrophes (`xi'an`), or run together (`nihao`).
- A tone as a digit 1-5 right after a syllable (`ni3`, 5 = neutral) or as a mark (`nǐ`);
  `keep_tones=False` drops it. A digit after anything else is a symbol, so `第3个` is typed
  `di 3 ge` (in `di3ge` the 3 is di's tone).
- Abbreviations: initials stand for whole syllables (`nh` is ni hao; zh, ch, sh are one
  initial each), mixed with full syllables as people type them (`zhongh renm`).
- Anything else passes through one character per token, key = the character: digits,
  punctuation (ASCII, CJK, full width), symbols, emoji (one token per code point), characters
  typed directly. Full-width digits and letters are read as ASCII ones. Whitespace and
  apostrophes only separate; so do control characters, terminal escape sequences (ESC [ ...),
  zero-width spaces, byte-order marks and bidirectional controls, which never reach a token.
- Refused with a PinyinError that names the spot: Latin letters that are not pinyin even as
  abbreviations (`iphone`: no syllable starts with i), empty input, unpaired surrogates (bytes
  that were not UTF-8), and input longer than MAX_INPUT_CHARS.

Latin words (`keep_latin=True`, what the converter uses)
People mix Latin words, product names and URLs into what they type, and IMEs show such text as
typed (`wo yong iphone` -> 我用iphone). With keep_latin these become one PASSTHROUGH token each,
text as typed and key LATIN_KEY (the vocabularies' unknown symbol: the model reads one stand-in
whatever the word), instead of an error:
- a run of letters that no cut reads as pinyin, even with initials (`iphone`, `ipad`, `u`);
- a word joined by . - _ / @ : + # & = ? % ~ (`github.com`, `node.js`) in which any run of
  letters is unreadable, or that has letters outside a-z (`señor`): the whole word;
- URLs (`scheme://...`, `www....`), e-mail addresses and file names with a common extension
  (`main.py`, `baidu.com`), whole, even where their letters read as pinyin;
- text between backticks, as typed without them (`` `hello` ``): the way to keep a word that
  also reads as pinyin, which is otherwise converted (`hello` is he l* lo, `world` wo r* l* d*).
Letters that read as pinyin stay pinyin, so nothing typed as pinyin changes (`nihao`, `xian`,
`nh`). A line whose only letters are unreadable runs (`iphone`, `iphone 15`) is still refused:
that is a typo or not pinyin at all, and the message says where.

How a run of letters is cut
A run (letters between separators, digits and symbols) is cut by dynamic programming over every
way to write it as pieces, a piece being a full syllable or an initial. The cheapest cut wins,
comparing in order:
  1. fewest initials: a run that reads as full syllables does (`xian` is one syllable; type
     `xi'an` for two), and an abbreviated one keeps what it can as syllables (`zhongh` is
     zhong h*, `nihaosj` is ni hao s* j*);
  2. fewest pieces (`xianzai` is xian zai, not xi an zai);
  3. fewest rare syllables (RARE_SYLLABLES: din, den, len, ... which only a handful of rare
     characters read), so `dengai` is deng ai, not den gai;
  4. fewest syllables that start with a vowel: a boundary goes where the next syllable keeps a
     consonant, the convention of pinyin IMEs and the reason the apostrophe exists. So `fangan`
     is fan gan, `xinan` xi nan, `jianing` jia ning, `changan` chan gan, `tiane` tian e (its
     only cut into two); type `fang'an`, `chang'an` for the others;
  5. a longer first piece.
The interjections m, n, ng, hm, hng are read as syllables only when they are a whole run, and
only when no neighbouring token is an abbreviation: `n` and `hm` alone are syllables, but `nh`
is n* h*, and so is `n h`. Inside an abbreviated run a lone a, o or e is the abbreviation of the
syllables starting with it (`woazg` is wo a* z* g*), as the training data abbreviates `ai`.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.util
import json
import os
import re
import unicodedata

MAX_INPUT_CHARS = 2000

# Every toneless syllable, ü written v: every reading of every character in pypinyin 0.55's
# pinyin_dict with its tone removed, except those in EXCLUDED_READINGS. The order is the
# pinyin vocabulary's (data/prepare.py), so it only ever grows at the end.
SYLLABLES: tuple[str, ...] = (
    'a', 'ai', 'an', 'ang', 'ao', 'ba', 'bai', 'ban', 'bang', 'bao', 'bei', 'ben', 'beng', 'bi',
    'bian', 'biang', 'biao', 'bie', 'bin', 'bing', 'bo', 'bong', 'bu', 'ca', 'cai', 'can', 'cang',
    'cao', 'ce', 'cei', 'cen', 'ceng', 'cha', 'chai', 'chan', 'chang', 'chao', 'che', 'chen',
    'cheng', 'chi', 'chong', 'chou', 'chu', 'chua', 'chuai', 'chuan', 'chuang', 'chui', 'chun',
    'chuo', 'ci', 'cong', 'cou', 'cu', 'cuan', 'cui', 'cun', 'cuo', 'da', 'dai', 'dan', 'dang',
    'dao', 'de', 'dei', 'den', 'deng', 'di', 'dia', 'dian', 'diao', 'die', 'din', 'ding', 'diu',
    'dong', 'dou', 'du', 'duan', 'dui', 'dun', 'duo', 'e', 'ei', 'en', 'eng', 'er', 'fa', 'fan',
    'fang', 'fei', 'fen', 'feng', 'fiao', 'fo', 'fou', 'fu', 'ga', 'gai', 'gan', 'gang', 'gao',
    'ge', 'gei', 'gen', 'geng', 'gong', 'gou', 'gu', 'gua', 'guai', 'guan', 'guang', 'gui', 'gun',
    'guo', 'ha', 'hai', 'han', 'hang', 'hao', 'he', 'hei', 'hen', 'heng', 'hm', 'hng', 'hong',
    'hou', 'hu', 'hua', 'huai', 'huan', 'huang', 'hui', 'hun', 'huo', 'ji', 'jia', 'jian', 'jiang',
    'jiao', 'jie', 'jin', 'jing', 'jiong', 'jiu', 'ju', 'juan', 'jue', 'jun', 'ka', 'kai', 'kan',
    'kang', 'kao', 'ke', 'kei', 'ken', 'keng', 'kong', 'kou', 'ku', 'kua', 'kuai', 'kuan', 'kuang',
    'kui', 'kun', 'kuo', 'la', 'lai', 'lan', 'lang', 'lao', 'le', 'lei', 'len', 'leng', 'li',
    'lia', 'lian', 'liang', 'liao', 'lie', 'lin', 'ling', 'liu', 'lo', 'long', 'lou', 'lu', 'luan',
    'lun', 'luo', 'lv', 'lve', 'm', 'ma', 'mai', 'man', 'mang', 'mao', 'me', 'mei', 'men', 'meng',
    'mi', 'mian', 'miao', 'mie', 'min', 'ming', 'miu', 'mo', 'mou', 'mu', 'n', 'na', 'nai', 'nan',
    'nang', 'nao', 'ne', 'nei', 'nen', 'neng', 'ng', 'ni', 'nia', 'nian', 'niang', 'niao', 'nie',
    'nin', 'ning', 'niu', 'nong', 'nou', 'nu', 'nuan', 'nun', 'nuo', 'nv', 'nve', 'o', 'ou', 'pa',
    'pai', 'pan', 'pang', 'pao', 'pei', 'pen', 'peng', 'pi', 'pian', 'piao', 'pie', 'pin', 'ping',
    'po', 'pou', 'pu', 'qi', 'qia', 'qian', 'qiang', 'qiao', 'qie', 'qin', 'qing', 'qiong', 'qiu',
    'qu', 'quan', 'que', 'qun', 'ran', 'rang', 'rao', 're', 'ren', 'reng', 'ri', 'rong', 'rou',
    'ru', 'rua', 'ruan', 'rui', 'run', 'ruo', 'sa', 'sai', 'san', 'sang', 'sao', 'se', 'sen',
    'seng', 'sha', 'shai', 'shan', 'shang', 'shao', 'she', 'shei', 'shen', 'sheng', 'shi', 'shou',
    'shu', 'shua', 'shuai', 'shuan', 'shuang', 'shui', 'shun', 'shuo', 'si', 'song', 'sou', 'su',
    'suan', 'sui', 'sun', 'suo', 'ta', 'tai', 'tan', 'tang', 'tao', 'te', 'tei', 'teng', 'ti',
    'tian', 'tiao', 'tie', 'ting', 'tong', 'tou', 'tu', 'tuan', 'tui', 'tun', 'tuo', 'wa', 'wai',
    'wan', 'wang', 'wei', 'wen', 'weng', 'wo', 'wong', 'wu', 'xi', 'xia', 'xian', 'xiang', 'xiao',
    'xie', 'xin', 'xing', 'xiong', 'xiu', 'xu', 'xuan', 'xue', 'xun', 'ya', 'yan', 'yang', 'yao',
    'ye', 'yi', 'yin', 'ying', 'yo', 'yong', 'you', 'yu', 'yuan', 'yue', 'yun', 'za', 'zai', 'zan',
    'zang', 'zao', 'ze', 'zei', 'zen', 'zeng', 'zha', 'zhai', 'zhan', 'zhang', 'zhao', 'zhe',
    'zhei', 'zhen', 'zheng', 'zhi', 'zhong', 'zhou', 'zhu', 'zhua', 'zhuai', 'zhuan', 'zhuang',
    'zhui', 'zhun', 'zhuo', 'zi', 'zong', 'zou', 'zu', 'zuan', 'zui', 'zun', 'zuo',)

# Readings pypinyin gives that are not in SYLLABLES, and the syllable read instead: ê (欸) has no
# key on any keyboard layout, and IMEs type it as e.
EXCLUDED_READINGS: dict[str, str] = {'ê': 'e'}

# Abbreviation keys: one per initial, and a*/o*/e* for syllables without one. Vocabulary order.
INITIAL_KEYS: tuple[str, ...] = (
    'b*', 'p*', 'm*', 'f*', 'd*', 't*', 'n*', 'l*', 'g*', 'k*', 'h*', 'j*', 'q*', 'x*',
    'zh*', 'ch*', 'sh*', 'r*', 'z*', 'c*', 's*', 'y*', 'w*', 'a*', 'o*', 'e*',
)

# Interjections with no vowel: read only as a whole run (see the module docstring).
INTERJECTIONS = frozenset(('m', 'n', 'ng', 'hm', 'hng'))

# Syllables that only a handful of rare, dialect or interjection characters read (three or
# fewer in the Unified block): they lose ties in a run, so `dengai` is deng ai. Alone they parse.
RARE_SYLLABLES = frozenset((
    'biang', 'bong', 'cei', 'chua', 'den', 'din', 'eng', 'fiao', 'kei', 'len', 'lo', 'nia',
    'nun', 'rua', 'tei', 'wong'))

SYLLABLE, INITIAL, PASSTHROUGH = 'syllable', 'initial', 'passthrough'

# The key of a Latin word kept as typed (keep_latin): the unknown symbol of both vocabularies
# (data/vocab.SPECIALS), so the model reads every such word as one stand-in it has an id for.
LATIN_KEY = '<unk>'

_SYLLABLE_SET = frozenset(SYLLABLES)
_INITIALS = ('b', 'p', 'm', 'f', 'd', 't', 'n', 'l', 'g', 'k', 'h', 'j', 'q', 'x',
             'zh', 'ch', 'sh', 'r', 'z', 'c', 's', 'y', 'w')


class PinyinError(ValueError):
  """Input that is not pinyin; `position` is the character offset of the problem, if any."""

  def __init__(self, message: str, position: int | None = None):
    super().__init__(message)
    self.position = position

  def __reduce__(self):  # Keeps `position` across pickling (worker processes).
    return type(self), (str(self), self.position)


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
  """One parsed unit of the input."""
  text: str         # As typed, tone digit included: input[start:end].
  key: str          # Vocabulary key: 'nv', 'zh*' or the passthrough character.
  kind: str         # SYLLABLE, INITIAL or PASSTHROUGH.
  start: int        # Character offsets into the input.
  end: int
  tone: int | None = None  # 1-5 (5 = neutral) when typed and kept; never set on initials.


def initial_key(syllable: str) -> str:
  """The abbreviation key of a syllable: 'zhong' -> 'zh*', 'ai' -> 'a*', 'ng' -> 'n*'."""
  if syllable[:2] in ('zh', 'ch', 'sh'):
    return syllable[:2] + '*'
  return syllable[:1] + '*'


def syllables_for_key(key: str) -> tuple[str, ...]:
  """The syllables a key stands for: all of them for 'z*' (zh ones too), (key,) for a syllable."""
  if key in _SYLLABLE_SET:
    return (key,)
  return _KEY_SYLLABLES.get(key, ())


_KEY_SYLLABLES = {k: tuple(s for s in SYLLABLES if s.startswith(k[:-1])) for k in INITIAL_KEYS}


# ---------------------------------------------------------------------------------------------
# Cutting a run of letters. Costs are compared as one integer; each rule of the module
# docstring is a digit group wide enough for MAX_INPUT_CHARS pieces.

_COST_INITIAL, _COST_PIECE, _COST_RARE, _COST_VOWEL = 10**12, 10**8, 10**4, 1
_UNREACHABLE = 10**18


def _spellings() -> dict[str, str]:
  """Typed spelling -> syllable, for syllables that may sit inside a run."""
  out = {s: s for s in SYLLABLES if s not in INTERJECTIONS}
  out.update(lue='lve', nue='nve')
  for s in SYLLABLES:
    if s[0] in 'jqxy' and s[1:2] == 'u':
      out[s[0] + 'v' + s[2:]] = s
  return out


def _piece_tables() -> tuple[dict, dict]:
  full = {}
  for spelling, syl in _spellings().items():
    cost = (_COST_PIECE + _COST_RARE * (syl in RARE_SYLLABLES) +
            _COST_VOWEL * (syl[0] in 'aoe'))
    full[spelling] = (syl, SYLLABLE, cost)
  mixed = dict(full)
  for i in _INITIALS:
    mixed[i] = (i + '*', INITIAL, _COST_INITIAL + _COST_PIECE)
  return full, mixed


_PIECES_FULL, _PIECES_MIXED = _piece_tables()
_LONGEST = max(map(len, _PIECES_MIXED))
_VOWEL_KEYS = {'a': 'a*', 'o': 'o*', 'e': 'e*'}


def _prefix_table(pieces: dict) -> dict:
  """Every prefix of every piece -> the piece's entry, or None for a prefix that is no piece:
  one lookup per letter both finds pieces and stops the scan where nothing can follow."""
  table = {}
  for spelling in pieces:
    for k in range(1, len(spelling)):
      table.setdefault(spelling[:k], None)
  table.update(pieces)
  return table


_PREFIXES_FULL, _PREFIXES_MIXED = _prefix_table(_PIECES_FULL), _prefix_table(_PIECES_MIXED)


def _cut(run: str, allow_initials: bool) -> tuple[tuple[int, int, str, str], ...] | int:
  """The cheapest cut of a lowercase run: ((start, end, key, kind), ...), or, when there is
  none, the offset of the first letter no piece can start from."""
  prefixes = _PREFIXES_MIXED if allow_initials else _PREFIXES_FULL
  n = len(run)
  best = [_UNREACHABLE] * (n + 1)
  best[n] = 0
  step = [0] * (n + 1)
  get = prefixes.get
  # Right to left; '<=' while pieces grow sends ties to the longer first piece.
  for i in range(n - 1, -1, -1):
    b, s = _UNREACHABLE, 0
    for j in range(i + 1, min(i + _LONGEST, n) + 1):
      p = get(run[i:j], 0)
      if p == 0:
        break
      if p is not None and p[2] + best[j] <= b:
        b, s = p[2] + best[j], j
    best[i], step[i] = b, s
  if best[0] >= _UNREACHABLE:
    return _stuck_at(run, _PIECES_MIXED if allow_initials else _PIECES_FULL)
  pieces = _PIECES_MIXED if allow_initials else _PIECES_FULL
  out, i, abbreviated = [], 0, False
  while i < n:
    j = step[i]
    key, kind, _ = pieces[run[i:j]]
    abbreviated |= kind is INITIAL
    out.append((i, j, key, kind))
    i = j
  if abbreviated:
    out = [(i, j, _VOWEL_KEYS[k], INITIAL) if k in _VOWEL_KEYS else (i, j, k, kind)
           for i, j, k, kind in out]
  return tuple(out)


def _stuck_at(run: str, pieces: dict) -> int:
  reached, furthest = {0}, 0
  for i in range(len(run)):
    if i in reached:
      furthest = i
      reached.update(i + k for k in range(1, _LONGEST + 1) if run[i:i + k] in pieces)
  return furthest


def _segment(run: str, allow_initials: bool):
  if run in INTERJECTIONS:
    return ((0, len(run), run, SYLLABLE),)
  return _cut(run, allow_initials)


# Short runs (typed syllables, words) repeat endlessly; long ones rarely, and would fill memory.
_CACHED_RUN_CHARS = 24
_segment_cached = functools.lru_cache(maxsize=1 << 15)(_segment)


# ---------------------------------------------------------------------------------------------
# Normalising what was typed to lowercase ASCII pinyin, keeping offsets into the input.

def _mark_table() -> dict[str, tuple[str, int | None]]:
  table = {'ü': ('v', None), 'ê': ('e', None)}
  for letter, marked in (('a', 'āáǎà'), ('e', 'ēéěè'), ('i', 'īíǐì'), ('o', 'ōóǒò'),
                         ('u', 'ūúǔù'), ('v', 'ǖǘǚǜ'), ('n', '\0ńňǹ'), ('m', '\0ḿ\0\0')):
    for tone, c in enumerate(marked, 1):
      if c != '\0':
        table[c] = (letter, tone)
  table['ế'], table['ề'] = ('e', 2), ('e', 4)
  for c, v in list(table.items()):
    if len(c.upper()) == 1 and c.upper() != c:
      table[c.upper()] = v
  return table


_MARKED = _mark_table()
_COMBINING_TONES = {'\u0304': 1, '\u0301': 2, '\u030c': 3, '\u0300': 4}
_APOSTROPHES = "'\u2018\u2019\uff07"
# What only separates: whitespace, apostrophes, terminal escape sequences (CSI `ESC [ ... final`,
# OSC `ESC ] ... BEL`, two-character ones such as `ESC 7`) and the characters that would reach a
# terminal as controls or reorder what it shows: C0/C1 controls, zero-width spaces, the byte-order
# mark, bidirectional controls. Dropping them keeps them out of every output.
_SEPARATOR = (r"[\s'\u2018\u2019\uff07]"
              r"|\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[0-~])?"
              r"|[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069"
              r"\ufeff]")
_SCAN = re.compile(rf"([a-z]+)([1-5]?)|(?:{_SEPARATOR})+|(.)", re.S)
_SURROGATE = re.compile('[\ud800-\udfff]')


def _normalise(text: str) -> tuple[str, list[int] | None, dict[int, int]]:
  """(lowercase text, offset in `text` of each of its characters + [len(text)], tone marks by
  normalised offset). Offsets are None when they are the identity."""
  if text.isascii() and ':' not in text:
    return text.lower(), None, {}
  chars, offs, marks = [], [], {}
  i, n = 0, len(text)
  while i < n:
    c = text[i]
    offs.append(i)
    if c < '\x80':
      if c in 'uU' and text[i + 1:i + 2] == ':':
        chars.append('v')
        i += 2
        continue
      chars.append(c.lower())
    elif c in _MARKED:
      letter, tone = _MARKED[c]
      if tone:
        marks[len(chars)] = tone
      chars.append(letter)
    elif chars and 'a' <= chars[-1] <= 'z' and c in '\u0304\u0301\u030c\u0300\u0308\u0302':
      # A combining mark (decomposed input): it belongs to the letter before it.
      offs.pop()
      if c in _COMBINING_TONES:
        marks[len(chars) - 1] = _COMBINING_TONES[c]
      elif c == '\u0308' and chars[-1] == 'u':
        chars[-1] = 'v'
    elif '\uff10' <= c <= '\uff5a' and c.isalnum():  # Full-width digits and letters.
      chars.append(chr(ord(c) - 0xfee0).lower())
    else:
      chars.append(c)
    i += 1
  offs.append(n)
  return ''.join(chars), offs, marks


@functools.lru_cache(maxsize=4096)
def _is_foreign_latin(c: str) -> bool:
  """A Latin letter that is not pinyin ('ñ', 'ß'); letters of other scripts pass through."""
  return unicodedata.category(c).startswith('L') and unicodedata.name(c, '').startswith('LATIN')


# ---------------------------------------------------------------------------------------------
# Parsing.

_HINT = ("type syllables like 'ni hao', initials like 'nh', or separate words with "
         'spaces/apostrophes')
_HINT_FULL = ("type full syllables like 'ni hao' (abbreviations are turned off), or separate "
              'words with spaces/apostrophes')


def parse(text: str, *, allow_initials: bool = True, keep_tones: bool = True,
          keep_latin: bool = False) -> list[Token]:
  """Tokens of typed pinyin; raises PinyinError, and only that, for input it cannot read.

  keep_latin: Latin words, URLs and `quoted` text become passthrough tokens (key LATIN_KEY)
    instead of errors (the module docstring says which); a line whose only letters are
    unreadable is still refused.
  """
  if not isinstance(text, str):
    raise PinyinError(f'expected text (str), got {type(text).__name__}')
  if len(text) > MAX_INPUT_CHARS:
    raise PinyinError(f'input is {len(text)} characters, over the limit of {MAX_INPUT_CHARS}: '
                      'split it into sentences and parse them one at a time',
                      MAX_INPUT_CHARS)
  if not text.isascii():
    bad = _SURROGATE.search(text)
    if bad:
      raise PinyinError(f'unpaired surrogate U+{ord(bad.group()):04X} at position '
                        f'{bad.start()}: the input was not valid UTF-8 text', bad.start())
  norm, offs, marks = _normalise(text)
  literals = _latin_spans(text, norm, offs, allow_initials) if keep_latin else []
  tokens: list[Token] = []
  interjections: list[int] = []  # Tokens that become initials next to an abbreviation.
  unreadable: list[PinyinError] = []  # Latin runs kept as typed only because nothing reads them.

  def latin(a: int, b: int) -> None:
    start, end = (offs[a], offs[b]) if offs else (a, b)
    tokens.append(Token(text[start:end], LATIN_KEY, PASSTHROUGH, start, end))

  pos = 0
  for lit_start, lit_end, error in literals + [(len(norm), len(norm), None)]:
    for m in _SCAN.finditer(norm, pos, lit_start):
      run = m.group(1)
      if run is not None:
        p = m.start()
        cut = (_segment_cached(run, allow_initials) if len(run) <= _CACHED_RUN_CHARS
               else _segment(run, allow_initials))
        digit = m.group(2)
        if cut.__class__ is int:
          error_ = _unreadable(text, norm, offs, p, run, cut, allow_initials)
          if not keep_latin:
            raise error_
          unreadable.append(error_)
          latin(p, p + len(run))
          cut = ()
        for s, e, key, kind in cut:
          a, b, tone = p + s, p + e, None
          if kind is SYLLABLE:
            if digit and b == p + len(run):
              b, tone = b + 1, int(digit)
              digit = ''
            elif marks:
              tone = next((marks[x] for x in range(a, b) if x in marks), None)
          start, end = (offs[a], offs[b]) if offs else (a, b)
          tokens.append(Token(text[start:end], key, kind, start, end,
                              tone if keep_tones else None))
        if run in INTERJECTIONS and tone is None and allow_initials:
          interjections.append(len(tokens) - 1)
        if digit:  # After an initial (or a Latin run) a digit is not a tone.
          a = m.end() - 1
          start, end = (offs[a], offs[a + 1]) if offs else (a, a + 1)
          tokens.append(Token(text[start:end], digit, PASSTHROUGH, start, end))
      elif m.group(3) is not None:
        c, a = m.group(3), m.start()
        start, end = (offs[a], offs[a + 1]) if offs else (a, a + 1)
        if c >= '\x80' and _is_foreign_latin(c):
          error_ = PinyinError(
              f'cannot read {text[start:end]!r} at position {start} as pinyin: pinyin letters '
              'are a-z, with v, ü or u: for ü and optional tone marks (ā á ǎ à); '
              'remove it or type its pinyin', start)
          if not keep_latin:
            raise error_
          unreadable.append(error_)
          latin(a, a + 1)
          continue
        tokens.append(Token(text[start:end], c, PASSTHROUGH, start, end))
    if lit_end > lit_start and error is not _SEPARATE:
      if error is not None:
        unreadable.append(error)
      latin(lit_start, lit_end)
    pos = lit_end
  if not tokens:
    raise PinyinError('empty input: type pinyin such as "ni hao", "nihao" or "nh"')
  if unreadable and not any(t.kind is not PASSTHROUGH for t in tokens):
    raise unreadable[0]  # Nothing on the line reads as pinyin: a typo, or not pinyin at all.
  if interjections:
    tokens = _settle_interjections(tokens, interjections)
  return tokens


# ---------------------------------------------------------------------------------------------
# Latin words kept as typed (keep_latin).

_LATIN_CHAR = 'a-z0-9\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff'  # Normalised text.
_JOINERS = r'\-._/@:+#&=?%~'
_WORD = re.compile(rf'[{_LATIN_CHAR}]+(?:[{_JOINERS}]+[{_LATIN_CHAR}]+)*')
_LETTERS = re.compile('[a-z]+')
_QUOTED = re.compile('`([^`]*)`')
_CONTROL = re.compile('[\x00-\x1f\x7f-\x9f]')
_SEPARATE = PinyinError('')  # The error of a span that only separates (a backtick).
# Endings of file and host names whose letters would otherwise be read as initials (`.com` is
# c* o m*). None is a syllable, so `wo.de` or `hao.a` stay pinyin.
FILE_EXTENSIONS = frozenset((
    'com', 'net', 'org', 'cn', 'io', 'edu', 'gov', 'info', 'html', 'htm', 'php', 'js', 'ts',
    'py', 'rs', 'cpp', 'txt', 'pdf', 'md', 'json', 'xml', 'csv', 'yaml', 'yml', 'exe', 'zip',
    'png', 'jpg', 'jpeg', 'gif', 'svg', 'doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx', 'mp3',
    'mp4', 'apk'))


def _latin_spans(text: str, norm: str, offs: list[int] | None,
                 allow_initials: bool) -> list[tuple[int, int, PinyinError | None]]:
  """(start, end, error) in `norm` of the spans kept as typed, in order: `quoted` text (error
  None; its backticks are spans of their own with error _SEPARATE) and words that are Latin as
  a whole (error: why its letters are not pinyin, or None for URLs, addresses and file names).
  An unreadable run of letters in any other word is left to the scanner."""
  spans: list = []
  done = 0
  for q in _QUOTED.finditer(norm):
    inner = q.group(1)
    if _CONTROL.search(inner):
      continue  # Not a quotation: its backticks pass through, its controls separate.
    spans += _latin_words(text, norm, offs, done, q.start(), allow_initials)
    a, b = q.start(1), q.end(1)
    while a < b and norm[a].isspace():
      a += 1
    while b > a and norm[b - 1].isspace():
      b -= 1
    spans.append((q.start(), q.start() + 1, _SEPARATE))
    if b > a:
      spans.append((a, b, None))
    spans.append((q.end() - 1, q.end(), _SEPARATE))
    done = q.end()
  return spans + _latin_words(text, norm, offs, done, len(norm), allow_initials)


def _latin_words(text, norm, offs, start, end, allow_initials) -> list:
  out = []
  for w in _WORD.finditer(norm, start, end):
    word = w.group()
    if word.isascii() and word.isalnum():
      continue  # Letters and digits only: the scanner reads it, run by run.
    tail = word.rsplit('.', 1)[-1] if '.' in word else ''
    if '://' in word or '@' in word or word.startswith('www.') or tail in FILE_EXTENSIONS:
      out.append((w.start(), w.end(), None))
      continue
    a, b = (offs[w.start()], offs[w.end()]) if offs else (w.start(), w.end())
    for r in _LETTERS.finditer(word):
      run = r.group()
      cut = (_segment_cached(run, allow_initials) if len(run) <= _CACHED_RUN_CHARS
             else _segment(run, allow_initials))
      if cut.__class__ is int:
        out.append((w.start(), w.end(), PinyinError(
            f'cannot read {text[a:b]!r} at position {a} as pinyin (no syllable or initial fits '
            f'{run!r}): {_HINT}', a)))
        break
    else:
      if not word.isascii():
        out.append((w.start(), w.end(), PinyinError(
            f'cannot read {text[a:b]!r} at position {a} as pinyin: pinyin letters are a-z, '
            'with v, ü or u: for ü and optional tone marks (ā á ǎ à)', a)))
  return out


def _unreadable(text, norm, offs, p, run, stuck, allow_initials) -> PinyinError:
  pos = (lambda x: offs[x]) if offs else (lambda x: x)
  start, end, at = pos(p), pos(p + len(run)), pos(p + stuck)
  what = 'syllable or initial' if allow_initials else 'syllable'
  return PinyinError(
      f'cannot read {text[start:end]!r} at position {start} as pinyin (no {what} fits at '
      f'{norm[p + stuck]!r}, position {at}): {_HINT if allow_initials else _HINT_FULL}', start)


def _settle_interjections(tokens: list[Token], candidates_: list[int]) -> list[Token]:
  """Reads a lone m, n, ng, hm, hng as initials when a neighbour is an abbreviation."""
  converted: set[int] = set()
  changed = True
  while changed:  # 'n m h': h* makes m an initial, which then makes n one.
    changed = False
    for i in candidates_:
      if i in converted:
        continue
      for j in (i - 1, i + 1):
        if 0 <= j < len(tokens) and (tokens[j].kind == INITIAL or j in converted):
          converted.add(i)
          changed = True
          break
  if not converted:
    return tokens
  out = []
  for i, tok in enumerate(tokens):
    if i not in converted:
      out.append(tok)
      continue
    for s, e, key, kind in _cut(tok.key, True):
      out.append(Token(tok.text[s:e], key, kind, tok.start + s, tok.start + e))
  return out


def to_keys(tokens: list[Token] | str) -> list[str]:
  """Vocabulary keys of tokens (or of a string, parsed with the defaults)."""
  if isinstance(tokens, str):
    tokens = parse(tokens)
  return [t.key for t in tokens]


# ---------------------------------------------------------------------------------------------
# Punctuation: ASCII typed in a Chinese sentence, written as an IME in Chinese mode writes it.

# One table for the training text (data/prepare.py `normalise`) and the converter
# (`chinese_punctuation`), so the model reads 'ni hao ma?' as the 'ni hao ma ？' it was trained
# on (left ASCII, the '?' is a symbol it never saw there; measured: 你好马?).
CHINESE_PUNCTUATION = {',': '，', '.': '。', '?': '？', '!': '！', ':': '：', ';': '；',
                       '(': '（', ')': '）', '~': '～'}
# Those with one Chinese form whatever surrounds them (data/prepare.py translates them character
# by character); ',' and ':' stay ASCII between digits (1,000 12:30), '.' after a digit (3.14,
# an enumeration's '1.').
CONTEXT_FREE_PUNCTUATION = '!?;()~'


# A run of two or more of one of these is the ellipsis '……', in the training text
# (data/prepare.py `normalise`) and in what the converter reads (`chinese_punctuation`).
ELLIPSIS_RUNS = ('.', '。')
ELLIPSIS = '……'


def _ellipses(tokens: list[Token]) -> list[Token]:
  """Each run of two or more adjacent '.' (or '。') as the two '…' the corpora write for it: the
  first token keeps the run's first mark, the second covers the rest (its text as typed)."""
  out, i = [], 0
  while i < len(tokens):
    j = i
    if tokens[i].kind == PASSTHROUGH and tokens[i].key in ELLIPSIS_RUNS:
      while (j + 1 < len(tokens) and tokens[j + 1].kind == PASSTHROUGH
             and tokens[j + 1].key == tokens[i].key and tokens[j + 1].start == tokens[j].end):
        j += 1
    if j == i:
      out.append(tokens[i])
    else:
      rest = tokens[i + 1:j + 1]
      out.append(dataclasses.replace(tokens[i], key=ELLIPSIS[0]))
      out.append(Token(''.join(t.text for t in rest), ELLIPSIS[1], PASSTHROUGH, rest[0].start,
                       rest[-1].end))
    i = j + 1
  return out


def chinese_punctuation(tokens: list[Token]) -> list[Token]:
  """Passthrough ASCII punctuation keyed as its full-width form (CHINESE_PUNCTUATION), but for
  ',' and ':' between digits and '.' after one; a run of dots as the ellipsis '……'. Token.text
  keeps what was typed."""
  tokens = _ellipses(tokens)

  def digit(i):
    return 0 <= i < len(tokens) and tokens[i].key.isdigit()

  out = []
  for i, tok in enumerate(tokens):
    full = CHINESE_PUNCTUATION.get(tok.key) if tok.kind == PASSTHROUGH else None
    in_number = ((tok.key in ',:' and digit(i - 1) and digit(i + 1))
                 or (tok.key == '.' and digit(i - 1)))
    out.append(dataclasses.replace(tok, key=full) if full and not in_number else tok)
  return out


# ---------------------------------------------------------------------------------------------
# Characters: readings and candidates, from pypinyin's dictionary (imported on first use).

def is_hanzi(ch: str) -> bool:
  """CJK unified ideographs (all extensions), compatibility ideographs and 〇: what the corpora
  count as Chinese characters (data/prepare.py) and what a user word is made of."""
  o = ord(ch)
  return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x3134F or
          0xF900 <= o <= 0xFAFF or o == 0x3007)


def _in_candidate_range(cp: int) -> bool:
  # The BMP ideographs: CJK Extension A and the Unified block, plus 〇. pypinyin's other BMP
  # entries are private-use code points and one compatibility ideograph, which no text needs.
  return 0x3400 <= cp <= 0x9fff or cp == 0x3007


@functools.lru_cache(maxsize=None)
def char_readings_with_tones(ch: str) -> tuple[tuple[str, int], ...]:
  """((syllable, tone), ...) of a character in pypinyin's order; tone 5 is neutral."""
  if not isinstance(ch, str) or len(ch) != 1:
    raise ValueError(f'expected one character, got {ch!r}')
  from pypinyin.contrib.tone_convert import to_tone3  # pylint: disable=g-import-not-at-top
  from pypinyin.pinyin_dict import pinyin_dict  # pylint: disable=g-import-not-at-top
  out = []
  for reading in pinyin_dict.get(ord(ch), '').split(','):
    if not reading:
      continue
    t3 = to_tone3(reading, v_to_u=False, neutral_tone_with_five=True)
    syl, tone = (t3[:-1], int(t3[-1])) if t3[-1:].isdigit() else (t3, 5)
    pair = (EXCLUDED_READINGS.get(syl, syl), tone)
    if pair not in out:
      out.append(pair)
  return tuple(out)


def char_readings(ch: str) -> tuple[str, ...]:
  """Toneless readings of a character, ü written v: '中' -> ('zhong',); () if it has none."""
  return tuple(dict.fromkeys(s for s, _ in char_readings_with_tones(ch)))


# `_index` as built from pypinyin PYPINYIN_VERSION, shipped with the package (`write_index`):
# building it at every start of a converter took ~2.5 s and ~50 MB (importing pypinyin imports
# its phrase dictionary too). Read only when that version is the one installed; with another,
# `_index` builds its own from pypinyin, as before. tests/test_pinyin.py checks the two agree.
PYPINYIN_VERSION = '0.55.0'
INDEX_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pinyin_index.json.gz')


def _installed_pypinyin(version: str) -> bool:
  """Whether pypinyin `version` is installed, without importing it (~1 s) or scanning every
  distribution's metadata (importlib.metadata): its dist-info beside the package."""
  spec = importlib.util.find_spec('pypinyin')
  if spec is None or not spec.origin:
    return False
  site = os.path.dirname(os.path.dirname(spec.origin))
  return any(os.path.isdir(os.path.join(site, f'pypinyin-{version}.{kind}'))
             for kind in ('dist-info', 'egg-info'))


@functools.cache
def _index() -> tuple[dict, dict]:
  """syllable -> chars and (syllable, tone) -> chars, in code point order."""
  if os.path.isfile(INDEX_FILE) and _installed_pypinyin(PYPINYIN_VERSION):
    try:
      with gzip.open(INDEX_FILE, 'rt', encoding='utf-8') as f:
        data = json.load(f)
      if data['pypinyin'] == PYPINYIN_VERSION:
        return ({k: tuple(v) for k, v in data['syllables'].items()},
                {(k[:-1], int(k[-1])): tuple(v) for k, v in data['tones'].items()})
    except (OSError, ValueError, KeyError, TypeError, EOFError):
      pass  # Built from pypinyin below.
  return _build_index()


def write_index(path: str = INDEX_FILE) -> None:
  """Writes `_index` as pypinyin builds it (the installed version must be PYPINYIN_VERSION)."""
  import pypinyin  # pylint: disable=g-import-not-at-top
  if pypinyin.__version__ != PYPINYIN_VERSION:
    raise RuntimeError(f'pypinyin {pypinyin.__version__} is installed; the index is of '
                       f'{PYPINYIN_VERSION}: change PYPINYIN_VERSION with it')
  by_syllable, by_tone = _build_index()
  data = {'pypinyin': PYPINYIN_VERSION,
          'syllables': {k: ''.join(v) for k, v in sorted(by_syllable.items())},
          'tones': {f'{s}{t}': ''.join(v) for (s, t), v in sorted(by_tone.items())}}
  with open(path, 'wb') as raw, gzip.GzipFile(filename='', fileobj=raw, mode='wb', mtime=0) as f:
    f.write(json.dumps(data, ensure_ascii=False, indent=0).encode('utf-8'))


def _build_index() -> tuple[dict, dict]:
  from pypinyin.pinyin_dict import pinyin_dict  # pylint: disable=g-import-not-at-top
  by_syllable: dict[str, list[str]] = {}
  by_tone: dict[tuple[str, int], list[str]] = {}
  for cp in sorted(pinyin_dict):
    if not _in_candidate_range(cp):
      continue
    ch = chr(cp)
    readings = char_readings_with_tones(ch)
    for syl in dict.fromkeys(s for s, _ in readings):
      by_syllable.setdefault(syl, []).append(ch)
    for pair in readings:
      by_tone.setdefault(pair, []).append(ch)
  return ({k: tuple(v) for k, v in by_syllable.items()},
          {k: tuple(v) for k, v in by_tone.items()})


@functools.lru_cache(maxsize=4096)
def candidates(key: str, tone: int | None = None) -> tuple[str, ...]:
  """Characters a key may be written as, in code point order.

  A syllable: characters with that reading (and tone, if given). An initial key: characters
  with any reading it covers (syllables_for_key: 'z*' includes zh, 'zh*' only zh). A
  passthrough symbol: itself. Only CJK ideographs of the BMP are candidates (see
  _in_candidate_range), so a syllable read only by rarer characters (biang) has none.
  """
  if tone is not None and tone not in (1, 2, 3, 4, 5):
    raise ValueError(f'tone must be 1-5 or None, got {tone!r}')
  if key in _SYLLABLE_SET or key in _KEY_SYLLABLES:
    by_syllable, by_tone = _index()
    syls = syllables_for_key(key)
    if tone is None:
      lists = [by_syllable.get(s, ()) for s in syls]
    else:
      lists = [by_tone.get((s, tone), ()) for s in syls]
    if len(lists) == 1:
      return lists[0]
    return tuple(sorted(set().union(*lists)))
  if isinstance(key, str) and len(key) == 1 and not 'a' <= key <= 'z':
    return (key,)
  raise ValueError(f'unknown key {key!r}: expected a syllable, an initial key such as '
                   "'zh*', or one passthrough character")
