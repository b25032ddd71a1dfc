"""The parsers of data/formats.py on tiny files made here: no network, no package files."""
import csv
import gzip
import io
import json
import struct

import pytest

from pyhanzi_jax.data import formats


def mo_file(entries: dict[str, str]) -> bytes:
  """A little-endian GNU .mo: header, then the original and translation tables and strings."""
  items = sorted(entries.items())
  n = len(items)
  originals, translations = 28, 28 + 8 * n
  blob, tables = b'', {'o': [], 't': []}
  start = 28 + 16 * n
  for which, strings in (('o', [k for k, _ in items]), ('t', [v for _, v in items])):
    for s in strings:
      b = s.encode('utf-8')
      tables[which].append((len(b), start + len(blob)))
      blob += b + b'\x00'
  header = struct.pack('<7I', 0x950412DE, 0, n, originals, translations, 0, 0)
  table = b''.join(struct.pack('<2I', *e) for e in tables['o'] + tables['t'])
  return header + table + blob


def qm_file(translations: list[str]) -> bytes:
  """A Qt .qm with one Messages block: each message a context, a translation and an end tag."""
  block = b''
  for text in translations:
    context = b'MainWindow'
    block += bytes([7]) + struct.pack('>I', len(context)) + context
    encoded = text.encode('utf-16-be')
    block += bytes([3]) + struct.pack('>I', len(encoded)) + encoded + bytes([1])
  block += bytes([3]) + struct.pack('>I', 0xFFFFFFFF) + bytes([1])  # A null translation.
  hashes = b'\x00' * 8
  return (formats._QM_MAGIC + bytes([0x42]) + struct.pack('>I', len(hashes)) + hashes +
          bytes([0x69]) + struct.pack('>I', len(block)) + block)


def texts(passages):
  return [p.text for p in passages]


# --- the unit rule and markup ----------------------------------------------------------------

def test_units_keep_chinese_pieces_and_cut_latin_runs():
  assert formats.units('与 -l 同时使用时，列出每个文件的作者') == ['与\n同时使用时，列出每个文件的作者']
  # Fewer than 4 CJK characters, or under 60% of the visible characters: dropped.
  assert formats.units('好的。Use the --force option 强制。') == []
  assert formats.units('打开文件。关闭。') == ['打开文件。']
  # What a cut leaves dangling at a line's ends goes.
  assert formats.units('按 (输入图层 Extent 定义) 范围选择要素') == ['按 (输入图层\n定义) 范围选择要素']
  assert formats.units('请仔细查看“README”文件中的安装说明') == ['请仔细查看\n文件中的安装说明']


@pytest.mark.parametrize('raw, want', [
    ('无法打开文件 %s：%s', '无法打开文件 \n：\n'),
    ('已删除 %d 个文件，共 %1$s 个', '已删除 \n 个文件，共 \n 个'),
    ('参数 %qs 无效，需要 %<int%>', '参数 \n 无效，需要 \nint\n'),
    ('文件 %(name)s 已存在', '文件 \n 已存在'),
    ('100%% 完成', '100% 完成'),
    ('正在处理 %1，剩余 %L2 项', '正在处理 \n，剩余 \n 项'),
    ('找不到名称“{0}”。你是否要写入此内容？', '找不到名称\n。你是否要写入此内容？'),
    ('欢迎使用 { -brand-short-name }', '欢迎使用 \n'),
    ('${count} 个结果，$1 个错误', '\n 个结果，\n 个错误'),
    ('$unit.name|应该试着捡起这副战甲吗？', '\n应该试着捡起这副战甲吗？'),
    ('<b>注意</b>：保存<br/>之后退出', '注意：保存\n之后退出'),
    ('<span color="red">危险</span>地区', '危险地区'),
    ('文件(&F)', '文件'),
    ('打开(_O)', '打开'),
    ('&Open 打开', 'Open 打开'),
    ('_Save 保存 max_size', 'Save 保存 max_size'),
    ('使用 `git add` 添加 **全部** [文件](http://x)', '使用 \n 添加 全部 文件'),
    ('甲 &amp; 乙', '甲 & 乙'),
])
def test_strip_markup(raw, want):
  assert formats.strip_markup(raw) == want


# --- gettext and Qt catalogues ---------------------------------------------------------------

def test_mo_translations_skip_the_header_and_take_every_plural_form():
  data = mo_file({
      '': 'Project-Id-Version: x\nContent-Type: text/plain; charset=UTF-8\n',
      'Open file': '打开文件',
      'menu\x04Save the current document': '保存当前的文档',
      '%d file deleted\x00%d files deleted': '删除了 %d 个文件\x00已经删除了 %d 个文件',
      'Aldar,Aldel,Aldrin,Arthen,Ayl': '阿尔达,阿尔德尔,阿尔德林,亚瑟恩,艾尔',
      'Untranslated': '',
  })
  assert dict(formats.mo_messages(data))['Open file'] == ['打开文件']
  # A placeholder cuts the text; a piece left with under 4 Chinese characters goes.
  assert texts(formats.parse_mo(data, 'x.mo')) == ['已经删除了', '打开文件', '保存当前的文档']
  # Big-endian files exist too; garbage is a clear error.
  with pytest.raises(ValueError, match='magic'):
    list(formats.parse_mo(b'\x00' * 40, 'x.mo'))


def test_mo_inside_a_zip():
  import zipfile  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, 'w') as z:
    z.writestr('zh_CN/messages.mo', mo_file({'': 'h', 'Add books': '添加书籍到书库'}))
  parse = formats.parse_mo_in_zip('zh_CN/messages.mo')
  assert texts(parse(buf.getvalue(), 'locales.zip')) == ['添加书籍到书库']


def test_cataclysm_tags_are_filled_with_words_deterministically():
  line = '<swear>，<npcname>，我们的弹药用完了！<unknown_tag>快跑吧朋友们。'
  filled = formats.fill_tags(line, formats.CATACLYSM_FILLERS)
  assert filled == formats.fill_tags(line, formats.CATACLYSM_FILLERS)
  swear, name, rest = filled.split('，', 2)
  assert swear in formats.CATACLYSM_FILLERS['swear']
  assert name in formats.CATACLYSM_FILLERS['npcname']
  assert rest == '我们的弹药用完了！<unknown_tag>快跑吧朋友们。'
  data = mo_file({'': 'h', 'x': line})
  (passage,) = formats.parse_cataclysm_mo(data, 'cataclysm-dda.mo')
  assert passage.text == f'{swear}，{name}，我们的弹药用完了！\n快跑吧朋友们。'


def test_qm_translations_are_utf16():
  data = qm_file(['打开文件(&O)', '保存全部的图层', 'OK'])
  assert list(formats.qm_translations(data)) == ['打开文件(&O)', '保存全部的图层', 'OK']
  assert texts(formats.parse_qm(data, 'qgis_zh-Hans.qm')) == ['打开文件', '保存全部的图层']
  with pytest.raises(ValueError, match='magic'):
    list(formats.parse_qm(b'not a qm file', 'x.qm'))


def test_json_messages():
  typescript = json.dumps({'Cannot_find_name_0_2304': '找不到名称“{0}”。',
                           'Unused_label_7028': '未使用的标签。'}, ensure_ascii=False)
  assert texts(formats.parse_json_messages(typescript.encode(), 'x.json')) == [
      '找不到名称', '未使用的标签。']
  bundle = json.dumps({'': ['Copyright (c) Microsoft Corporation.'], 'version': '1.0.0',
                       'contents': {'bundle': {'Discard changes?': '是否放弃所有更改？'},
                                    'package': {'desc': '控制是否启用自动保存'}}},
                      ensure_ascii=False)
  assert texts(formats.parse_json_messages(bundle.encode(), 'git.i18n.json')) == [
      '是否放弃所有更改？', '控制是否启用自动保存']
  module = 'var content = [\n\tundefined,\n\t"{0} ({1})",\n\t"显示更多操作...",\n\t"关闭对话框",\n];\n'
  assert texts(formats.parse_json_messages(module.encode(), 'main.i18n.json.js')) == [
      '显示更多操作...', '关闭对话框']


def test_json_text_reads_prose_line_by_line():
  chapters = json.dumps(['第一回 宴桃园豪杰三结义\n\t话说天下大势，分久必合。周末七国分争。'],
                        ensure_ascii=False)
  assert texts(formats.parse_json_text(chapters.encode(), 'x.json')) == [
      '第一回 宴桃园豪杰三结义', '话说天下大势，分久必合。\n周末七国分争。']


# --- man pages and reStructuredText ----------------------------------------------------------

ROFF = r'''.\" Generated by help2man.
.TH LS 1 2022年9月 "GNU coreutils 9.1" 用户命令
.SH 名称
ls \- 列出目录内容
.SH 描述
.PP
列出指定“文件”（默认为当前目录）的信息。如果既没有指定 \fB\-cftuvSUX\fP 中任何一个，
也没有指定 \fB\-\-sort\fP，则按字母排序项目。
.TP
\fB\-a\fP, \fB\-\-all\fP
不要忽略以点号起始的条目
.nf
ls \-l /tmp
.fi
.B 注意
这是加粗的提示。
'''


def test_roff_paragraphs_join_wrapped_chinese_lines_without_a_space():
  paragraphs = formats.roff_paragraphs(ROFF)
  assert '列出指定“文件”（默认为当前目录）的信息。如果既没有指定 -cftuvSUX 中任何一个，也没有' \
         '指定 --sort，则按字母排序项目。' in paragraphs
  assert '不要忽略以点号起始的条目' in paragraphs
  assert '注意这是加粗的提示。' in paragraphs
  gz = gzip.compress(ROFF.encode('utf-8'))
  assert texts(formats.parse_roff(gz, 'ls.1.gz')) == [
      '列出目录内容',
      # The second sentence is 57% Chinese (the options count letter by letter): dropped.
      '列出指定“文件”（默认为当前目录）的信息。',
      '不要忽略以点号起始的条目', '注意这是加粗的提示。']


RST = '''\ufeff.. _cn_howto:

.. include:: ../disclaimer-zh_CN.rst

:Original: :ref:`Documentation/process/howto.rst <process_howto>`

译者::

    中文版维护者： 李阳  Li Yang <leoyang.li@nxp.com>

如何参与内核开发
================

这是一篇将如何参与内核开发的相关问题一网打尽的终极秘笈。它将指导你
成为一名内核开发者，并且学会如何同社区合作。

 - 邮件内容：使用 ``git send-email`` 发送补丁
 - 参见 :ref:`提交补丁 <submittingpatches>` 一文

.. note::

   这一段是注释里的正文内容。

.. code-block:: c

   int 变量 = 0; /* 代码里的中文注释不读 */

例如下面的命令::

    make 编译全部内核模块

结束段落在这里。
'''


def test_rst_paragraphs_skip_directives_literal_blocks_and_metadata():
  got = formats.rst_paragraphs(RST)
  assert got == [
      '译者：', '如何参与内核开发',
      '这是一篇将如何参与内核开发的相关问题一网打尽的终极秘笈。它将指导你成为一名内核开发者，'
      '并且学会如何同社区合作。',
      '邮件内容：使用 \n 发送补丁', '参见 提交补丁 一文', '这一段是注释里的正文内容。',
      '例如下面的命令：', '结束段落在这里。']
  assert '中文版维护者' not in ''.join(got) and '编译' not in ''.join(got)
  assert texts(formats.parse_rst(gzip.compress(RST.encode()), 'howto.rst.gz'))[-1] == '结束段落在这里。'


# --- idioms and chat -------------------------------------------------------------------------

def _idiom_csv(rows):
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=['', 'derivation', 'example', 'explanation', 'word'])
  w.writeheader()
  for i, row in enumerate(rows):
    w.writerow({'': i, **row})
  return buf.getvalue().encode('utf-8')


def test_idiom_examples_substitute_the_idiom_and_cut_the_citation():
  data = _idiom_csv([
      dict(word='碍手碍脚', derivation='明·凌濛初《初刻拍案惊奇》', explanation='碍手碍脚指阻碍。妨碍别人做事。',
           example='宝钗因说道咱们别在这里～。”说着便往房中来。★清·曹雪芹《红楼梦》第十八回'),
      dict(word='一刻千金', derivation='宋·苏轼', explanation='意译为无间”，指时间宝贵。', example='无'),
  ])
  assert texts(formats.parse_idiom_examples(data, 'idiom.csv')) == [
      '宝钗因说道咱们别在这里碍手碍脚。\n说着便往房中来。']
  assert texts(formats.parse_idiom_explanations(data, 'idiom.csv')) == [
      '碍手碍脚指阻碍。\n妨碍别人做事。', '意译为无间，指时间宝贵。']


def test_chat_yaml():
  data = 'categories:\n- profile\nconversations:\n- - 你的兴趣是什么\n  - 我对各种事物感兴趣。\n'
  assert texts(formats.parse_chat_yaml(data.encode(), 'x.yml')) == ['你的兴趣是什么', '我对各种事物感兴趣。']
