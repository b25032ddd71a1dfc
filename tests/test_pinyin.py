"""Tests for the pinyin parser (pyhanzi_jax/pinyin.py): inventory, cuts, forms, errors, lookups."""
import pytest
from hypothesis import given, settings, strategies as st

from pyhanzi_jax import pinyin
from pyhanzi_jax.pinyin import PinyinError, parse, to_keys


def kinds(text, **kw):
  return [t.kind for t in parse(text, **kw)]


# --- The syllable inventory -------------------------------------------------------------------

def test_every_pypinyin_reading_is_a_syllable_or_documented():
  from pypinyin.contrib.tone_convert import to_normal
  from pypinyin.pinyin_dict import pinyin_dict
  readings = {to_normal(r, v_to_u=False) for v in pinyin_dict.values() for r in v.split(',')}
  missing = readings - set(pinyin.SYLLABLES) - set(pinyin.EXCLUDED_READINGS)
  assert not missing
  assert set(pinyin.EXCLUDED_READINGS.values()) <= set(pinyin.SYLLABLES)
  # Nothing in the inventory that pypinyin never reads: no stray or misspelt entries.
  assert set(pinyin.SYLLABLES) <= readings


def test_inventory_shape():
  syllables = pinyin.SYLLABLES
  assert len(set(syllables)) == len(syllables)
  assert all(s.isascii() and s.isalpha() and s.islower() for s in syllables)
  for s in ('lv', 'nv', 'lve', 'nve', 'er', 'm', 'n', 'ng', 'hm', 'hng', 'yo', 'lo', 'ei', 'o',
            'rua', 'den', 'nou', 'ju', 'qu', 'xu', 'yu'):
    assert s in syllables
  for s in ('lue', 'nue', 'lü', 'ê', 'v', 'i', 'u'):
    assert s not in syllables
  assert pinyin.RARE_SYLLABLES <= set(syllables)
  assert pinyin.INTERJECTIONS <= set(syllables)


def test_initial_keys():
  assert len(pinyin.INITIAL_KEYS) == 26
  assert {pinyin.initial_key(s) for s in pinyin.SYLLABLES} == set(pinyin.INITIAL_KEYS)
  for syllable, key in [('zhong', 'zh*'), ('zi', 'z*'), ('ai', 'a*'), ('er', 'e*'), ('ou', 'o*'),
                        ('m', 'm*'), ('ng', 'n*'), ('hm', 'h*'), ('yu', 'y*'), ('wu', 'w*')]:
    assert pinyin.initial_key(syllable) == key


def test_syllables_for_key():
  assert 'zhong' in pinyin.syllables_for_key('z*')
  assert 'zi' in pinyin.syllables_for_key('z*')
  assert all(s.startswith('zh') for s in pinyin.syllables_for_key('zh*'))
  assert set(pinyin.syllables_for_key('a*')) == {'a', 'ai', 'an', 'ang', 'ao'}
  assert pinyin.syllables_for_key('ni') == ('ni',)
  assert pinyin.syllables_for_key('，') == ()
  for key in pinyin.INITIAL_KEYS:
    assert all(pinyin.initial_key(s)[:len(key) - 1] == key[:-1]
               for s in pinyin.syllables_for_key(key))


@pytest.mark.parametrize('upper', [False, True])
def test_every_syllable_parses_alone_to_itself(upper):
  for s in pinyin.SYLLABLES:
    text = s.upper() if upper else s
    (tok,) = parse(text)
    assert (tok.key, tok.kind, tok.text, tok.start, tok.end, tok.tone) == (
        s, 'syllable', text, 0, len(s), None)


# --- Cutting runs of letters --------------------------------------------------------------------

@pytest.mark.parametrize('text, keys', [
    ('nihaoshijie', 'ni hao shi jie'),
    ('xian', 'xian'),            # One syllable; two are typed xi'an.
    ('xianzai', 'xian zai'),     # Fewest syllables, not xi an zai.
    ('fangan', 'fan gan'),       # Equal counts: the next syllable keeps a consonant.
    ('changan', 'chan gan'),
    ('xinan', 'xi nan'),
    ('jinan', 'ji nan'),
    ('yanan', 'ya nan'),
    ('hunan', 'hu nan'),
    ('jianing', 'jia ning'),
    ('tiane', 'tian e'),         # The only cut into two.
    ('tianan', 'tian an'),
    ('zhongguo', 'zhong guo'),
    ('kuaile', 'kuai le'),
    ('dengai', 'deng ai'),       # A rare syllable (den) loses to a vowel start.
    ('dingan', 'ding an'),
    ('xianer', 'xian er'),
    ('ershi', 'er shi'),
    ('nver', 'nv er'),
    ('womenqunaer', 'wo men qu na er'),
    ('pengyou', 'peng you'),
    ('zhuangkuang', 'zhuang kuang'),
    ('anan', 'a nan'),
])
def test_ambiguous_cuts(text, keys):
  assert to_keys(text) == keys.split()
  assert set(kinds(text)) == {'syllable'}


def test_apostrophes_and_spaces_separate():
  assert to_keys("xi'an") == ['xi', 'an']
  assert to_keys("fang'an chang'an") == ['fang', 'an', 'chang', 'an']
  assert to_keys('xi’an') == ['xi', 'an']          # Typographic apostrophe.
  assert to_keys("  ni   hao ''") == ['ni', 'hao']
  toks = parse("xi'an")
  assert [(t.start, t.end, t.text) for t in toks] == [(0, 2, 'xi'), (3, 5, 'an')]


def test_mixed_case():
  assert to_keys('NiHao ShiJie') == ['ni', 'hao', 'shi', 'jie']
  assert parse('NiHao')[0].text == 'Ni'


# --- Tones and ü ----------------------------------------------------------------------------------

def test_tone_digits():
  toks = parse('ni3hao3 ma5')
  assert [(t.key, t.tone, t.text) for t in toks] == [
      ('ni', 3, 'ni3'), ('hao', 3, 'hao3'), ('ma', 5, 'ma5')]
  assert [(t.start, t.end) for t in toks] == [(0, 3), (3, 7), (8, 11)]
  assert [t.tone for t in parse('ni3hao3', keep_tones=False)] == [None, None]
  assert [(t.key, t.tone) for t in parse('lv4')] == [('lv', 4)]
  # A tone digit ends a syllable, so it also separates: xi1an1 is two syllables.
  assert [(t.key, t.tone) for t in parse('xi1an1')] == [('xi', 1), ('an', 1)]


def test_digits_that_are_not_tones_pass_through():
  assert [(t.key, t.kind) for t in parse('di 3 ge')] == [
      ('di', 'syllable'), ('3', 'passthrough'), ('ge', 'syllable')]
  assert [(t.key, t.tone) for t in parse('ni36')] == [('ni', 3), ('6', None)]
  assert [(t.key, t.kind) for t in parse('nh3')] == [
      ('n*', 'initial'), ('h*', 'initial'), ('3', 'passthrough')]
  assert to_keys('ni0') == ['ni', '0']


def test_tone_marks():
  toks = parse('nǐ hǎo lǜ')
  assert [(t.key, t.tone, t.text) for t in toks] == [
      ('ni', 3, 'nǐ'), ('hao', 3, 'hǎo'), ('lv', 4, 'lǜ')]
  assert [(t.key, t.tone) for t in parse('Zhōngguó')] == [('zhong', 1), ('guo', 2)]
  decomposed = 'ni\u030chao\u030c'  # Tone marks typed as combining characters.
  toks = parse(decomposed)
  assert [(t.key, t.tone) for t in toks] == [('ni', 3), ('hao', 3)]
  assert ''.join(t.text for t in toks) == decomposed
  assert [t.tone for t in parse('nǐhǎo', keep_tones=False)] == [None, None]


@pytest.mark.parametrize('text, key', [
    ('lv', 'lv'), ('lü', 'lv'), ('lu:', 'lv'), ('LÜ', 'lv'), ('LU:', 'lv'), ('lu\u0308', 'lv'),
    ('nv', 'nv'), ('nü', 'nv'), ('nu:', 'nv'),
    ('lve', 'lve'), ('lue', 'lve'), ('lüe', 'lve'), ('lu:e', 'lve'),
    ('nve', 'nve'), ('nue', 'nve'), ('nüe', 'nve'),
    ('ju', 'ju'), ('qu', 'qu'), ('xu', 'xu'), ('yu', 'yu'), ('xue', 'xue'), ('yuan', 'yuan'),
    ('jv', 'ju'), ('xvan', 'xuan'), ('lu', 'lu'), ('nu', 'nu'),
])
def test_u_umlaut_forms(text, key):
  (tok,) = parse(text)
  assert (tok.key, tok.kind, tok.text, tok.end) == (key, 'syllable', text, len(text))


def test_u_umlaut_in_runs():
  assert to_keys('nvren') == ['nv', 'ren']
  assert to_keys('lu:se') == ['lv', 'se']
  toks = parse('lu:4se4')
  assert [(t.key, t.tone, t.start, t.end) for t in toks] == [('lv', 4, 0, 4), ('se', 4, 4, 7)]
  assert to_keys('lueguo') == ['lve', 'guo']


# --- Abbreviations -------------------------------------------------------------------------------

@pytest.mark.parametrize('text, keys', [
    ('nh', 'n* h*'),
    ('zhrmghg', 'zh* r* m* g* h* g*'),
    ('bjdx', 'b* j* d* x*'),
    ('zhongh renm', 'zhong h* ren m*'),
    ('nihaosj', 'ni hao s* j*'),
    ('nhao', 'n* hao'),
    ('xnan', 'x* nan'),
    ('zh', 'zh*'),
    ('h', 'h*'),
    ('woazg', 'wo a* z* g*'),    # A lone vowel in an abbreviated run is its initial key.
    ('mn', 'm* n*'),
    ('hmm', 'h* m* m*'),
])
def test_abbreviations(text, keys):
  assert to_keys(text) == keys.split()


def test_abbreviation_kinds_and_offsets():
  toks = parse('zhongh renm')
  assert [(t.kind, t.text, t.start, t.end) for t in toks] == [
      ('syllable', 'zhong', 0, 5), ('initial', 'h', 5, 6),
      ('syllable', 'ren', 7, 10), ('initial', 'm', 10, 11)]
  assert all(t.tone is None for t in toks)


def test_interjections():
  # Alone they are syllables; next to an abbreviation they are initials.
  for s in ('n', 'm', 'ng', 'hm', 'hng'):
    assert to_keys(s) == [s]
  assert to_keys('n h') == ['n*', 'h*']
  assert to_keys('n m h') == ['n*', 'm*', 'h*']
  assert to_keys('hm zh') == ['h*', 'm*', 'zh*']
  assert to_keys('ni n hao') == ['ni', 'n', 'hao']
  assert to_keys('n2 h') == ['n', 'h*']          # A tone makes it a syllable.
  assert to_keys("n'ng") == ['n', 'ng']
  # Inside a longer run they are never syllables: 'nnn' is three initials.
  assert to_keys('nnn') == ['n*', 'n*', 'n*']


def test_allow_initials_false():
  assert [t.key for t in parse('nihao', allow_initials=False)] == ['ni', 'hao']
  assert [t.key for t in parse('n', allow_initials=False)] == ['n']
  with pytest.raises(PinyinError) as e:
    parse('ni nh', allow_initials=False)
  assert e.value.position == 3
  assert 'abbreviations are turned off' in str(e.value)
  with pytest.raises(PinyinError):
    parse('zhongh', allow_initials=False)


# --- Passthrough --------------------------------------------------------------------------------

def test_passthrough():
  toks = parse('wo you 3 ge, ni ne？ 12%')
  assert [(t.key, t.kind) for t in toks if t.kind == 'passthrough'] == [
      ('3', 'passthrough'), (',', 'passthrough'), ('？', 'passthrough'), ('1', 'passthrough'),
      ('2', 'passthrough'), ('%', 'passthrough')]
  assert to_keys('ni，hao。') == ['ni', '，', 'hao', '。']
  assert to_keys('ni-hao') == ['ni', '-', 'hao']


def test_passthrough_of_cjk_emoji_and_full_width():
  toks = parse('我ai中国😀!')
  assert [(t.key, t.kind, t.start) for t in toks] == [
      ('我', 'passthrough', 0), ('ai', 'syllable', 1), ('中', 'passthrough', 3),
      ('国', 'passthrough', 4), ('😀', 'passthrough', 5), ('!', 'passthrough', 6)]
  # Full-width digits and letters are read as ASCII; full-width punctuation is kept.
  toks = parse('ＮＩ ｈａｏ １２，')
  assert [(t.key, t.text) for t in toks] == [
      ('ni', 'ＮＩ'), ('hao', 'ｈａｏ'), ('1', '１'), ('2', '２'), ('，', '，')]
  assert to_keys('ｘｉ＇ａｎ') == ['xi', 'an']
  assert to_keys('ni\u3000hao') == ['ni', 'hao']     # Ideographic space.
  assert to_keys('αβ ni') == ['α', 'β', 'ni']        # Other scripts pass through.


def test_tokens_cover_the_input():
  text = "Nǐ hǎo, xi'an１２3 zhongh 中文 nu:e！"
  toks = parse(text)
  for t in toks:
    assert text[t.start:t.end] == t.text
  assert all(a.end <= b.start for a, b in zip(toks, toks[1:]))
  covered = ''.join(t.text for t in toks)
  assert covered == ''.join(c for c in text if not c.isspace() and c != "'")


# --- Errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize('text', ['', '   ', '\n\t', "''", '\u3000'])
def test_empty_input(text):
  with pytest.raises(PinyinError, match='empty input'):
    parse(text)


@pytest.mark.parametrize('text, position, run', [
    ('iphone', 0, 'iphone'),
    ('wo de iphone', 6, 'iphone'),
    ('ni hao u', 7, 'u'),
    ('v', 0, 'v'),
    ('nihaoi', 0, 'nihaoi'),
    ('wo3 ipad', 4, 'ipad'),
])
def test_unreadable_letters(text, position, run):
  with pytest.raises(PinyinError) as e:
    parse(text)
  assert e.value.position == position
  assert f"cannot read '{run}' at position {position}" in str(e.value)
  assert 'initials like' in str(e.value)


def test_foreign_latin_letters():
  with pytest.raises(PinyinError) as e:
    parse('ni hao señor')
  assert e.value.position == 9
  with pytest.raises(PinyinError):
    parse('straße')


def test_over_long_input():
  ok = 'a' * pinyin.MAX_INPUT_CHARS
  assert len(parse(ok)) == pinyin.MAX_INPUT_CHARS
  with pytest.raises(PinyinError, match=f'limit of {pinyin.MAX_INPUT_CHARS}.*split'):
    parse(ok + 'a')


def test_error_pickles_with_position():
  import pickle
  with pytest.raises(PinyinError) as e:
    parse('wo de iphone')
  copy = pickle.loads(pickle.dumps(e.value))
  assert (str(copy), copy.position) == (str(e.value), 6)


def test_non_string_input():
  with pytest.raises(PinyinError):
    parse(None)
  assert issubclass(PinyinError, ValueError)


_ALPHABET = st.sampled_from(list("abcdefghijklmnopqrstuvwxyzAZüÜǎé:'’ 0123456789,，。!中😀\u0301"
                                 '\u3000ｎ１ñ-\t'))


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(_ALPHABET, max_size=40), st.text(max_size=20)))
def test_random_strings_parse_or_raise_pinyin_error(text):
  try:
    toks = parse(text)
  except PinyinError as e:
    assert e.position is None or 0 <= e.position <= len(text)
    return
  assert toks
  for t in toks:
    assert text[t.start:t.end] == t.text
    assert t.kind in ('syllable', 'initial', 'passthrough')
    assert t.tone is None or 1 <= t.tone <= 5
  assert all(a.end <= b.start for a, b in zip(toks, toks[1:]))


_SYLLABLE = st.sampled_from(pinyin.SYLLABLES)
_IN_RUN = st.sampled_from([s for s in pinyin.SYLLABLES if s not in pinyin.INTERJECTIONS])


@settings(max_examples=300, deadline=None)
@given(st.lists(_SYLLABLE, min_size=1, max_size=12), st.booleans())
def test_syllables_with_apostrophes_parse_back(syllables, tones):
  if tones:
    text = "'".join(f'{s}{i % 5 + 1}' for i, s in enumerate(syllables))
  else:
    text = "'".join(syllables)
  toks = parse(text)
  assert [t.key for t in toks] == syllables
  assert {t.kind for t in toks} == {'syllable'}
  if tones:
    assert [t.tone for t in toks] == [i % 5 + 1 for i in range(len(syllables))]


@settings(max_examples=300, deadline=None)
@given(st.lists(_IN_RUN, min_size=1, max_size=12))
def test_run_together_syllables_cut_into_syllables(syllables):
  # The cut may differ (fang an -> fan gan) but never needs more pieces or an initial.
  text = ''.join(syllables)
  toks = parse(text)
  assert {t.kind for t in toks} == {'syllable'}
  assert len(toks) <= len(syllables)
  assert ''.join(t.text for t in toks) == text


@settings(max_examples=200, deadline=None)
@given(st.lists(_IN_RUN, min_size=1, max_size=12))
def test_initials_form_parses_to_initial_keys(syllables):
  text = ' '.join(pinyin.initial_key(s)[:-1] for s in syllables)
  keys = to_keys(text)
  assert len(keys) == len(syllables)
  for key, s in zip(keys, syllables):
    # A spaced single vowel (a, e, o) is the syllable itself, the rest are initial keys.
    assert key == pinyin.initial_key(s) or key == pinyin.initial_key(s)[:-1]


# --- Readings and candidates ----------------------------------------------------------------------

def test_char_readings():
  assert pinyin.char_readings('中') == ('zhong',)
  assert 'lv' in pinyin.char_readings('绿')
  assert ('lv', 4) in pinyin.char_readings_with_tones('绿')
  assert ('de', 5) in pinyin.char_readings_with_tones('的')
  assert 'e' in pinyin.char_readings('欸')        # ê is read as e (EXCLUDED_READINGS).
  assert pinyin.char_readings('a') == ()
  with pytest.raises(ValueError):
    pinyin.char_readings('中国')


def test_char_readings_agree_with_pypinyin_to_normal():
  from pypinyin.contrib.tone_convert import to_normal
  from pypinyin.pinyin_dict import pinyin_dict
  for cp in list(pinyin_dict)[::97]:
    want = tuple(dict.fromkeys(pinyin.EXCLUDED_READINGS.get(s, s) for s in (
        to_normal(r, v_to_u=False) for r in pinyin_dict[cp].split(','))))
    assert pinyin.char_readings(chr(cp)) == want


def test_candidates():
  assert {'中', '种'} <= set(pinyin.candidates('zhong'))
  assert '中' in pinyin.candidates('zh*')
  assert '在' not in pinyin.candidates('zh*')
  assert {'在', '中'} <= set(pinyin.candidates('z*'))
  assert '中' in pinyin.candidates('zhong', 1)
  assert '中' in pinyin.candidates('zhong', 4)
  assert '种' not in pinyin.candidates('zhong', 1)
  assert '绿' in pinyin.candidates('lv') and '绿' in pinyin.candidates('l*')
  assert pinyin.candidates('，') == ('，',)
  assert pinyin.candidates('3') == ('3',)
  chars = pinyin.candidates('zhong')
  assert list(chars) == sorted(set(chars))
  assert all(0x3400 <= ord(c) <= 0x9fff or c == '〇' for c in pinyin.candidates('z*'))
  with pytest.raises(ValueError):
    pinyin.candidates('zhx')
  with pytest.raises(ValueError):
    pinyin.candidates('zhong', 7)


def test_every_key_the_parser_makes_has_candidates():
  # Syllables only read by characters outside the BMP ideograph blocks have none.
  empty = {s for s in pinyin.SYLLABLES if not pinyin.candidates(s)}
  assert empty <= {'biang', 'bong', 'wong', 'nia', 'cei', 'din'}
  assert all(pinyin.candidates(k) for k in pinyin.INITIAL_KEYS)


def test_to_keys():
  assert to_keys(parse('ni hao')) == ['ni', 'hao']
  assert to_keys('nh') == ['n*', 'h*']


# --- Latin words, URLs and quoted text kept as typed (keep_latin) ------------------------------

def latin(text, **kw):
  return [(t.key, t.text) for t in parse(text, keep_latin=True, **kw)]


U = pinyin.LATIN_KEY


def test_latin_key_is_the_vocabularies_unknown_symbol():
  from pyhanzi_jax.data import vocab
  assert pinyin.LATIN_KEY == vocab.SPECIALS[vocab.UNK]


@pytest.mark.parametrize('text, want', [
    ('wo yong iphone', [('wo', 'wo'), ('yong', 'yong'), (U, 'iphone')]),
    ('wo yong iPhone15', [('wo', 'wo'), ('yong', 'yong'), (U, 'iPhone'), ('1', '1'), ('5', '5')]),
    ('wo3ipad', [('wo', 'wo3'), (U, 'ipad')]),                 # The tone stays wo's.
    ('ni hao señor', [('ni', 'ni'), ('hao', 'hao'), (U, 'señor')]),
    ('kan https://github.com/a?b=1. hao', [('kan', 'kan'), (U, 'https://github.com/a?b=1'),
                                           ('.', '.'), ('hao', 'hao')]),
    ('fa gei foo@bar.com', [('fa', 'fa'), ('gei', 'gei'), (U, 'foo@bar.com')]),
    ('zai baidu.com shang', [('zai', 'zai'), (U, 'baidu.com'), ('shang', 'shang')]),
    ('da kai main.py', [('da', 'da'), ('kai', 'kai'), (U, 'main.py')]),
    ('yong node.js xie', [('yong', 'yong'), (U, 'node.js'), ('xie', 'xie')]),
    ('shuo `hello world` ba', [('shuo', 'shuo'), (U, 'hello world'), ('ba', 'ba')]),
    ('` ` ni', [('ni', 'ni')]),
])
def test_latin_words_pass_through_as_typed(text, want):
  assert latin(text) == want
  for t in parse(text, keep_latin=True):
    assert text[t.start:t.end] == t.text
    if t.key == U:
      assert t.kind == 'passthrough' and t.tone is None


@pytest.mark.parametrize('text', [
    'nihao', 'xian', "xi'an", 'nh', 'zhongh renm', 'woazg', 'hello world', 'ni-hao', '3.14 ge',
    'wo.de', 'NI3 HAO3', 'nǐ hǎo', 'lu:e', 'ni hao, shi jie!', 'a`b', 'hm', 'n h',
])
def test_keep_latin_leaves_pinyin_as_it_was(text):
  assert parse(text, keep_latin=True) == parse(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(_SYLLABLE, min_size=1, max_size=12), st.sampled_from([' ', '', "'"]),
       st.booleans())
def test_keep_latin_never_changes_pinyin(syllables, sep, initials):
  words = [pinyin.initial_key(s)[:-1] for s in syllables] if initials else syllables
  text = sep.join(words)
  try:
    want = parse(text)
  except PinyinError:
    return  # Only Latin input differs; pinyin never does.
  assert parse(text, keep_latin=True) == want


@pytest.mark.parametrize('text, position, run', [
    ('iphone', 0, 'iphone'), ('iphone 15', 0, 'iphone'), ('  ipad!', 2, 'ipad'), ('u', 0, 'u'),
])
def test_a_line_of_only_unreadable_letters_is_still_an_error(text, position, run):
  with pytest.raises(PinyinError) as e:
    parse(text, keep_latin=True)
  assert e.value.position == position
  assert f"cannot read '{run}' at position {position}" in str(e.value)
  with pytest.raises(PinyinError, match='letters are a-z'):
    parse('señor', keep_latin=True)


def test_urls_and_quoted_text_alone_are_kept():
  assert latin('https://example.com') == [(U, 'https://example.com')]
  assert latin('`hello`') == [(U, 'hello')]


# --- What never reaches a token ---------------------------------------------------------------

@pytest.mark.parametrize('text', [
    'ni\x1b[31mhao\x1b[0m', 'ni\x1b]0;title\x07hao', 'ni\x1b7hao', 'ni\x1b hao', 'ni\x00hao',
    'ni\x7fhao', 'ni\x9bhao', 'ni\u202ehao', 'ni\u2066hao', '\ufeffni hao', 'ni\u200bhao', 'ni\rhao',
])
def test_control_characters_and_terminal_escapes_only_separate(text):
  for keep_latin in (False, True):
    toks = parse(text, keep_latin=keep_latin)
    assert [t.key for t in toks] == ['ni', 'hao'], text
  with pytest.raises(PinyinError, match='empty input'):
    parse('\x1b[2J\x1b[H\x07')


def test_unpaired_surrogates_are_an_error():
  with pytest.raises(PinyinError, match='surrogate U\\+DCFF at position 3') as e:
    parse('ni \udcffhao')  # What os.fsdecode makes of the byte 0xff.
  assert e.value.position == 3


_ANY_CHAR = st.one_of(_ALPHABET, st.characters(), st.sampled_from(
    list('`@./:#\x1b[m\x00\x85\u2028\u202e\ufeff')), st.characters(categories=['Cs']))


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(_ANY_CHAR, max_size=40), st.text(max_size=20)))
def test_random_strings_with_keep_latin_parse_or_raise_pinyin_error(text):
  try:
    toks = parse(text, keep_latin=True)
  except PinyinError as e:
    assert e.position is None or 0 <= e.position <= len(text)
    return
  assert toks
  for t in toks:
    assert text[t.start:t.end] == t.text
    assert t.kind in ('syllable', 'initial', 'passthrough')
    assert not any(c in t.text for c in '\x1b\x00\x85\u2028\u202e\ufeff')
    assert not any(0xd800 <= ord(c) <= 0xdfff for c in t.text)
  assert all(a.end <= b.start for a, b in zip(toks, toks[1:]))


def test_the_shipped_candidate_index_is_pypinyins(tmp_path):
  """pinyin_index.json.gz (read at start-up instead of importing pypinyin) is what pypinyin
  builds, and a new one is written the same way; an upgraded pypinyin must come with a new
  one (PYPINYIN_VERSION)."""
  import pypinyin  # pylint: disable=g-import-not-at-top
  assert pypinyin.__version__ == pinyin.PYPINYIN_VERSION
  pinyin._index.cache_clear()  # pylint: disable=protected-access
  assert pinyin._index() == pinyin._build_index()  # pylint: disable=protected-access
  path = str(tmp_path / 'index.json.gz')
  pinyin.write_index(path)
  assert open(path, 'rb').read() == open(pinyin.INDEX_FILE, 'rb').read()
