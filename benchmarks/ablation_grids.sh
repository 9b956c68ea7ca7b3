#!/usr/bin/env bash
# The seed study's three ablation grids (optimizer, activation, pruning) on the three fastest networks,
# each run trained on sr291 for GRID_BUDGET minutes (experiment=budget), then the report.
#
#   SRLAB_DATA_DIR=../shared/datasets bash benchmarks/ablation_grids.sh        # 1 minute per run
#   python -m srlab.report multirun/grids_1m --out docs/grids                  # (the script runs it)
#
# Two sweeps run at a time, one thread each (as benchmarks/quality_per_minute.sh). PSNR in the report
# is each run's validation PSNR on Set5 (centre 256 px crops), enough to rank the grid's values.
set -euo pipefail
cd "$(dirname "$0")/.."
GRID_BUDGET=${GRID_BUDGET:-1}
MODELS=${MODELS:-"espcn fsrcnn srcnn"}
export SRLAB_DATA_DIR=${SRLAB_DATA_DIR:-../shared/datasets}
out=multirun/grids_${GRID_BUDGET}m

patch_size() { case $1 in srcnn) echo 8 ;; vdsr) echo 10 ;; *) echo 24 ;; esac; }

sweep() {  # grid name, then the sweep overrides
  local grid=$1; shift
  for model in $MODELS; do
    python train.py -m experiment=budget budget_minutes="$GRID_BUDGET" model="$model" threads=1 \
      data.patch_size="$(patch_size "$model")" group="grid_$grid" "$@" \
      hydra.sweep.dir="$out/${grid}_$model" > "$out.${grid}_$model.log" 2>&1
    echo "$(date -Is) $grid $model done"
  done
}

mkdir -p multirun
( sweep optimizer optimizer=sgd,adam,rmsprop; sweep pruning pruning=none,random_unstructured,l1_unstructured ) &
first=$!
sweep activation model.net.activation=relu,tanh,leaky_relu,elu,sigmoid
wait "$first"
python -m srlab.report "$out" --out "$out/report"
