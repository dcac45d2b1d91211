"""Collect a sweep or a study into results.csv, groups.csv, efficiency.json, summary.md and curves.png.

    python -m cyclesem.report experiments/real_frac_study            (a study folder: runs/*.json records)
    python -m cyclesem.report multirun/2025-01-01/12-00-00-000000 [--metric fwIoU] [--wandb | --no-wandb]
    python -m cyclesem.report multirun/semantic_variants --group-by semantic_classifier --method joint --baseline none

Every job is listed: a job whose metrics.json says "failed", is unreadable, or is absent (crashed hard or still
running) appears as failed/missing and is never averaged in. Scores are the test scores (the held-out test
split), else the val scores, as fractions in the CSVs and JSON and percent elsewhere. Per (method, real_frac):
n, mean, std and the 95 % t-interval over seeds; per fraction the paired difference of the method against
baseline, target_only and cyclegan (same seed = same labelled subset); the data-efficiency estimate with a
bootstrap CI over seeds, or "not reached" / "not resolved".
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cyclesem.report.tables import HEADLINE
from cyclesem.report.types import ReportError
from cyclesem.report.write import write_report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cyclesem.report", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a Hydra multirun directory of cyclesem.train jobs, or a study "
                                                      "folder with runs/*.json job records")
    parser.add_argument("--metric", default="mIoU", choices=HEADLINE,
                        help="the primary score: paired differences and the data-efficiency estimate")
    parser.add_argument("--method", default="cyclesem", help="the method whose data saving is measured")
    parser.add_argument("--baseline", default="baseline", help="the method it is compared against")
    parser.add_argument("--group-by", default="method", metavar="FIELD[,FIELD]",
                        help="the metrics.json field(s) that name a job's method (default: method = cyclesem or "
                             "baseline; semantic_classifier compares the variants joint/ema/frozen/none; "
                             "method,class_weights gives cyclesem/median, baseline/none, …)")
    logging = parser.add_mutually_exclusive_group()
    logging.add_argument("--wandb", dest="use_wandb", action="store_true", default=None,
                         help="start an offline W&B run (group = sweep name) if none is active, and log the report")
    logging.add_argument("--no-wandb", dest="use_wandb", action="store_false", help="never touch W&B")
    args = parser.parse_args(argv)
    try:
        write_report(args.sweep_dir, metric=args.metric, method=args.method, baseline=args.baseline,
                     group_by=args.group_by, use_wandb=args.use_wandb)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
