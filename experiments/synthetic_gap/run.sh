#!/usr/bin/env bash
# The size of the synthetic domain gap, the value of real labels and the ceiling of pixel-level adaptation.
# Run from the repository root:  bash experiments/synthetic_gap/run.sh   (OUT=... to change the output dir)
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-multirun/synthetic_gap}
export WANDB_MODE=${WANDB_MODE:-disabled}
train() { "$PY" -m cyclesem.train model=baseline logger=csv "$@"; }

# source-only (0 % real) and target-only (100 % real) at N = 200
train data.real_frac=0.0 hydra.run.dir="$OUT/source_only"
train data.real_frac=1.0 hydra.run.dir="$OUT/target_only"
# "perfect translation": the source scenes rendered in the target style, with the source labels
train data.real_frac=0.0 'data.source.root=${data.prepare.root}/gta5_as_cityscapes' hydra.run.dir="$OUT/perfect_translation"
# target-only learning curve at 10 / 30 / 50 / 100 % of N, with about the same number of steps (≈400) each
for spec in 20:80 60:27 100:16 200:8; do
  n=${spec%%:*}; epochs=${spec##*:}
  train data.real_frac=1.0 data.num_labeled="$n" trainer.max_epochs="$epochs" hydra.run.dir="$OUT/target_n$n"
done
"$PY" experiments/synthetic_gap/collect.py "$OUT" experiments/synthetic_gap
