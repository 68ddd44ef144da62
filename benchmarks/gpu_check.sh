#!/usr/bin/env bash
# The speed issue's GPU check, prepared for a session that is lent a GPU for a few minutes.
#
#   bash benchmarks/gpu_check.sh speed   # benchmarks/speed.py on the GPU (steps + covariance)
#   bash benchmarks/gpu_check.sh train   # one full CIFAR-10-LT IF 100 LCReg run, GPU defaults
#   bash benchmarks/gpu_check.sh all     # both, speed first
#   bash benchmarks/gpu_check.sh queue   # benchmarks/queue.sh for QUEUE_SECONDS (default 300), then
#                                        # the run folders it wrote or resumed as $OUT/queue_results.tar.gz
#
# Needs the CIFAR-10 JPEG archive at $DATA (default data/cifar10-jpeg.tar.gz, git-ignored:
# copy it there and carry it). Uses the machine's own torch and packages, the sources from
# src/ (no install). Everything it writes goes to $OUT (default /tmp/lcreg_gpu) as at most
# six plain files: speed_<gpu>.json, speed.log, train.log, run_<gpu>.tar.gz (the whole run
# folder: config, environment, per-epoch log, final metrics, checkpoints), nvidia-smi.txt.
# A dry run on a CPU: SPEED_ARGS="--compile off --steps 2 --repeats 1 --only steps"
# TRAIN_ARGS="stage1.epochs=1 stage2.epochs=1" bash benchmarks/gpu_check.sh all
set -euo pipefail
what=${1:-all}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/lcreg_gpu}
DATA=${DATA:-$ROOT/data/cifar10-jpeg.tar.gz}
PY=${PY:-python3}
mkdir -p "$OUT"
cd "$ROOT"
(nvidia-smi || echo "no nvidia-smi") > "$OUT/nvidia-smi.txt" 2>&1
tag=$($PY -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')" \
      | tr -c 'A-Za-z0-9_.\n-' '_')

if [[ $what == speed || $what == all ]]; then
  # shellcheck disable=SC2086  # SPEED_ARGS is a list of options
  $PY benchmarks/speed.py --out "$OUT/speed_$tag.json" ${SPEED_ARGS:-} 2>&1 | tee "$OUT/speed.log"
fi

if [[ $what == train || $what == all ]]; then
  run="$OUT/run_$tag"
  rm -rf "$run"
  start=$(date +%s)
  # shellcheck disable=SC2086  # TRAIN_ARGS is a list of key=value overrides
  $PY -m lcreg train cifar10_lt_if100 --data-dir "$DATA" --seed 0 --out "$run" --no-progress \
      ${TRAIN_ARGS:-} 2>&1 | tee "$OUT/train.log"
  echo "wall seconds of the command (start-up included): $(( $(date +%s) - start ))" | tee -a "$OUT/train.log"
  tar czf "$OUT/run_$tag.tar.gz" -C "$OUT" "run_$tag"  # one file: the device tool returns at most 8
  rm -rf "$run"
fi
if [[ $what == queue ]]; then
  touch "$OUT/.queue_start"
  # the queue runs in a process group of its own, stopped whole at the time limit (timeout
  # would stop the shell and leave its training process running); the interrupted run
  # keeps the checkpoint of its last epoch and resumes in the next queue
  # shellcheck disable=SC2086  # QUEUE_ARGS is a list of lcreg train options
  LCREG="$PY -m lcreg" PYTHON="$PY" DATA="$DATA" setsid bash benchmarks/queue.sh ${QUEUE_ARGS:-} > "$OUT/queue.log" 2>&1 &
  queue=$!
  (sleep "${QUEUE_SECONDS:-300}"; kill -TERM -- "-$queue" 2>/dev/null) &
  timer=$!
  status=0; wait "$queue" || status=$?
  kill "$timer" 2>/dev/null || true
  echo "queue ended with status $status (143: stopped at QUEUE_SECONDS)" >> "$OUT/queue.log"
  # run folders: results/<table>/<data>/<run> and results/latent_screen/<run>
  mapfile -t touched < <(
    find results -mindepth 3 -maxdepth 3 -type d -newer "$OUT/.queue_start" -not -path 'results/latent_screen/*'
    find results/latent_screen -mindepth 1 -maxdepth 1 -type d -newer "$OUT/.queue_start" 2>/dev/null
  )
  if (( ${#touched[@]} )); then tar czf "$OUT/queue_results.tar.gz" "${touched[@]}"; fi
  rm -f "$OUT/.queue_start"
  tail -20 "$OUT/queue.log"
fi
ls -l "$OUT"
