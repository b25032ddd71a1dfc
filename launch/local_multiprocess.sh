#!/usr/bin/env bash
# N training processes on this machine, on CPU: the multi-host code path without a cluster.
#
#   launch/local_multiprocess.sh N CONFIG[:ARG] --workdir=DIR [--config.x.y=z ...]
#   launch/local_multiprocess.sh 2 configs/tiny.py --workdir=/tmp/mp --config.train.num_steps=20
#
# Each process runs `python -m pyhanzi_jax.main` with its own process id and
# `--config.distributed.initialize=yes`, a coordinator at 127.0.0.1:PORT that listens on the
# loopback interface only, and DEVICES_PER_PROCESS fake CPU devices (so N x DEVICES_PER_PROCESS
# devices in all). Process 0 prints to this terminal; process i > 0 writes LOG_DIR/process_i.log.
# The script waits for all of them and exits non-zero as soon as one fails (the others are
# stopped then, instead of waiting on a collective that will never complete).
#
# Environment:
#   DEVICES_PER_PROCESS  fake CPU devices per process (default 1)
#   COORDINATOR_PORT     coordinator port on 127.0.0.1 (default: a free one)
#   LOG_DIR              where processes 1..N-1 write their logs (default: a new temp dir)
#   PYTHON               interpreter (default: .venv/bin/python if present, else python3)
#   XLA_FLAGS_EXTRA      more XLA flags for every process
#
# (The CPU collectives, gloo over TCP, connect through the address this host's name resolves to.)
set -euo pipefail

usage() {
  sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 2 ]] || usage
N=$1
CONFIG=$2
shift 2
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive integer, got '$N'" >&2; exit 2; }
[[ -f "${CONFIG%%:*}" ]] || { echo "config file '${CONFIG%%:*}' not found" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
DEVICES_PER_PROCESS=${DEVICES_PER_PROCESS:-1}
PORT=${COORDINATOR_PORT:-$("$PYTHON" -c \
  'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
LOG_DIR=${LOG_DIR:-$(mktemp -d -t pyhanzi_mp.XXXXXX)}
mkdir -p "$LOG_DIR"

echo "local_multiprocess: $N processes x $DEVICES_PER_PROCESS CPU devices, coordinator" \
     "127.0.0.1:$PORT, logs of processes 1..$((N - 1)) in $LOG_DIR" >&2

declare -A PROCESS_OF_PID=()
stop_all() {
  local pid
  for pid in "${!PROCESS_OF_PID[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
}
trap 'stop_all; exit 130' INT TERM

for ((i = 0; i < N; i++)); do
  (
    cd "$ROOT"
    export JAX_PLATFORMS=cpu
    export XLA_FLAGS="--xla_force_host_platform_device_count=$DEVICES_PER_PROCESS ${XLA_FLAGS_EXTRA:-}"
    # jax.distributed binds the coordinator to [::]:PORT by default; keep it on loopback.
    export JAX_COORDINATOR_BIND_ADDRESS="127.0.0.1:$PORT"
    args=(-m pyhanzi_jax.main "--config=$CONFIG" "$@"
          --config.distributed.initialize=yes
          "--config.distributed.coordinator_address=127.0.0.1:$PORT"
          "--config.distributed.num_processes=$N"
          "--config.distributed.process_id=$i")
    if [[ $i -eq 0 ]]; then
      exec "$PYTHON" "${args[@]}"
    else
      exec "$PYTHON" "${args[@]}" > "$LOG_DIR/process_$i.log" 2>&1
    fi
  ) &
  PROCESS_OF_PID[$!]=$i
done

status=0
while [[ ${#PROCESS_OF_PID[@]} -gt 0 ]]; do
  rc=0
  wait -n -p done_pid "${!PROCESS_OF_PID[@]}" || rc=$?
  i=${PROCESS_OF_PID[$done_pid]}
  unset "PROCESS_OF_PID[$done_pid]"
  # 75: preempted after saving (pyhanzi_jax/exit_codes.py); the others are saving the same step.
  if [[ $rc -eq 75 ]]; then status=75; continue; fi
  if [[ $rc -ne 0 ]]; then
    echo "local_multiprocess: process $i exited with status $rc; stopping the others" >&2
    if [[ $i -gt 0 ]]; then
      echo "--- last lines of $LOG_DIR/process_$i.log ---" >&2
      tail -n 30 "$LOG_DIR/process_$i.log" >&2 || true
    fi
    stop_all
    wait || true
    status=$rc
    break
  fi
done
exit $status
