"""Tests for pyhanzi_jax/decode.py: a toy model with a known best path, then a tiny Transformer."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyhanzi_jax import decode
from pyhanzi_jax import model as model_lib
from pyhanzi_jax.data.vocab import BOS, EOS, PAD


@pytest.fixture(autouse=True)
def no_executables_on_disk():
  """Each test compiles in this process: an in-process `pyhanzi` run of another test module
  turns the on-disk executables on for the rest of the process (compile_cache.enable), and
  programs an earlier test run left in ~/.cache would then load without the traces the
  compile-counting tests count."""
  before = decode._EXECUTABLE_DIR['path']  # pylint: disable=protected-access
  decode.set_executable_dir(None)
  yield
  decode.set_executable_dir(before)

SRC_V, TGT_V = 30, 40


# ---------------------------------------------------------------------------------------------
# The search core on a toy Markov "model" (after t5x's decoding_test).

# P(next | previous) over ids PAD, BOS, EOS, 3, 4. Greedy takes 3 (0.6), then 4 (0.55), then
# EOS: 0.33. The best sequence is 4, EOS: 0.4.
_TRANSITIONS = np.array([
    [0.2, 0.2, 0.2, 0.2, 0.2],  # PAD (not used)
    [0.0, 0.0, 0.0, 0.6, 0.4],  # BOS
    [0.2, 0.2, 0.2, 0.2, 0.2],  # EOS (not used: finished rows are not scored)
    [0.0, 0.0, 0.45, 0.0, 0.55],  # 3
    [0.0, 0.0, 1.0, 0.0, 0.0],  # 4
])


def _toy_step(ids, step, cache):
  """tokens -> log-probs; the cache counts calls per row, to check it is carried along."""
  prev = jnp.where(step == 0, BOS, ids)
  probs = jnp.asarray(_TRANSITIONS, jnp.float32)[prev]
  log_probs = jnp.where(probs > 0, jnp.log(probs), model_lib.NEG_INF)
  return log_probs, jnp.arange(5, dtype=jnp.int32), {'calls': cache['calls'] + 1}


def _toy_search(beam_size, batch_size=2, num_steps=4):
  cache = {'calls': jnp.zeros((batch_size * beam_size,), jnp.int32)}
  return jax.jit(lambda c: decode.search(_toy_step, c, batch_size=batch_size, beam_size=beam_size,
                                         num_steps=num_steps))(cache)


def test_search_beam_finds_best_path_greedy_does_not():
  seqs, scores = _toy_search(beam_size=1)
  np.testing.assert_array_equal(seqs[:, 0], [[3, 4, EOS, PAD]] * 2)
  np.testing.assert_allclose(scores[:, 0], np.log(0.6 * 0.55), rtol=1e-5)

  seqs, scores = _toy_search(beam_size=2)
  np.testing.assert_array_equal(seqs[0], [[4, EOS, PAD, PAD], [3, 4, EOS, PAD]])
  np.testing.assert_allclose(scores[0], np.log([0.4, 0.6 * 0.55]), rtol=1e-5)
  np.testing.assert_array_equal(seqs[0], seqs[1])


def test_search_more_beams_than_hypotheses():
  """Beam 8 over a toy with 3 possible paths: the rest are marked by hopeless scores."""
  seqs, scores = _toy_search(beam_size=8)
  good = scores[0] > model_lib.NEG_INF / 2
  assert good.sum() == 3 and np.all(good[:3])
  np.testing.assert_allclose(scores[0, :3], np.log([0.4, 0.6 * 0.55, 0.6 * 0.45]), rtol=1e-5)
  np.testing.assert_array_equal(seqs[0, :3], [[4, EOS, PAD, PAD], [3, 4, EOS, PAD],
                                              [3, EOS, PAD, PAD]])


# ---------------------------------------------------------------------------------------------
# A tiny random Transformer.

@pytest.fixture(scope='module')
def tiny():
  config = model_lib.ModelConfig(SRC_V, TGT_V, emb_dim=32, num_heads=2, enc_layers=1,
                                 dec_layers=2, mlp_dim=64, max_len=16, dropout_rate=0.0)
  params = model_lib.init_params(config, jax.random.key(0))
  # Sharpen the output so that the argmax is not decided by rounding noise.
  params['decoder']['output']['embedding'] = params['decoder']['output']['embedding'] * 4.0
  return model_lib.Transformer(config), params


def _inputs(rng, batch, length, min_len=1):
  lens = rng.integers(min_len, length + 1, batch)
  x = np.zeros((batch, length), np.int32)
  for b, n in enumerate(lens):
    x[b, :n] = rng.integers(4, SRC_V, n)
    if n < length:
      x[b, n] = EOS
  return x


def _constraints(rng, batch, length, k):
  """[batch, length, k] distinct candidate ids per position, each list padded with -1."""
  c = np.full((batch, length, k), -1, np.int32)
  for b in range(batch):
    for i in range(length):
      n = rng.integers(1, k + 1)
      c[b, i, :n] = rng.choice(np.arange(4, TGT_V), n, replace=False)
  return c


REF_LEN = 10  # Teacher-forced references run on targets padded to this many positions.


def _full_logits(model, params, src, dec_in):
  """Uncached decoder logits [REF_LEN, vocab] for one sentence; dec_in is padded (causal)."""
  fn = _full_logits.cache.get(model)
  if fn is None:
    fn = _full_logits.cache[model] = jax.jit(
        lambda p, s, d: model.apply({'params': p}, s, d)[0])
  padded = np.zeros((1, REF_LEN), np.int32)
  padded[0, :len(dec_in)] = dec_in
  return np.asarray(fn(params, src[None], padded))


_full_logits.cache = {}


def _sequence_log_prob(model, params, inputs, seq, constraints=None):
  """Teacher-forced log p(seq, EOS | inputs), renormalised over the constraints if given."""
  n = int(np.sum(seq != PAD))
  target = np.concatenate([seq[:n], [EOS]]).astype(np.int32)
  # model(inputs, targets) shifts right itself, so pass the targets.
  logits = _full_logits(model, params, inputs, target)[:n + 1]
  if constraints is not None:
    mask = np.zeros_like(logits, bool)
    for i in range(n):
      mask[i, constraints[i][constraints[i] >= 0]] = True
    mask[n, EOS] = True
    logits = np.where(mask, logits, -1e9)
  log_probs = np.asarray(jax.nn.log_softmax(logits))
  return float(np.sum(log_probs[np.arange(n + 1), target]))


def _naive_greedy(model, params, inputs, max_len, constraints=None):
  """Argmax decoding that re-runs the full, uncached decoder on the prefix every step."""
  out = []
  for b in range(inputs.shape[0]):
    src = inputs[b]
    n_src = int(np.sum((src != PAD) & (src != EOS)))
    prefix = []
    for i in range(max_len + 1):
      # Targets `prefix` are shifted behind BOS by the model: row i predicts token i.
      logits = np.array(_full_logits(model, params, src, np.array(prefix, np.int32))[i])
      if constraints is not None:
        allowed = [EOS] if i >= n_src else [t for t in constraints[b, i] if t >= 0]
        masked = np.full_like(logits, -np.inf)
        masked[allowed] = logits[allowed]
        logits = masked
      logits[[PAD, BOS]] = -np.inf  # Never output.
      if i == max_len:
        break
      token = int(np.argmax(logits))
      if token == EOS:
        break
      prefix.append(token)
    out.append(prefix + [PAD] * (max_len - len(prefix)))
  return np.array(out)


# Shapes are shared between tests (batch 2, source bucket 8, 8 candidates, beams 1 and 3) so
# that the whole file compiles a handful of search functions.

def test_greedy_matches_uncached_argmax(tiny):
  model, params = tiny
  rng = np.random.default_rng(1)
  inputs = _inputs(rng, 2, 7)
  seqs, scores = decode.greedy_search(model, params, inputs)
  assert seqs.shape == (2, 8) and scores.shape == (2,)
  np.testing.assert_array_equal(seqs, _naive_greedy(model, params, inputs, 8))
  for b in range(2):
    if np.all(seqs[b] != PAD):  # Cut at max_len: its score includes a forced EOS.
      continue
    np.testing.assert_allclose(scores[b], _sequence_log_prob(model, params, inputs[b], seqs[b]),
                               rtol=1e-4, atol=1e-4)


def test_constrained_greedy_matches_uncached_argmax(tiny):
  model, params = tiny
  rng = np.random.default_rng(2)
  inputs = _inputs(rng, 2, 6)
  constraints = _constraints(rng, 2, 6, 6)
  seqs, _ = decode.greedy_search(model, params, inputs, constraints=constraints)
  assert seqs.shape == (2, 6)
  np.testing.assert_array_equal(seqs, _naive_greedy(model, params, inputs, 6, constraints))


def test_greedy_is_beam_one(tiny):
  model, params = tiny
  rng = np.random.default_rng(3)
  inputs = _inputs(rng, 2, 7)
  g_seqs, g_scores = decode.greedy_search(model, params, inputs)
  b_seqs, b_scores = decode.beam_search(model, params, inputs, beam_size=1)
  np.testing.assert_array_equal(g_seqs, b_seqs[:, 0])
  np.testing.assert_allclose(g_scores, b_scores[:, 0])


@pytest.mark.parametrize('constrained', [False, True])
def test_beam_scores_are_sequence_log_probs(tiny, constrained):
  """Each returned hypothesis's score is its teacher-forced log-prob, and best comes first.

  This fails if a beam's KV cache is not reordered with its beam.
  """
  model, params = tiny
  rng = np.random.default_rng(4)
  inputs = _inputs(rng, 2, 6, min_len=3)
  constraints = _constraints(rng, 2, 6, 8) if constrained else None
  seqs, scores = decode.beam_search(model, params, inputs, beam_size=3, constraints=constraints,
                                    length_penalty=0.0)
  assert seqs.shape == (2, 3, 6 if constrained else 8) and scores.shape == (2, 3)
  assert np.all(np.diff(scores, axis=1) <= 1e-6)
  _, g_scores = decode.greedy_search(model, params, inputs, constraints=constraints)
  assert np.all(scores[:, 0] >= g_scores - 1e-5)
  for b in range(2):
    for w in range(3):
      if np.all(seqs[b, w] != PAD) and not constrained:
        continue
      expect = _sequence_log_prob(model, params, inputs[b], seqs[b, w],
                                  None if constraints is None else constraints[b])
      np.testing.assert_allclose(scores[b, w], expect, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('constrained', [False, True])
def test_score_sequences_equals_the_beams_scores(tiny, constrained):
  """Teacher-forced re-scoring gives each beam hypothesis the score the search gave it, and a
  sequence against its constraints scores as impossible."""
  model, params = tiny
  rng = np.random.default_rng(7)
  inputs = _inputs(rng, 3, 6, min_len=2)
  constraints = _constraints(rng, 3, 6, 8) if constrained else None
  seqs, scores = decode.beam_search(model, params, inputs, beam_size=3, constraints=constraints,
                                    length_penalty=0.0)
  again = decode.score_sequences(model, params, inputs, seqs, constraints=constraints)
  live = scores > -1e8
  np.testing.assert_allclose(again[live], scores[live], rtol=1e-4, atol=1e-4)
  # Some hypothesis of every sentence is scored, also in another order and count (padded rows).
  np.testing.assert_allclose(decode.score_sequences(model, params, inputs, seqs[:, ::-1][:, :2],
                                                    constraints=constraints),
                             again[:, ::-1][:, :2], rtol=1e-5, atol=1e-5)
  if constrained:
    bad = seqs[:, :1].copy()
    bad[:, 0, 0] = TGT_V - 1 if constraints[0, 0, 0] != TGT_V - 1 else TGT_V - 2
    bad_rows = [b for b in range(3) if bad[b, 0, 0] not in constraints[b, 0]]
    got = decode.score_sequences(model, params, inputs, bad, constraints=constraints)
    assert bad_rows and all(got[b, 0] <= model_lib.NEG_INF / 2 for b in bad_rows)


def test_candidate_layouts_score_like_full_vocab(tiny):
  """Scoring only the candidates' rows (per sentence or packed) = masking the whole vocab."""
  model, params = tiny
  rng = np.random.default_rng(5)
  inputs = _inputs(rng, 2, 6)
  constraints = _constraints(rng, 2, 6, 8)
  seqs, scores = decode._beam_search(model, params, inputs, beam_size=3,
                                     constraints=constraints, length_penalty=0.0, scoring='full')
  for scoring in ('candidates_rows', 'candidates_packed'):
    s, sc = decode._beam_search(model, params, inputs, beam_size=3, constraints=constraints,
                                length_penalty=0.0, scoring=scoring)
    np.testing.assert_array_equal(s, seqs, err_msg=scoring)
    np.testing.assert_allclose(sc, scores, rtol=1e-5, atol=1e-5, err_msg=scoring)


def test_layout_candidates():
  constraints = np.array([[[5, -1, 6], [7, -1, -1], [-1, -1, -1]],
                          [[8, 9, 10], [-1, -1, -1], [-1, -1, -1]]], np.int32)
  src_len = np.array([3, 1])  # Sentence 0: 3 syllables, the last with no candidate.
  ids, owner = decode._layout_candidates(constraints, src_len, 3, 1, 'rows')
  assert ids.shape == (4, 2, 8)  # [steps, groups, width]
  np.testing.assert_array_equal(ids[:, 0, :2], [[5, 6], [7, -1], [3, -1], [EOS, -1]])
  np.testing.assert_array_equal(ids[:, 1, :3], [[8, 9, 10], [EOS, -1, -1], [EOS, -1, -1],
                                                [EOS, -1, -1]])
  np.testing.assert_array_equal(owner[0, :, :3], [[0, 0, -1], [1, 1, 1]])
  ids, owner = decode._layout_candidates(constraints, src_len, 3, 1, 'packed')
  assert ids.shape == (4, 1, 8)
  np.testing.assert_array_equal(ids[0, 0, :6], [5, 6, 8, 9, 10, -1])
  np.testing.assert_array_equal(owner[0, 0, :6], [0, 0, 1, 1, 1, -1])
  np.testing.assert_array_equal(ids[3, 0, :3], [EOS, EOS, -1])
  np.testing.assert_array_equal(owner[3, 0, :3], [0, 1, -1])


def test_layout_candidates_in_groups():
  """Groups of consecutive sentences: each group's lists concatenated, owners the batch rows."""
  constraints = np.array([[[5, -1]], [[6, 7]], [[8, -1]], [[9, 10]]], np.int32)  # [4, 1, 2]
  src_len = np.ones(4, int)
  ids, owner = decode._layout_candidates(constraints, src_len, 1, 1, 2)
  assert ids.shape == (2, 2, 8)  # [steps, groups, width]
  np.testing.assert_array_equal(ids[0, :, :4], [[5, 6, 7, -1], [8, 9, 10, -1]])
  np.testing.assert_array_equal(owner[0, :, :4], [[0, 1, 1, -1], [2, 3, 3, -1]])
  np.testing.assert_array_equal(ids[1, :, :3], [[EOS, EOS, -1], [EOS, EOS, -1]])
  # 'auto' picks one of the divisors of the batch; a non-divisor is refused.
  assert decode._layout_candidates(constraints, src_len, 1, 1)[0].shape[1] in (1, 2, 4)
  with pytest.raises(ValueError, match='divisor'):
    decode._layout_candidates(constraints, src_len, 1, 1, 3)


@pytest.mark.parametrize('groups', [2, 4])
def test_grouped_candidates_score_like_full_vocab(tiny, monkeypatch, groups):
  model, params = tiny
  rng = np.random.default_rng(9)
  inputs = _inputs(rng, 4, 6)
  constraints = _constraints(rng, 4, 6, 8)
  seqs, scores = decode._beam_search(model, params, inputs, beam_size=3,
                                     constraints=constraints, scoring='full')
  monkeypatch.setitem(decode._LAYOUTS, 'candidates', groups)
  s, sc = decode.beam_search(model, params, inputs, beam_size=3, constraints=constraints)
  np.testing.assert_array_equal(s, seqs)
  np.testing.assert_allclose(sc, scores, rtol=1e-5, atol=1e-5)


def test_unconstrained_respects_max_len_and_pads_after_eos(tiny):
  model, params = tiny
  inputs = _inputs(np.random.default_rng(6), 2, 6)
  seqs, scores = decode.beam_search(model, params, inputs, beam_size=3, max_len=3)
  assert seqs.shape == (2, 3, 3) and np.all(np.isfinite(scores))
  assert not np.any(seqs == EOS) and not np.any(seqs == BOS)
  for row in seqs.reshape(-1, 3):  # PAD only as a suffix.
    n = np.sum(row != PAD)
    assert np.all(row[:n] != PAD) and np.all(row[n:] == PAD)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), max_src=st.integers(1, 8), k=st.integers(1, 8),
       beam=st.sampled_from([1, 3]))
def test_constrained_output_obeys_constraints(tiny, seed, max_src, k, beam):
  """Whatever the candidate sets: one allowed character per syllable, then nothing."""
  model, params = tiny
  rng = np.random.default_rng(seed)
  # Sentences of 1..max_src syllables, padded into one [2, 8] batch (one compiled shape).
  inputs = np.zeros((2, 8), np.int32)
  inputs[:, :max_src] = _inputs(rng, 2, max_src)
  constraints = np.full((2, 8, 8), -1, np.int32)
  constraints[:, :, :k] = _constraints(rng, 2, 8, k)
  seqs, scores = decode._beam_search(model, params, inputs, beam_size=beam,
                                     constraints=constraints, length_penalty=0.0,
                                     scoring='candidates_rows')  # One compiled shape.
  assert seqs.shape == (2, beam, 8)
  for b in range(2):
    n_src = int(np.sum((inputs[b] != PAD) & (inputs[b] != EOS)))
    for w in range(beam):
      if scores[b, w] <= model_lib.NEG_INF / 2:  # Fewer hypotheses than beams.
        continue
      out = seqs[b, w]
      assert np.all(out[n_src:] == PAD), (out, n_src)
      for i in range(n_src):
        assert out[i] in constraints[b, i][constraints[b, i] >= 0], (i, out, constraints[b, i])
  assert np.all(scores[:, 0] > model_lib.NEG_INF / 2)


def test_compiles_once_per_shape_bucket(tiny):
  model, params = tiny
  rng = np.random.default_rng(7)

  def run(batch, length, per_position):
    """Every position gets `per_position` candidates, so the packed size is known."""
    constraints = np.full((batch, length, 8), -1, np.int32)
    for b in range(batch):
      for i in range(length):
        constraints[b, i, :per_position] = rng.choice(np.arange(4, TGT_V), per_position,
                                                      replace=False)
    decode.beam_search(model, params, _inputs(rng, batch, length), beam_size=3,
                       length_penalty=0.0, constraints=constraints)

  run(2, 5, 3)
  before = decode.TRACE_COUNT['n']
  run(2, 5, 3)
  run(2, 7, 4)  # Same buckets: 7 positions pad to 8 like 5; 2 x 4 candidates pack into 8.
  assert decode.TRACE_COUNT['n'] == before
  run(3, 5, 2)  # A new batch size traces once.
  run(3, 6, 1)
  assert decode.TRACE_COUNT['n'] == before + 1


def test_rejects_bad_arguments(tiny):
  model, params = tiny
  with pytest.raises(ValueError, match='split'):
    decode.greedy_search(model, params, np.ones((1, 16), np.int32))
  with pytest.raises(ValueError, match='constraints'):
    decode.greedy_search(model, params, np.ones((1, 4), np.int32),
                         constraints=np.ones((1, 3, 2), np.int32))
  with pytest.raises(ValueError, match='scoring'):
    decode._beam_search(model, params, np.ones((1, 4), np.int32), scoring='fast')


def test_bfloat16_model_decodes(tiny):
  _, params = tiny
  config = model_lib.ModelConfig(SRC_V, TGT_V, emb_dim=32, num_heads=2, enc_layers=1,
                                 dec_layers=2, mlp_dim=64, max_len=16, dtype='bfloat16')
  model = model_lib.Transformer(config)
  rng = np.random.default_rng(8)
  inputs = _inputs(rng, 2, 6, min_len=6)
  constraints = _constraints(rng, 2, 6, 8)
  seqs, scores = decode.greedy_search(model, params, inputs, constraints=constraints)
  assert np.all(np.isfinite(scores)) and scores.dtype == np.float32
  for b in range(2):
    for i in range(6):
      assert seqs[b, i] in constraints[b, i]


@pytest.mark.parametrize('beam', [1, 3])
def test_constrained_search_skipping_the_final_eos_step_changes_nothing(tiny, beam):
  """The loop stops at the longest sentence's length (EOS written without a model step)."""
  model, params = tiny
  rng = np.random.default_rng(9)
  inputs = _inputs(rng, 2, 7)
  constraints = _constraints(rng, 2, 7, 8)
  padded, packed, max_len, s = decode._prepare(model, inputs, constraints, None, beam, 'rows')
  fn = decode._compiled(model, beam, max_len, True, 'candidates', 0.0)
  seqs, scores = fn(params, padded, packed)
  no_stop = packed[:2] + (np.int32(max_len + 1),)  # Run every step, as before.
  ref_seqs, ref_scores = fn(params, padded, no_stop)
  np.testing.assert_array_equal(seqs, ref_seqs)
  np.testing.assert_allclose(scores, ref_scores, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('beam', [1, 3])
def test_fixed_candidate_widths_compile_once_and_change_nothing(tiny, beam):
  """With candidate_widths the compiled shape depends on which width the widest list needs,
  not on the counts (2 to 7 candidates all fit 8): one trace per width, the same sequences and
  scores as the cost-model layout, for the search and for score_sequences."""
  model, params = tiny
  rng = np.random.default_rng(11)
  widths = (8, 32)
  inputs = _inputs(rng, 2, 6)
  decode.beam_search(model, params, inputs, beam_size=beam, constraints=_constraints(rng, 2, 6, 2),
                     candidate_widths=widths)
  seqs = np.zeros((2, 4, 6), np.int32)
  decode.score_sequences(model, params, inputs, seqs, constraints=_constraints(rng, 2, 6, 2),
                         candidate_widths=widths)
  before = decode.TRACE_COUNT['n']
  for k in (3, 5, 7, 8):
    constraints = _constraints(rng, 2, 6, k)
    got = decode.beam_search(model, params, inputs, beam_size=beam, constraints=constraints,
                             candidate_widths=widths, length_penalty=0.0)
    want = decode.beam_search(model, params, inputs, beam_size=beam, constraints=constraints,
                              length_penalty=0.0)
    found = want[1] > model_lib.NEG_INF / 2  # Past them the beam holds no path, any filler.
    np.testing.assert_array_equal(got[0][found], want[0][found])
    np.testing.assert_allclose(got[1][found], want[1][found], rtol=1e-5, atol=1e-5)
    # Valid ids need not come first in a list: score_sequences compacts them.
    shuffled = constraints[..., ::-1].copy()
    scored = decode.score_sequences(model, params, inputs, got[0], constraints=shuffled,
                                    candidate_widths=widths)
    np.testing.assert_allclose(scored[found], got[1][found], rtol=1e-4, atol=1e-4)
  traces = decode.TRACE_COUNT['n'] - before
  # The fixed-width calls traced nothing new (the layout without widths may have: count them).
  decode.TRACE_COUNT['n'] = before
  for k in (4, 6):
    constraints = _constraints(rng, 2, 6, k)
    decode.beam_search(model, params, inputs, beam_size=beam, constraints=constraints,
                       candidate_widths=widths)
    decode.score_sequences(model, params, inputs, seqs, constraints=constraints,
                           candidate_widths=widths)
  assert decode.TRACE_COUNT['n'] == before, traces
  wide = _constraints(rng, 2, 6, 20)  # Needs the second width: a new program.
  decode.beam_search(model, params, inputs, beam_size=beam, constraints=wide,
                     candidate_widths=widths)
  assert decode.TRACE_COUNT['n'] == before + 1
  decode.score_sequences(model, params, inputs, seqs, constraints=wide, candidate_widths=widths)
  before = decode.TRACE_COUNT['n']
  for k in (12, 30):
    wide = _constraints(rng, 2, 6, k)
    decode.beam_search(model, params, inputs, beam_size=beam, constraints=wide,
                       candidate_widths=widths)
    decode.score_sequences(model, params, inputs, seqs, constraints=wide, candidate_widths=widths)
  assert decode.TRACE_COUNT['n'] == before


def test_executables_on_disk_load_without_tracing_and_bad_ones_are_rebuilt(tiny, tmp_path):
  """With an executable directory, each program compiled is written there once; a later
  process (the in-memory table emptied) loads it without tracing and gets what plain jit gets;
  a truncated or damaged file is compiled again and replaced."""
  model, params = tiny
  rng = np.random.default_rng(5)
  inputs, constraints = _inputs(rng, 2, 6), _constraints(rng, 2, 6, 3)

  def run():
    seqs, scores = decode.beam_search(model, params, inputs, beam_size=2,
                                      constraints=constraints, candidate_widths=(8,))
    return seqs, scores, decode.score_sequences(model, params, inputs, seqs,
                                                constraints=constraints, candidate_widths=(8,))

  def traced(fn):
    before = decode.TRACE_COUNT['n']
    out = fn()
    return decode.TRACE_COUNT['n'] - before, out

  def same(got, want):
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-6)

  def new_process():  # Nothing compiled or traced in memory, as a new process starts.
    decode.set_executable_dir(str(tmp_path))
    decode._compiled.cache_clear()  # pylint: disable=protected-access
    decode._compiled_score.cache_clear()  # pylint: disable=protected-access
    jax.clear_caches()

  want = run()
  try:
    new_process()
    n, got = traced(run)
    files = sorted(os.listdir(tmp_path))
    assert n == 2 and len(files) == 2 and [f.split('-')[0] for f in files] == ['beam', 'score']
    same(got, want)
    new_process()
    n, got = traced(run)
    assert n == 0
    same(got, want)
    data = (tmp_path / files[0]).read_bytes()
    (tmp_path / files[0]).write_bytes(data[:len(data) // 2])
    data = bytearray((tmp_path / files[1]).read_bytes())
    data[-100] ^= 0xff
    (tmp_path / files[1]).write_bytes(bytes(data))
    new_process()
    n, got = traced(run)
    assert n == 2 and sorted(os.listdir(tmp_path)) == files
    same(got, want)
    new_process()  # Replaced by good ones.
    n, got = traced(run)
    assert n == 0
    same(got, want)
  finally:
    decode.set_executable_dir(None)
