#!/usr/bin/env bash
# The size of the synthetic domain gap, the value of real labels and the ceiling of pixel-level adaptation.
# Run from the repository root:  bash experiments/synthetic_gap/run.sh   (OUT=... to change the output dir)
# Every run: model=baseline (the U-Net alone), median-frequency class weights, ≈ STEPS optimizer steps.
# STEPS=400 WEIGHTS=none reproduces the first protocol (results_v1.*).
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-multirun/synthetic_gap}
STEPS=${STEPS:-2400}
WEIGHTS=${WEIGHTS:-median}
export WANDB_MODE=${WANDB_MODE:-disabled}
train() {  # train N DIR [overrides…]: ≈ STEPS steps of batch 4 whatever N, validation 6 times
  local n=$1 dir=$2; shift 2
  local epochs=$(( STEPS / ((n + 3) / 4) ))
  local every=$(( epochs / 6 > 0 ? epochs / 6 : 1 ))
  "$PY" -m cyclesem.train model=baseline logger=csv model.class_weights="$WEIGHTS" data.num_labeled="$n" \
    trainer.max_epochs="$epochs" trainer.check_val_every_n_epoch="$every" hydra.run.dir="$OUT/$dir" "$@"
}

# source-only (0 % real) and target-only (100 % real) at N = 200
train 200 source_only data.real_frac=0.0
train 200 target_only data.real_frac=1.0
# "perfect translation": the source scenes rendered in the target style, with the source labels
train 200 perfect_translation data.real_frac=0.0 'data.source.root=${data.prepare.root}/gta5_as_cityscapes'
# target-only learning curve at 10 / 30 / 50 % of N (100 % is target_only)
for n in 20 60 100; do
  train "$n" "target_n$n" data.real_frac=1.0
done
"$PY" experiments/synthetic_gap/collect.py "$OUT" experiments/synthetic_gap
