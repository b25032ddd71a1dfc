r"""Installs a trained model as the package's release model (the default of `pyhanzi`).

  python -m pyhanzi_jax.release runs/release_cpu [--dest pyhanzi_jax/release] [--dtype float16]
      [--bigram-data data] [--bigram-corpora general,domain,tech,ui,dialogue,idiom]
      [--min-bigram-count 2] [--mix-base pyhanzi_jax/release --mix 0.5]

Takes a training workdir (its best checkpoint, else its latest) or a bundle, writes a compact
bundle (float16 parameters, vocabularies, the word list and its word bigrams counted over the
prepared training text, bundle.json with the checksums, the source and the validation metrics
of the chosen step) into `--dest`, loads it back with every check the
converter makes, and converts a sentence with it before reporting success. The bundle is
written beside the destination and renamed into place, so an interrupted install never leaves
a half-written release model behind.

With --mix-base, the parameters installed lie `--mix` of the way from that model's to the
source's (bundle.interpolate, as WiSE-FT): continued training on new registers gained on them
and forgot some of the old; part of the way keeps more of both than either end. The base must
be an ancestor of the source (the source's training started from it).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from pyhanzi_jax import bundle as bundle_lib
from pyhanzi_jax import checkpoint as ckpt_lib
from pyhanzi_jax import cli
from pyhanzi_jax import convert
from pyhanzi_jax import lexicon as lexicon_lib
from pyhanzi_jax.data import pipeline
from pyhanzi_jax.data import vocab as vocab_lib

RELEASE_DIR = bundle_lib.RELEASE_DIR
DEFAULT_CACHE = '~/.cache/pyhanzi_jax'  # As configs/prepare.py: downloads go to CACHE/downloads.
SMOKE_INPUT = 'ni hao shi jie'


def validation_metrics(workdir: str, step: int) -> dict[str, float]:
  """The validation metrics the trainer logged at `step` (empty if there are none)."""
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.isfile(path):
    return {}
  found = {}
  with open(path, encoding='utf-8') as f:
    for line in f:
      row = json.loads(line)
      if row.get('step') == step:
        found.update({k: round(v, 4) for k, v in row.items()
                      if '/' in k and not k.startswith('train/')})
  return found


LEXICON_CHOICES = lexicon_lib.SOURCES + ('source', 'none')
# The training text the word bigrams are counted over: every corpus's training split. Counted
# over general and domain alone, the pairs missed the words of software text and dialogue: with
# the newer registers added, the mean char acc over the out-of-source dev sets rose 0.26 points
# at the same weight (dev_tech +0.8), with general and domain unchanged (docs/QUALITY.md).
BIGRAM_CORPORA = ('general', 'domain', 'tech', 'ui', 'dialogue', 'idiom')
DEFAULT_MIX = 0.5  # --mix: half way from --mix-base to the source.


def count_bigrams(counts: dict[str, int], hanzi_vocab: vocab_lib.Vocab, data_dir: str,
                  corpora=BIGRAM_CORPORA, min_count: int = lexicon_lib.MIN_BIGRAM_COUNT
                  ) -> lexicon_lib.Bigrams:
  """Word bigrams of the word list `counts` over the training splits of `corpora` in the
  prepared `data_dir` (never their validation or test splits), which must have been prepared
  with the model's character vocabulary; pairs seen fewer than `min_count` times are dropped."""
  try:
    _, data_vocab = vocab_lib.load_vocabs(data_dir)
  except FileNotFoundError as e:
    raise FileNotFoundError(f'{e} It has the text to count word bigrams over; or pass another '
                            'with --bigram-data, or --bigram-data none') from None
  if data_vocab.fingerprint() != hanzi_vocab.fingerprint():
    raise ValueError(f'{data_dir} was prepared with another character vocabulary than the '
                     "model's; pass the model's prepared data (--bigram-data) or --bigram-data "
                     'none')
  # Opened before counting (memory-mapped), so a missing corpus fails at once, not minutes in.
  splits = [pipeline.load_split(data_dir, c, 'train') for c in corpora]
  lm = lexicon_lib.WordLM(counts)
  texts = (t for split in splits for t in split.texts(data_vocab))
  return lexicon_lib.count_bigrams(lm, texts, min_count)


def install(source: str, dest: str = RELEASE_DIR, dtype: str = 'float16',
            lexicon: str = 'jieba+wordfreq', cache_dir: str = DEFAULT_CACHE,
            lm_weight: float = lexicon_lib.DEFAULT_WEIGHT,
            lexicon_paths: int = lexicon_lib.DEFAULT_PATHS,
            lexicon_edits: int = lexicon_lib.DEFAULT_EDITS, bigram_data: str | None = None,
            bigram_corpora=BIGRAM_CORPORA,
            min_bigram_count: int = lexicon_lib.MIN_BIGRAM_COUNT, mix_base: str | None = None,
            mix: float = DEFAULT_MIX) -> dict:
  """Exports `source` (workdir or bundle) into `dest`; returns the written bundle.json.

  lexicon: a word list of lexicon.SOURCES ('jieba+wordfreq', the release's: the mean of jieba's
  and wordfreq's word probabilities; 'jieba'; 'wordfreq'), downloaded once into `cache_dir` like
  the corpora and kept to the words the model can write; 'source' (the source bundle's own,
  with its bigrams and its conversion settings); or 'none'.
  bigram_data: with a word list of lexicon.SOURCES, the prepared data directory whose training
  splits of `bigram_corpora` the list's word bigrams are counted over (`count_bigrams`, keeping
  the pairs seen `min_bigram_count` times or more); None for no bigrams.
  mix_base: a model (workdir or bundle) of the same config; the parameters written are then
  `mix` of the way from its parameters to the source's.
  """
  bundle = bundle_lib.load_model(source)
  old = bundle.meta.get('provenance', {})
  provenance = {'from': str(old.get('from', source))}
  params = bundle.params
  if mix_base is None:
    if 'mixed' in old:  # A mixture installed again says it is one.
      provenance['mixed'] = old['mixed']
  else:
    if not 0.0 <= mix <= 1.0:
      raise ValueError(f'--mix must be between 0 and 1, got {mix}')
    base = bundle_lib.load_model(mix_base)
    bundle_lib.check_mixable(base, bundle, mix_base, source)
    params = bundle_lib.interpolate(base.params, bundle.params, mix)
    base_from = base.meta.get('provenance', {}).get('from', mix_base)
    provenance['mixed'] = {'base': str(base_from), 'base_path': mix_base, 'mix': mix}
  settings, extensions = bundle_lib.ConversionSettings(), []
  if lexicon in lexicon_lib.SOURCES:
    counts = lexicon_lib.source_counts(lexicon, cache_dir, bundle.hanzi_vocab.tokens)
    bigrams = count_bigrams(counts, bundle.hanzi_vocab, bigram_data, bigram_corpora,
                            min_bigram_count) if bigram_data else None
    settings = bundle_lib.ConversionSettings(lm_weight=lm_weight, lexicon_paths=lexicon_paths,
                                             lexicon_edits=lexicon_edits)
    extensions.append(lexicon_lib.BundleLexicon(counts, bigrams))
    provenance['lexicon_from'] = lexicon
    if bigrams is not None:
      provenance['bigrams_from'] = (f'training splits of {",".join(bigram_corpora)} in '
                                    f'{bigram_data}' + (f', pairs seen {min_bigram_count}+ times'
                                    if min_bigram_count != lexicon_lib.MIN_BIGRAM_COUNT else ''))
  elif lexicon == 'source':
    if bundle.lexicon is None:
      raise ValueError(f'{source} has no lexicon to keep; use --lexicon jieba+wordfreq or none')
    settings = bundle.settings
    # Its readings as they are (a list of an earlier version has none: worked out again).
    extensions.append(lexicon_lib.BundleLexicon(bundle.lexicon.counts, bundle.lexicon.bigrams,
                                                bundle.lexicon.readings or None))
    provenance.update({k: old[k] for k in ('lexicon_from', 'bigrams_from') if k in old})
  elif lexicon != 'none':
    raise ValueError(f'lexicon must be one of {", ".join(LEXICON_CHOICES)}, got {lexicon!r}')
  # A workdir's model says where it came from as '<workdir>/<best|checkpoints> step N'.
  is_workdir = not os.path.isfile(os.path.join(source, 'bundle.json'))
  if mix_base is not None:
    pass  # The source's validation metrics are not the mixture's.
  elif is_workdir and ' step ' in provenance['from']:
    provenance['validation'] = validation_metrics(
        source, int(provenance['from'].rsplit(' step ', 1)[1]))
  elif 'validation' in old:  # A bundle released again keeps its model's record.
    provenance['validation'] = old['validation']
  bundle_lib.export_bundle(dest, params, bundle.model_config, bundle.pinyin_vocab,
                           bundle.hanzi_vocab, max_len=bundle.max_len, settings=settings,
                           dtype=dtype, extensions=extensions, provenance=provenance)
  # Check it the way users will load it: checksum, vocabularies, shapes, then one conversion.
  converter = convert.Converter(dest)
  meta = dict(converter.bundle.meta)
  meta['smoke'] = {SMOKE_INPUT: converter.convert(SMOKE_INPUT)}
  return meta


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(prog='python -m pyhanzi_jax.release', description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument('source', help='training workdir or bundle directory')
  ap.add_argument('--dest', default=RELEASE_DIR, help='where to write (default: the package)')
  ap.add_argument('--dtype', default='float16', choices=('float16', 'bfloat16', 'float32'),
                  help='parameter dtype of the bundle')
  ap.add_argument('--lexicon', default='jieba+wordfreq', choices=LEXICON_CHOICES,
                  help="word list for re-ranking: jieba's and wordfreq's mixed (the release's), "
                  "one of them (each downloaded from PyPI once), the source bundle's own, or none")
  ap.add_argument('--lm-weight', type=float, default=lexicon_lib.DEFAULT_WEIGHT,
                  help='its weight in the conversion score')
  ap.add_argument('--lexicon-paths', type=cli.count_arg, default=lexicon_lib.DEFAULT_PATHS,
                  help="the lexicon's best sentences added to the beam's candidates")
  ap.add_argument('--lexicon-edits', type=cli.count_arg, default=lexicon_lib.DEFAULT_EDITS,
                  help="the lexicon's one-word rewrites of the beam's best added to them")
  ap.add_argument('--bigram-data', default='data',
                  help="prepared data whose training text the word list's bigrams are counted "
                  "over (the model's; 'none': no bigrams)")
  ap.add_argument('--bigram-corpora', default=','.join(BIGRAM_CORPORA),
                  help='which of its corpora (training splits only)')
  ap.add_argument('--min-bigram-count', type=cli.count_arg, default=lexicon_lib.MIN_BIGRAM_COUNT,
                  help='keep the word pairs seen at least this often')
  ap.add_argument('--mix-base', default=None,
                  help='a model the source trained on from: install parameters between the two')
  ap.add_argument('--mix', type=float, default=None,
                  help="with --mix-base, how far from its parameters toward the source's (0-1; "
                  f'default {DEFAULT_MIX})')
  ap.add_argument('--cache-dir', default=DEFAULT_CACHE, help='where downloads are kept')
  args = ap.parse_args(argv)
  if args.mix is not None and args.mix_base is None:
    ap.error('--mix needs --mix-base: the model to mix the source with')
  try:
    meta = install(args.source, args.dest, args.dtype, args.lexicon, args.cache_dir,
                   args.lm_weight, args.lexicon_paths, args.lexicon_edits,
                   None if args.bigram_data == 'none' else args.bigram_data,
                   tuple(args.bigram_corpora.split(',')), args.min_bigram_count,
                   args.mix_base, DEFAULT_MIX if args.mix is None else args.mix)
  except (ckpt_lib.CheckpointError, FileNotFoundError, ValueError, RuntimeError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  size = sum(os.path.getsize(os.path.join(args.dest, f)) for f in os.listdir(args.dest))
  provenance, settings = meta['provenance'], meta['settings']
  mixed = provenance.get('mixed')
  print(f'installed {provenance["from"]}'
        + (f' ({mixed["mix"]} of the way from {mixed["base_path"]})' if mixed else '')
        + f' -> {args.dest} ({size / 2**20:.1f} MiB, '
        f'{meta["num_params"]:,} parameters, {meta["params_dtype"]})')
  if 'lexicon' in meta:
    lex = meta['lexicon']
    print(f'  lexicon: {lex["words"]:,} words, {lex.get("bigrams", 0):,} word bigrams, '
          f'lm_weight {settings["lm_weight"]}, paths {settings["lexicon_paths"]}, '
          f'edits {settings["lexicon_edits"]}')
  for k, v in sorted(provenance.get('validation', {}).items()):
    if k.split('/')[-1] in ('greedy_char_acc', 'greedy_sent_acc'):
      print(f'  validation {k} = {v}')
  for k, v in meta['smoke'].items():
    print(f'  {k} -> {v}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
