"""Training-step benchmark: seconds, images/s, FLOPs and achieved FLOP rate of CycleSemModule's step.

    python -m cyclesem.bench [height=256 width=256 batch_size=2 variants=[joint,naive] precision=bf16 ...]
    python -m cyclesem.bench compile=true [compile_mode=max-autotune]   # torch.compile every network

For each variant (see cyclesem/bench/steps.py: joint, cyclegan, naive) in its own spawned process:
median and IQR of the step time after warm-up, FLOPs of one step (forward + backward, FlopCounterMode),
the segmenter's share of them, achieved GFLOP/s against this machine's measured matmul rate, the
process's peak RSS, and the untimed warm-up's seconds (with ``compile=true`` they include torch.compile's
compilation). Then the data loader's images/s per worker on full-size Cityscapes-layout frames.
Prints a table and writes JSON (``output=...``, default ``<run dir>/bench.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cyclesem.bench.run import benchmark
from cyclesem.runtime.config import CONF_DIR
from cyclesem.runtime.errors import exit_on_user_error


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="bench")
def main(cfg: DictConfig) -> dict[str, Any]:
    output = Path(cfg.output) if cfg.output else Path(HydraConfig.get().runtime.output_dir) / "bench.json"
    with exit_on_user_error():  # bad knobs: a variant name, precision, sizes the networks cannot take
        return benchmark(cfg, output)


if __name__ == "__main__":
    main()
