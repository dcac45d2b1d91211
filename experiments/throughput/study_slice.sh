#!/usr/bin/env bash
# The same 4-job slice (baseline, 10 % and 50 % real, seeds 0 and 1, 400 batches each) through the sequential
# launcher with 2 threads per job, then side by side with 1 thread per job; wall time of each sweep.
# METHOD=cyclesem runs the same slice with cyclesem jobs (the joint step).
set -e
cd "$(dirname "$0")/../.."
COMMON="method=${METHOD:-baseline} data.real_frac=0.1,0.5 seed=0,1 trainer.max_epochs=8 trainer.check_val_every_n_epoch=8 model.class_weights=median logger=none "
export WANDB_MODE=disabled
mkdir -p "${OUT:-/tmp/tp}"
s=$(date +%s.%N); .venv/bin/python -m cyclesem.train -m $COMMON threads=2 hydra.sweep.dir=${OUT:-/tmp/tp}/sequential > ${OUT:-/tmp/tp}/sequential.log 2>&1; e=$(date +%s.%N)
echo "sequential threads=2: $(echo "$e - $s" | bc) s"
s=$(date +%s.%N); .venv/bin/python -m cyclesem.train -m $COMMON threads=1 hydra/launcher=side_by_side hydra.sweep.dir=${OUT:-/tmp/tp}/side_by_side > ${OUT:-/tmp/tp}/side_by_side.log 2>&1; e=$(date +%s.%N)
echo "side_by_side threads=1: $(echo "$e - $s" | bc) s"
