"""experiments/lexicon_weight.py: its figure at a weight is what the converter gives with that
weight, lines longer than the decoding window included (converted in pieces, each ranked
with the weight; re-ranking the joined line's one candidate ranked nothing)."""
import os

from experiments import lexicon_weight
from pyhanzi_jax import convert
from pyhanzi_jax import evaluate

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'tiny_data')


def test_long_lines_are_ranked_with_each_weight(tmp_path, capsys):
  rows = []
  for corpus in ('general', 'domain'):
    rows += evaluate.read_tsv(os.path.join(FIXTURES, corpus, 'valid.tsv'))
  # Lines of about 100 syllables: several pieces each.
  joined = [(sum((py for py, _ in rows[i:i + 8]), []), ''.join(hz for _, hz in rows[i:i + 8]))
            for i in range(0, 40, 8)]
  os.makedirs(tmp_path / 'long')
  with open(tmp_path / 'long' / 'valid.tsv', 'w', encoding='utf-8') as f:
    f.writelines(f'{" ".join(py)}\t{hz}\n' for py, hz in joined)
  conv = convert.Converter(lexicon_paths=0, lexicon_edits=0)
  assert all(len(conv._parse(evaluate.input_form(py, 'spaced'))[1]) > 1 for py, _ in joined)

  lexicon_weight.main(['--data', str(tmp_path), '--corpora', 'long', '--lines', '10',
                       '--weights', '0,1', '--paths', '0', '--edits', '0'])
  row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith('| long'))
  figures = [cell.split(' / ')[0] for cell in row.split(' | ')[4:6]]

  expected = []
  for w in (0, 1):
    conv = convert.Converter(lm_weight=w, lexicon_paths=0, lexicon_edits=0)
    texts = [conv.convert(evaluate.input_form(py, 'spaced')) for py, _ in joined]
    expected.append(f'{evaluate.score_texts(texts, [hz for _, hz in joined])["char_acc"]:.4f}')
  assert expected[0] != expected[1]  # The weight changes these lines' conversions.
  assert figures == expected
