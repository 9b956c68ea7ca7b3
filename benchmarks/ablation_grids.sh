#!/usr/bin/env bash
# The seed study's three ablation grids (optimizer, activation, pruning) on the three fastest networks,
# each run trained on sr291 for GRID_BUDGET minutes (default 0.5; experiment=budget), then the report.
#
#   SRLAB_DATA_DIR=../shared/datasets bash benchmarks/ablation_grids.sh        # 30 s per run
#   GRID_BUDGET=2 PRUNING=none,random_unstructured,l1_unstructured bash benchmarks/ablation_grids.sh
#   GRIDS="activation" REPORT=0 bash benchmarks/ablation_grids.sh               # one grid, no report
#   python -m srlab.report multirun/grids_0.5m --out multirun/grids_0.5m/report  # (the script runs it)
#
# Two sweeps run at a time, one thread each (as benchmarks/quality_per_minute.sh). PSNR in the report
# is each run's validation PSNR on Set5 (centre 256 px crops), enough to rank the grid's values.
set -euo pipefail
cd "$(dirname "$0")/.."
GRID_BUDGET=${GRID_BUDGET:-0.5}
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

grid() {
  case $1 in
    optimizer) sweep optimizer optimizer=sgd,adam,rmsprop ;;
    activation) sweep activation model.net.activation=relu,tanh,leaky_relu,elu,sigmoid ;;
    pruning) sweep pruning pruning="${PRUNING:-none,random_unstructured}" ;;
  esac
}

mkdir -p multirun
if [[ -n ${GRIDS:-} ]]; then  # a subset, one after the other (e.g. to fill a free core)
  for g in $GRIDS; do grid "$g"; done
else
  ( grid optimizer; grid pruning ) &
  first=$!
  grid activation
  wait "$first"
fi
[[ ${REPORT:-1} == 1 ]] && python -m srlab.report "$out" --out "$out/report"
