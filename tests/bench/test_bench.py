"""The training-step benchmark on tiny networks: every field, FLOP accounting across the variants,
per-variant processes, and the loader measurement on Cityscapes-layout frames."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from cyclesem.bench.run import benchmark, settings_from_config
from cyclesem.bench.steps import build_module, joint_step, make_batch, variant_named
from tests.conftest import REPO, compose_config

TINY = ["height=32", "width=32", "batch_size=1", "ngf=4", "n_blocks=1", "ndf=4", "seg_base_channels=4",
        "seg_depth=2", "warmup=1", "steps=2", "matmul_size=128", "device=cpu", "threads=1"]
VARIANT_FIELDS = ("seconds_per_step_median", "images_per_second", "flops_per_step", "achieved_gflops",
                  "matmul_fraction", "peak_rss_mb")


def run_bench(tmp_path, overrides: list[str]) -> dict:
    cfg = compose_config("bench", [*TINY, *overrides], tmp_path)
    return benchmark(cfg, tmp_path / "bench.json")


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("bench")
    record = run_bench(tmp_path, ["isolate=false", "loader_images=1", "loader_size=[64,128]"])
    return record, tmp_path / "bench.json"


def test_every_variant_reports_positive_finite_figures(in_process):
    record, path = in_process
    assert json.loads(path.read_text()) == record  # the file holds exactly what was returned
    assert list(record["variants"]) == ["joint", "cyclegan", "naive"]
    for name, variant in record["variants"].items():
        for field in VARIANT_FIELDS:
            assert math.isfinite(variant[field]) and variant[field] > 0, (name, field, variant[field])
        assert variant["seconds_per_step_iqr"] >= 0 and len(variant["seconds_per_step"]) == 2
        assert min(variant["seconds_per_step"]) <= variant["seconds_per_step_median"] <= max(variant["seconds_per_step"])
    machine = record["machine"]
    assert machine["matmul_gflops"] > 0 and machine["num_threads"] == 1 and machine["cpu_model"]
    assert machine["device"] == "cpu" and machine["torch_version"]


def test_flops_order_and_segmenter_share(in_process):
    variants = in_process[0]["variants"]
    joint, cyclegan, naive = variants["joint"], variants["cyclegan"], variants["naive"]
    assert naive["flops_per_step"] > joint["flops_per_step"] > cyclegan["flops_per_step"]
    # the joint step is the CycleGAN step plus the segmenter's work, exactly: the replayed count agrees
    assert joint["flops_per_step"] - cyclegan["flops_per_step"] == joint["segmenter_flops_per_step"]
    assert cyclegan["segmenter_flops_per_step"] == 0 and cyclegan["segmenter_flop_share"] == 0
    for variant in (joint, naive):
        assert 0 < variant["segmenter_flop_share"] < 1
    # naive: an extra segmenter forward (no fusion) and two extra generator forwards (no fake reuse)
    assert naive["segmenter_flops_per_step"] > joint["segmenter_flops_per_step"]
    assert naive["flops_per_step"] - naive["segmenter_flops_per_step"] > cyclegan["flops_per_step"]


def test_flops_are_counted_per_image(in_process, tmp_path):
    """Measured, not echoed: twice the images per step is twice the FLOPs (convolutions dominate), and the
    segmenter's share does not depend on the batch."""
    one = in_process[0]["variants"]["joint"]
    two = run_bench(tmp_path, ["variants=[joint]", "isolate=false", "loader_images=0", "batch_size=2"])
    two = two["variants"]["joint"]
    assert two["flops_per_step"] == pytest.approx(2 * one["flops_per_step"], rel=0.01)
    assert two["segmenter_flop_share"] == pytest.approx(one["segmenter_flop_share"], rel=0.01)


def test_optimizers_come_from_the_model_config_and_step(in_process):
    """The benchmarked step uses conf/model/cyclesem.yaml's optimizers, and they move the networks."""
    config = in_process[0]["config"]
    assert config["optimizer_g"]["lr"] == 2e-4 and config["optimizer_seg"]["lr"] == 1e-3
    settings = settings_from_config(compose_config("bench", TINY), torch.device("cpu"))
    module, batch = build_module(settings, variant_named("joint")), make_batch(settings)
    before = [p.detach().clone() for p in module.parameters()]
    joint_step(module, batch)
    moved = [not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True)]
    assert sum(moved) > len(moved) // 2


def test_loader_is_reported(in_process):
    record = in_process[0]
    loader = record["loader"]
    assert loader["images"] == 1 and loader["size"] == [64, 128]
    assert loader["output_size"] == [512, 512]  # conf/data/gta5_cityscapes.yaml: resize 512×1024, crop 512
    assert loader["images_per_second_per_worker"] > 0 and loader["image_png_mb"] > 0


def test_isolated_variant_runs_in_its_own_process_with_the_same_flops(in_process, tmp_path):
    record = run_bench(tmp_path, ["variants=[joint]", "loader_images=0", "channels_last=true", "precision=bf16"])
    joint = record["variants"]["joint"]
    assert record["peak_rss_isolated"] and joint["process_id"] != os.getpid()
    assert joint["peak_rss_mb"] > 0 and joint["peak_rss_increase_mb"] >= 0
    # FLOPs depend on shapes only, not on dtype or memory layout
    assert joint["flops_per_step"] == in_process[0]["variants"]["joint"]["flops_per_step"]
    assert record["machine"]["matmul_dtype"] == "bfloat16" and record["loader"] is None
    assert set(record["targets"]) == {"joint_matmul_fraction", "joint_matmul_fraction_min",
                                      "joint_matmul_fraction_met"}


# inductor compiles the networks on the CPU: 150 s with an empty inductor cache (2-core VM, loaded), 9 s warm
@pytest.mark.slow
def test_compiled_networks_compile_in_the_warmup_and_count_the_same_flops(in_process, tmp_path, fresh_dynamo):
    """compile=true: every network goes through torch.compile, the compilation lands in the untimed warm-up
    step (the timed step would fail on a recompile), and the FLOPs, counted eagerly, equal the uncompiled run's."""
    record = run_bench(tmp_path, ["variants=[joint]", "isolate=false", "loader_images=0", "steps=1", "compile=true"])
    joint = record["variants"]["joint"]
    assert record["config"]["compile"] is True and record["config"]["compile_mode"] is None
    assert joint["compiled"] is True and not in_process[0]["variants"]["joint"]["compiled"]
    assert len(joint["seconds_per_step"]) == 1 and len(joint["warmup_seconds"]) == 1
    assert math.isfinite(joint["seconds_per_step_median"]) and joint["seconds_per_step_median"] > 0
    # the warm-up step compiled: far slower than the compiled step it prepared
    assert joint["warmup_seconds_total"] > 10 * joint["seconds_per_step_median"]
    uncompiled = in_process[0]["variants"]["joint"]
    assert joint["flops_per_step"] == uncompiled["flops_per_step"]
    assert joint["segmenter_flops_per_step"] == uncompiled["segmenter_flops_per_step"]


@pytest.mark.parametrize("overrides,message", [
    (["compile=true", "warmup=0"], "compile=true needs warmup >= 1"),
    (["compile=true", "compile_mode=fastest"], "compile_mode='fastest' is not null or one of"),
])
def test_compile_settings_are_checked_before_any_work(overrides, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        run_bench(tmp_path, ["isolate=false", *overrides])
    assert not (tmp_path / "bench.json").exists()


def test_unknown_variant_is_rejected_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark variant 'fused'"):
        run_bench(tmp_path, ["variants=[joint,fused]", "isolate=false"])
    assert not (tmp_path / "bench.json").exists()


def test_cli_composes_its_config():
    """``python -m cyclesem.bench`` finds conf/ from inside its subpackage (prints the job config and exits)."""
    proc = subprocess.run([sys.executable, "-m", "cyclesem.bench", "--cfg", "job", "steps=3"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "steps: 3" in proc.stdout and "optimizer_g" in proc.stdout
