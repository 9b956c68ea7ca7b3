#!/usr/bin/env bash
# Quality per CPU-minute: every network trained on sr291 for the same wall-clock budget, then evaluated
# on Set5, Set14, BSD100 and Urban100 (x4, the papers' protocol).
#
#   SRLAB_DATA_DIR=../shared/datasets bash benchmarks/quality_per_minute.sh            # 10 minutes each
#   BUDGET=30 MODELS="espcn fsrcnn" bash benchmarks/quality_per_minute.sh               # the 30-minute targets
#   python benchmarks/quality_table.py                                                   # the table
#
# Two networks train at a time, one thread (one core) each, so every network gets the same compute: one
# core for BUDGET minutes (EDSR-baseline: 44 s per 30 steps on one thread, 25 s on two, so two one-thread
# jobs do 1.14x the work of one two-thread job; BENCHMARKS.md, "Training defaults on 2 cores").
# Each job trains, then evaluates its final weights (speed is benchmarks/inference_speed.py's job).
# SRGAN (SRGAN-MSE: pixel MSE + 1e-3 adversarial; no VGG weights offline) starts from the SRResNet of the
# same budget, so it runs after srresnet in the same queue.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${BUDGET:-10}
MODELS=${MODELS:-"espcn fsrcnn srcnn vdsr edsr_baseline rdn srresnet srgan"}
SLOTS=${SLOTS:-2}
EVAL_LIMIT=${EVAL_LIMIT:-null}    # first N images of each set for the slowest networks (null: all)
export SRLAB_DATA_DIR=${SRLAB_DATA_DIR:-../shared/datasets}

patch_size() {  # LR patch: the networks that run at HR resolution train on the papers' ~33-41 px HR patches
  case $1 in srcnn) echo 8 ;; vdsr) echo 10 ;; *) echo 24 ;; esac
}

run_one() {
  local model=$1 extra=() out=outputs/budget_${BUDGET}m
  if [[ $model == srgan ]]; then
    extra=(model.content_weight=0 model.pixel_weight=1 "model.init_from=$out/srresnet_x4_adam_prelu_none/checkpoints/final.ckpt")
  fi
  python train.py experiment=budget model="$model" budget_minutes="$BUDGET" threads=1 \
    data.patch_size="$(patch_size "$model")" "${extra[@]}" > "$out.$model.log" 2>&1
  local ckpt
  ckpt=$(ls "$out"/"$model"_x4_*/checkpoints/final.ckpt)
  python evaluate.py ckpt_path="$ckpt" threads=1 eval.speed=false eval.limit="$EVAL_LIMIT" \
    eval.output=results/budget_${BUDGET}m/"$model" >> "$out.$model.log" 2>&1
  echo "$(date -Is) $model done: $ckpt"
}

mkdir -p outputs
queue=()
for model in $MODELS; do queue+=("$model"); done
# srresnet and srgan share a queue (srgan needs srresnet's weights); the others are dealt round-robin.
pids=()
for ((slot = 0; slot < SLOTS; slot++)); do
  (
    i=0
    for model in "${queue[@]}"; do
      if [[ $model == srgan ]]; then continue; fi
      if ((i % SLOTS == slot)); then
        run_one "$model"
        if [[ $model == srresnet && " ${queue[*]} " == *" srgan "* ]]; then run_one srgan; fi
      fi
      i=$((i + 1))
    done
  ) &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
