r"""Pinyin parser throughput: syllables per second for the three ways people type.

Sentences are built from pypinyin's phrase dictionary (seeded random phrases, with the odd
comma or full stop between them, 6-30 characters), so the bench needs no corpus and no
network. Their pinyin comes from pypinyin (lazy_pinyin, Style.NORMAL, ü as v), typed as

  spaced       ni hao , shi jie
  runtogether  nihao,shijie        (no apostrophes: the parser's cut is also checked)
  initials     nh,sj               (each syllable's initial_key, a/o/e for vowel syllables)

Each form is parsed `--repeats` times; the median is reported, both cold (the per-run segment
cache cleared before every pass, as for a stream of new text) and warm (cache kept).

  python -m benchmarks.pinyin_parse                     # 3000 sentences, 7 repeats
  python -m benchmarks.pinyin_parse --sentences=10000 --repeats=5
"""
import argparse
import random
import statistics
import time

import pypinyin
from pypinyin import phrases_dict

from pyhanzi_jax import pinyin


def make_sentences(n: int, seed: int) -> list[str]:
  rng = random.Random(seed)
  phrases = sorted(p for p in phrases_dict.phrases_dict if 2 <= len(p) <= 4)
  out = []
  for _ in range(n):
    length = rng.randint(6, 30)
    s = ''
    while len(s) < length:
      s += rng.choice(phrases)
      if rng.random() < 0.15 and len(s) < length:
        s += rng.choice('，。')
    out.append(s)
  return out


def typed_forms(sentences: list[str]) -> tuple[dict[str, list[str]], list[list[str]]]:
  forms = {'spaced': [], 'runtogether': [], 'initials': []}
  gold = []
  for s in sentences:
    keys = pypinyin.lazy_pinyin(s, style=pypinyin.Style.NORMAL, v_to_u=False)
    keys = [k for k in keys if k in pinyin.SYLLABLES or k in '，。']
    gold.append(keys)
    forms['spaced'].append(' '.join(keys))
    forms['runtogether'].append(''.join(keys))
    forms['initials'].append(''.join(pinyin.initial_key(k)[:-1] if k in pinyin.SYLLABLES else k
                                     for k in keys))
  return forms, gold


def time_form(texts: list[str], repeats: int, cold: bool) -> float:
  times = []
  for _ in range(repeats):
    if cold:
      pinyin._segment_cached.cache_clear()  # pylint: disable=protected-access
    t0 = time.perf_counter()
    for t in texts:
      pinyin.parse(t)
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--sentences', type=int, default=3000)
  ap.add_argument('--repeats', type=int, default=7)
  ap.add_argument('--seed', type=int, default=0)
  args = ap.parse_args()

  sentences = make_sentences(args.sentences, args.seed)
  forms, gold = typed_forms(sentences)
  n_syllables = sum(sum(k in pinyin.SYLLABLES for k in g) for g in gold)
  print(f'{len(sentences)} sentences, {n_syllables} syllables, '
        f'{sum(map(len, sentences)) / len(sentences):.1f} characters each')
  for name, texts in forms.items():
    cold = time_form(texts, args.repeats, cold=True)
    warm = time_form(texts, args.repeats, cold=False)
    print(f'{name:12s} {n_syllables / cold:>10,.0f} syllables/s cold '
          f'{n_syllables / warm:>10,.0f} warm   ({len(texts) / cold:,.0f} sentences/s cold)')
  same = sum(pinyin.to_keys(t) == g for t, g in zip(forms['runtogether'], gold))
  print(f'runtogether cut equals pypinyin syllables in {same}/{len(gold)} sentences '
        '(the rest need an apostrophe, as in xi\'an)')


if __name__ == '__main__':
  main()
