#!/bin/bash
# One prepared GPU run on the device machine (one H200, no network, 10 minutes a command):
# pretrain + fine-tune + export within the budget, the bundle and the numbers back in $OUT.
# experiments/device_recipe.py is the recipe; this picks its Python and brings the one package
# the machine's image lacks. docs/SCALING.md ("One prepared GPU run") has the whole `run` call.
#
#   launch/device_recipe.sh pack [--corpora general,domain]   # here, once: .carry/ and .whl/
#   launch/device_recipe.sh run --out "$OUT"                  # there (H200 defaults)
#   launch/device_recipe.sh run --tiny --out /tmp/recipe_out  # here: the same path on CPU
#   launch/device_recipe.sh unpack FILES_AT runs/gpu_raw      # here, with what came back
#
# Python: $PYTHON, else this checkout's .venv, else python3 (the device machine's, which holds
# jax with CUDA, flax, optax and orbax, but not ml_collections: `pack` fetches its wheel into
# .whl/ and `run` installs it into /tmp/site there).

set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${PYTHON:-}" ]]; then
  :
elif [[ -x .venv/bin/python ]]; then
  PYTHON=.venv/bin/python
else
  PYTHON=python3
fi
export PYTHONUNBUFFERED=1

# The device image's packages plus these pure-Python wheels (pinned as setup.cfg pins them).
WHEELS=(ml-collections==1.1.0)

case "${1:-}" in
  pack)
    shift
    "$PYTHON" -m experiments.device_recipe pack "$@"
    # For Python 3.12 on x86-64 Linux, the device machine's; ml_collections needs only absl-py
    # and PyYAML, both there.
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${WHEELS[@]}"
    ls -l .carry .whl
    ;;
  run)
    shift
    if ! "$PYTHON" -c 'import ml_collections' 2>/dev/null; then
      if ! compgen -G '.whl/*.whl' >/dev/null; then
        echo "error: $PYTHON lacks ml_collections and no .whl/ was carried: run" \
             "'launch/device_recipe.sh pack' here and name .whl in carry" >&2
        exit 2
      fi
      "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
          --target /tmp/site .whl/*.whl
      export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    # Fail in seconds, not minutes, when the machine's packages do not fit this code.
    "$PYTHON" - <<'EOF'
import jax, flax, optax, orbax.checkpoint, ml_collections
from pyhanzi_jax import train  # noqa: F401  (imports the whole training stack)
print(f'python ok: jax {jax.__version__} on {jax.devices()}, flax {flax.__version__}, '
      f'optax {optax.__version__}', flush=True)
EOF
    exec "$PYTHON" -m experiments.device_recipe run "$@"
    ;;
  unpack|compare)
    exec "$PYTHON" -m experiments.device_recipe "$@"
    ;;
  *)
    echo "usage: $0 pack|run|unpack [ARGS]  (python -m experiments.device_recipe --help)" >&2
    exit 2
    ;;
esac
