#!/usr/bin/env bash
# Train on a Cloud TPU VM slice (one host or a pod slice): the same command on every worker.
#
#   launch/tpu_pod.sh --name=NAME --zone=ZONE --accelerator-type=TYPE --bucket=gs://BUCKET \
#       --config=CONFIG [options] [-- --config.FIELD=VALUE ...]
#
#   launch/tpu_pod.sh --name=hanzi --zone=us-central2-b --accelerator-type=v4-32 \
#       --bucket=gs://my-bucket --config=configs/pretrain_gpu.py --run=pretrain_v4 \
#       -- --config.train.batch_size=2048 --config.optim.learning_rate=2e-3
#
# What it does (with --dry-run it prints these commands instead of running them):
#   1. creates the TPU VM slice NAME, or reuses it when it already exists;
#   2. copies this checkout (tracked and untracked files, not ignored ones) to every worker and
#      installs it with jax[tpu] into ~/pyhanzi_venv (Python 3.11 through uv: jax 0.10 needs
#      >= 3.11, the TPU images ship 3.10);
#   3. copies the prepared data (--data) to every worker's disk, ~/pyhanzi_data: each process
#      memory-maps it and reads only its own rows of each global batch;
#   4. mounts the bucket with gcsfuse at ~/gcs/BUCKET on every worker, so that the workdir
#      ~/gcs/BUCKET/runs/RUN (= gs://BUCKET/runs/RUN) is shared: every process writes its part
#      of each orbax checkpoint; process 0 alone writes metrics, TensorBoard events and export;
#   5. runs `python -m pyhanzi_jax.main` on all workers at once (ssh --worker=all), with
#      --config.distributed.initialize=yes: JAX finds its peers from the TPU metadata server.
# Running the same command again reuses the slice and resumes from the last checkpoint.
#
# Flags (--flag=value or --flag value):
#   --name NAME              TPU VM name (required)
#   --zone ZONE              zone with the accelerator, e.g. us-central2-b (v4) (required)
#   --accelerator-type TYPE  e.g. v4-32, v5litepod-16, v5p-32, v6e-16 (required to create)
#   --version VERSION        TPU software version; default by type: tpu-ubuntu2204-base (v4),
#                            v2-alpha-tpuv5-lite (v5e), v2-alpha-tpuv5 (v5p), v2-alpha-tpuv6e (v6e)
#   --bucket gs://BUCKET     bucket for the workdir (required)
#   --config FILE[:ARG]      a configs/*.py file, relative to the repository root, and its
#                            get_config argument, e.g. configs/release_cpu.py:stage=8 (required)
#   --run NAME               run name; workdir gs://BUCKET/runs/NAME (default: the config file's
#                            name and its argument, e.g. release_cpu_stage8)
#   --data gs://PATH         prepared data (configs/prepare.py's workdir, uploaded with
#                            `gcloud storage rsync --recursive data gs://BUCKET/data`);
#                            default gs://BUCKET/data
#   --project PROJECT        gcloud project (default: gcloud's configured one)
#   --spot                   create the slice from Spot capacity (cheaper, preemptible)
#   --skip-setup             skip steps 2-4 (code, data and mount already in place)
#   --detach                 start training under nohup and return; each worker logs to
#                            ~/pyhanzi_train.log (default: stream all workers' output here)
#   --delete-after           delete the slice when training ends (not with --detach)
#   --dry-run                print the commands, run nothing (gcloud is not needed)
#   -h, --help               this text
#   -- ARGS                  everything after -- goes to pyhanzi_jax.main as it is
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}
die() { echo "tpu_pod.sh: $*" >&2; exit 2; }

NAME='' ZONE='' TYPE='' VERSION='' BUCKET='' CONFIG='' RUN='' DATA='' PROJECT=''
SPOT=0 SKIP_SETUP=0 DETACH=0 DELETE_AFTER=0 DRY_RUN=0
EXTRA=()

set_flag() {
  case "$1" in
    --name) NAME=$2 ;;
    --zone) ZONE=$2 ;;
    --accelerator-type) TYPE=$2 ;;
    --version) VERSION=$2 ;;
    --bucket) BUCKET=$2 ;;
    --config) CONFIG=$2 ;;
    --run) RUN=$2 ;;
    --data) DATA=$2 ;;
    --project) PROJECT=$2 ;;
    *) die "unknown flag $1 (see --help; trainer overrides go after --)" ;;
  esac
}

while (($#)); do
  arg=$1
  shift
  case "$arg" in
    --) EXTRA=("$@"); break ;;
    -h|--help) usage 0 ;;
    --dry-run) DRY_RUN=1 ;;
    --spot) SPOT=1 ;;
    --skip-setup) SKIP_SETUP=1 ;;
    --detach) DETACH=1 ;;
    --delete-after) DELETE_AFTER=1 ;;
    --*=*) set_flag "${arg%%=*}" "${arg#*=}" ;;
    --*) (($#)) || die "$arg needs a value"; set_flag "$arg" "$1"; shift ;;
    *) die "unexpected argument '$arg' (trainer overrides go after --)" ;;
  esac
done

[[ -n $NAME ]] || die '--name is required'
[[ -n $ZONE ]] || die '--zone is required'
[[ -n $BUCKET ]] || die '--bucket is required (gs://BUCKET)'
[[ -n $CONFIG ]] || die '--config is required'
[[ $BUCKET == gs://* ]] || die "--bucket must look like gs://BUCKET, got '$BUCKET'"
BUCKET_NAME=${BUCKET#gs://}
BUCKET_NAME=${BUCKET_NAME%%/*}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -f $ROOT/${CONFIG%%:*} ]] || die "config '${CONFIG%%:*}' not found under $ROOT"
((DETACH && DELETE_AFTER)) && die '--delete-after cannot wait for a --detach run'
# Each argument its own workdir: two stages of one config must not resume each other's run.
CONFIG_ARG=${CONFIG#"${CONFIG%%:*}"}
RUN=${RUN:-$(basename "${CONFIG%%:*}" .py)${CONFIG_ARG:+_${CONFIG_ARG//[^A-Za-z0-9]/}}}
DATA=${DATA:-gs://$BUCKET_NAME/data}
if [[ -z $VERSION ]]; then
  case "$TYPE" in
    v5litepod-*|v5e-*) VERSION=v2-alpha-tpuv5-lite ;;
    v5p-*) VERSION=v2-alpha-tpuv5 ;;
    v6e-*) VERSION=v2-alpha-tpuv6e ;;
    *) VERSION=tpu-ubuntu2204-base ;;
  esac
fi
if ((!DRY_RUN)); then
  command -v gcloud >/dev/null || die 'gcloud is not installed (https://cloud.google.com/sdk)'
fi

# Shows a command the way a shell would take it back, and runs it unless --dry-run.
show() {
  local out='' a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=@,+%~-]+$ ]]; then out+="$a "; else out+="'${a//\'/\'\\\'\'}' "; fi
  done
  echo "${out% }"
}
run() {
  show "$@"
  ((DRY_RUN)) || "$@"
}

TPU=(gcloud compute tpus tpu-vm)
WHERE=("--zone=$ZONE")
[[ -n $PROJECT ]] && WHERE+=("--project=$PROJECT")

# 1. The slice.
echo "# 1. the TPU VM slice $NAME: reused if it exists, else created"
show "${TPU[@]}" describe "$NAME" "${WHERE[@]}" '--format=value(acceleratorType)'
if ((DRY_RUN)); then
  echo '# only if the slice does not exist:'
  exists=0
elif existing=$("${TPU[@]}" describe "$NAME" "${WHERE[@]}" '--format=value(acceleratorType)' \
                2>/dev/null); then
  exists=1
  existing=${existing##*/}
  echo "# reusing $NAME ($existing)"
  [[ -z $TYPE || $existing == "$TYPE" ]] || die "$NAME exists as $existing, not $TYPE"
else
  exists=0
fi
if ((!exists)) && [[ -z $TYPE ]]; then
  ((DRY_RUN)) || die "$NAME does not exist: --accelerator-type is needed to create it"
  echo '# (creating it needs --accelerator-type)'
elif ((!exists)); then
  create=("${TPU[@]}" create "$NAME" "${WHERE[@]}" "--accelerator-type=$TYPE"
          "--version=$VERSION")
  ((SPOT)) && create+=(--spot)
  run "${create[@]}"
fi

SSH=("${TPU[@]}" ssh "$NAME" "${WHERE[@]}" --worker=all)

if ((!SKIP_SETUP)); then
  # 2. The code, as it is in this checkout, on every worker.
  echo "# 2. this checkout to every worker, installed with jax[tpu] into ~/pyhanzi_venv"
  TARBALL=${TMPDIR:-/tmp}/pyhanzi_code_$$.tar.gz
  pack="cd $(show "$ROOT") && git ls-files -z --cached --others --exclude-standard"
  pack+=" | tar --null --ignore-failed-read -T - -czf $TARBALL"
  echo "$pack"
  if ((!DRY_RUN)); then
    bash -c "$pack"
    trap 'rm -f "$TARBALL"' EXIT
  fi
  run "${TPU[@]}" scp "$TARBALL" "$NAME:pyhanzi_code.tar.gz" "${WHERE[@]}" --worker=all
  JAX_VERSION=$(sed -n 's/^ *jax==\([0-9.]*\).*/\1/p' "$ROOT/setup.cfg" | head -n 1)
  setup="set -e
rm -rf ~/pyhanzi_jax && mkdir -p ~/pyhanzi_jax && tar -xzf ~/pyhanzi_code.tar.gz -C ~/pyhanzi_jax
command -v uv >/dev/null || python3 -m pip install -q --user uv || curl -LsSf https://astral.sh/uv/install.sh | sh
export PATH=\$HOME/.local/bin:\$PATH
[ -x ~/pyhanzi_venv/bin/python ] || uv venv -q --python 3.11 ~/pyhanzi_venv
uv pip install -q --python ~/pyhanzi_venv/bin/python -e ~/pyhanzi_jax 'jax[tpu]==${JAX_VERSION:-0.10.2}'"
  run "${SSH[@]}" "--command=$setup"

  # 3. The prepared data on every worker's disk.
  echo "# 3. the prepared data from $DATA to ~/pyhanzi_data on every worker"
  run "${SSH[@]}" "--command=mkdir -p ~/pyhanzi_data && gcloud storage rsync --recursive $DATA ~/pyhanzi_data"

  # 4. The bucket, mounted where every worker sees the same workdir.
  echo "# 4. gs://$BUCKET_NAME mounted with gcsfuse at ~/gcs/$BUCKET_NAME on every worker"
  mount="set -e
if ! command -v gcsfuse >/dev/null; then
  echo \"deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt gcsfuse-\$(lsb_release -c -s) main\" | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null
  curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null
  sudo apt-get update -q && sudo apt-get install -y -q gcsfuse
fi
mkdir -p ~/gcs/$BUCKET_NAME
mountpoint -q ~/gcs/$BUCKET_NAME || gcsfuse --implicit-dirs $BUCKET_NAME ~/gcs/$BUCKET_NAME"
  run "${SSH[@]}" "--command=$mount"
fi

# 5. The same training command on every worker.
WORKDIR="\$HOME/gcs/$BUCKET_NAME/runs/$RUN"
train="cd ~/pyhanzi_jax && ~/pyhanzi_venv/bin/python -m pyhanzi_jax.main"
train+=" --config=$(show "$CONFIG") --workdir=$WORKDIR --config.data.dir=\$HOME/pyhanzi_data"
train+=" --config.distributed.initialize=yes"
for a in "${EXTRA[@]}"; do
  train+=" $(show "$a")"
done
if ((DETACH)); then
  train="nohup bash -c $(show "$train") > ~/pyhanzi_train.log 2>&1 < /dev/null &"
fi
echo "# 5. training on every worker; workdir gs://$BUCKET_NAME/runs/$RUN"
run "${SSH[@]}" "--command=$train"
if ((DETACH)); then
  echo "# started; follow it with:"
  show "${TPU[@]}" ssh "$NAME" "${WHERE[@]}" --worker=0 '--command=tail -f ~/pyhanzi_train.log'
fi
if ((DELETE_AFTER)); then
  run "${TPU[@]}" delete "$NAME" "${WHERE[@]}" --quiet
fi
