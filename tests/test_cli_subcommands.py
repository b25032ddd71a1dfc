"""`pyhanzi serve` and `pyhanzi adapt` reach their own commands; anything else is pinyin."""
import pytest

from pyhanzi_jax import cli


@pytest.mark.parametrize('name', cli.SUBCOMMANDS)
def test_subcommand_has_its_own_options(name, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main([name, '--help'])
  assert e.value.code == 0
  assert capsys.readouterr().out.startswith(f'usage: pyhanzi {name}')


def test_a_subcommand_name_after_pinyin_is_not_one(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(['--nbest', '0', 'serve'])  # Parsed by the converter's options: a bad --nbest.
  assert e.value.code == 2
  assert 'usage: pyhanzi [-h]' in capsys.readouterr().err
