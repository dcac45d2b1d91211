"""The training-step benchmark's console table: one row per variant, the machine's matmul rate, the targets."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from cyclesem.report.tables import percent


def print_report(record: dict[str, Any]) -> None:
    machine, cfg = record["machine"], record["config"]
    table = Table(title=f"training step, {cfg['height']}×{cfg['width']}, batch {cfg['batch_size']}+"
                        f"{cfg['batch_size']}, ngf {cfg['ngf']}×{cfg['n_blocks']} blocks, ndf {cfg['ndf']}, "
                        f"{cfg['precision']}{', compiled' if cfg['compile'] else ''}, {machine['device']}")
    table.add_column("variant", no_wrap=True)
    # s/step: median (IQR); GFLOP: per step; mm %: achieved / matmul rate; seg %: segmenter share of FLOPs
    for column in ("s/step", "IQR", "img/s", "GFLOP", "GFLOP/s", "mm %", "seg %", "RSS MB"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, v in record["variants"].items():
        table.add_row(name, f"{v['seconds_per_step_median']:.3f}", f"{v['seconds_per_step_iqr']:.3f}",
                      f"{v['images_per_second']:.2f}", f"{v['flops_per_step'] / 1e9:.1f}",
                      f"{v['achieved_gflops']:.1f}", percent(v["matmul_fraction"], digits=0),
                      percent(v["segmenter_flop_share"]), f"{v['peak_rss_mb']:.0f}")
    console = Console()
    console.print(table)
    console.print(f"matmul {machine['matmul_size']}² {machine['matmul_dtype']}: {machine['matmul_gflops']:.1f} "
                  f"GFLOP/s; {machine['num_threads']} threads; {machine['cpu_model']}; "
                  f"torch {machine['torch_version']}")
    # below the table, which fills 80 columns (the width rich gives a pipe, as in experiments/throughput/*.txt)
    console.print(f"warm-up ({cfg['warmup']} untimed steps" + (", compilation included" if cfg["compile"] else "")
                  + "): " + ", ".join(f"{name} {v['warmup_seconds_total']:.1f} s"
                                      for name, v in record["variants"].items()))
    for key, value in record["targets"].items():
        if key.endswith("_met"):
            name = key[: -len("_met")]
            bound = record["targets"].get(f"{name}_max", record["targets"].get(f"{name}_min"))
            console.print(f"{name} = {record['targets'][name]:.3f} (target {bound}): "
                          + ("[green]met" if value else "[red]not met"))
    if record["loader"] is not None:
        loader = record["loader"]
        console.print(f"loader: {loader['images_per_second_per_worker']:.2f} images/s per worker "
                      f"({loader['size'][0]}×{loader['size'][1]} PNG → {loader['output_size'][0]}×"
                      f"{loader['output_size'][1]}, {loader['images']} images)")
