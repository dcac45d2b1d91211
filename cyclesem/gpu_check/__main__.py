"""Check a GPU machine: the GPU path's training runs and benchmarks, one JSON of what passed and how fast.

    python -m cyclesem.gpu_check                  # one GPU, at most 8 minutes; writes experiments/gpu/<gpu>_<date>.json
    python -m cyclesem.gpu_check checks=[bench]   # a subset
    python -m cyclesem.gpu_check mode=cpu         # the same checks at tiny sizes on the CPU (the test suite runs it)

The checks (conf/gpu_check.yaml sizes them per mode), each in this process, isolated: a failure is recorded
with its one-line error and where in cyclesem it was raised, and the next check runs.

    fast_run       trainer=gpu (bf16-mixed) with channels_last on the synthetic pair: val, test, checkpoints,
                   then one more epoch resumed from last.ckpt
    ddp            trainer=ddp trainer.devices=1 (NCCL, SyncBatchNorm, find_unused_parameters), once with the
                   fused classifier path (joint) and once with the frozen one (with its pre-training stage)
    full_scale     +experiment=full_scale (CycleGAN-size networks, 512×512 crops, batch 1) for ~300 batches on
                   GTA5- and Cityscapes-size frames written to the work dir (cyclesem.bench.loader)
    bench          the training-step benchmark (cyclesem.bench) at full scale, as a fraction of this GPU's
                   measured bf16 matmul rate, with peak GPU memory
    bench_compile  the same with compile=true

The training runs are `cyclesem.train.train` on composed configs (each check's JSON entry lists the
equivalent commands) with a `cyclesem.bench.probe.TrainingProbe` callback for step times, peak memory, the last
losses and what the strategy set up. The exit status is 1 when a check failed, 2 when the command could not
start (mode=gpu without a CUDA device, a bad option).
"""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cyclesem.gpu_check.run import run_checks
from cyclesem.runtime.config import CONF_DIR
from cyclesem.runtime.errors import exit_on_user_error


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="gpu_check")
def main(cfg: DictConfig) -> None:
    command = " ".join(["python -m cyclesem.gpu_check", *HydraConfig.get().overrides.task])
    with exit_on_user_error():  # StartError (no CUDA device in mode=gpu, …): one line, exit 2
        record, path = run_checks(cfg, command)
    width = max(len(name) for name in record["checks"])
    for name, check in record["checks"].items():
        print(f"{name:<{width}}  {check['status']:<7}  {check['wall_time_s'] or 0:>6.1f} s  {check['error'] or ''}")
    print(f"gpu_check: {path} ({record['wall_time_s']} s)")
    if not record["passed"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
