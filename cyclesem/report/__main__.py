"""Collect a sweep or a study into results.csv, groups.csv, efficiency.json, summary.md and curves.png.

    python -m cyclesem.report experiments/real_frac_study            (a study folder: runs/*.json records)
    python -m cyclesem.report multirun/2025-01-01/12-00-00-000000 [--metric fwIoU] [--wandb | --no-wandb]
    python -m cyclesem.report multirun/semantic_variants --group-by semantic_classifier --method joint --baseline none

Every job is listed: a job whose metrics.json says "failed", is unreadable, or is absent (crashed hard or still
running) appears as failed/missing and is never averaged in. Scores are the test scores (the held-out test
split), else the val scores, as fractions in the CSVs and JSON and percent elsewhere. Per (method, real_frac):
n, mean, std and the 95 % t-interval over seeds; per fraction the paired difference of --method against
--baseline and against baseline, target_only and cyclegan (same seed = same labelled subset); the
data-efficiency estimate with a bootstrap CI over seeds, or "not reached" / "not resolved".

--include OTHER_STUDY (repeatable) adds the job records of other study folders (read only; the files are still
written into the first folder); a job record in two folders is an error. --group-by reads each field from the
record, else from its overrides (``model.loss.seg_source_rule=anneal`` → anneal), else the default
(MethodOptions for model options, conf/data/ for data settings): the main study's records, run with the
defaults, form the control arm of each open question (docs/study.md#extending-a-study-the-open-questions):

    # 1. the stylized images' CE weight: anneal / labelled_share against the study's constant
    python -m cyclesem.train -m +experiment=real_frac_study method=cyclesem data.real_frac=0.1,0.3 seed=0,1,2 \
        model.loss.seg_source_rule=anneal,labelled_share study.dir=experiments/real_frac_study/questions/seg_source_rule \
        logger=csv resume_sweep=true
    python -m cyclesem.report experiments/real_frac_study/questions/seg_source_rule \
        --include experiments/real_frac_study --group-by method,seg_source_rule \
        --method cyclesem/anneal --baseline cyclesem/constant --compare cyclesem/anneal:target_only/constant
    # 2. class weights: none against the study's median, for cyclesem and the baseline
    python -m cyclesem.train -m +experiment=real_frac_study method=cyclesem,baseline data.real_frac=0.1 seed=0,1,2 \
        model.class_weights=none study.dir=experiments/real_frac_study/questions/class_weights logger=csv resume_sweep=true
    python -m cyclesem.report experiments/real_frac_study/questions/class_weights \
        --include experiments/real_frac_study --group-by method,class_weights \
        --method cyclesem/none --baseline cyclesem/median --compare baseline/none:baseline/median
    # 3. pavement scenes in the source: a pair with 30 % pavement scenes, trained on all of them or without them
    #    (render the pair and build its reference once first: python -m cyclesem.reference data.prepare.pavement_share=0.3)
    python -m cyclesem.train -m +experiment=real_frac_study method=cyclesem,baseline data.real_frac=0.1 seed=0,1,2 \
        data.prepare.pavement_share=0.3 data.source_filter=none,pavement \
        study.dir=experiments/real_frac_study/questions/pavement logger=csv resume_sweep=true
    python -m cyclesem.report experiments/real_frac_study/questions/pavement \
        --include experiments/real_frac_study --group-by method,pavement_share,source_filter \
        --method cyclesem/0.3/pavement --baseline cyclesem/0.3/none

The domain gap per palette shift (``--ratio``, cyclesem/report/ratio.py; docs/domain_gap.md): source-only over
target-only mIoU with a 95 % CI, into ratio.csv, efficiency.json and summary.md:

    python -m cyclesem.train -m +experiment=gap_calibration
    python -m cyclesem.report experiments/domain_gap/calibration --group-by method,palette_shift \
        --ratio baseline@0:target_only@1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cyclesem.report.ratio import RatioSpec
from cyclesem.report.tables import HEADLINE
from cyclesem.report.write import write_report
from cyclesem.runtime.errors import exit_on_user_error


def _pair(text: str) -> tuple[str, str]:
    """METHOD:OTHER → (METHOD, OTHER); group names never hold a colon."""
    parts = text.split(":")
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not METHOD:OTHER (two group names, e.g. "
                                         "baseline/none:baseline/median)")
    return parts[0], parts[1]


def _ratio(text: str) -> RatioSpec:
    try:
        return RatioSpec.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cyclesem.report", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a Hydra multirun directory of cyclesem.train jobs, or a study "
                                                      "folder with runs/*.json job records")
    parser.add_argument("--metric", default="mIoU", choices=HEADLINE,
                        help="the primary score: paired differences and the data-efficiency estimate")
    parser.add_argument("--method", default="cyclesem", help="the method whose data saving is measured")
    parser.add_argument("--baseline", default="baseline", help="the method it is compared against")
    parser.add_argument("--group-by", default="method", metavar="FIELD[,FIELD]",
                        help="the record field(s) that name a job's method (default: method = cyclesem or "
                             "baseline; semantic_classifier compares the variants joint/ema/frozen/none; "
                             "method,class_weights gives cyclesem/median, baseline/none, …); a field the record "
                             "lacks comes from its overrides, else the option's default")
    parser.add_argument("--compare", action="append", default=[], type=_pair, metavar="METHOD:OTHER",
                        help="another paired difference METHOD − OTHER to report at every shared fraction "
                             "(repeatable), e.g. baseline/none:baseline/median for an open question's second arm")
    parser.add_argument("--ratio", action="append", default=[], type=_ratio, metavar="NUM@F:DEN@G",
                        help="the ratio of NUM's score at real fraction F to DEN's at G per setting (the --group-by "
                             "values after the first), with a delta-method 95 %% CI (repeatable), e.g. "
                             "--group-by method,palette_shift --ratio baseline@0:target_only@1: source-only / "
                             "target-only per palette shift (docs/domain_gap.md)")
    parser.add_argument("--efficiency-against", action="append", default=[], metavar="OTHER",
                        help="another method whose curve the data-efficiency estimate is also read against "
                             "(repeatable), e.g. target_only: the real share at which the real images alone match "
                             "--method")
    parser.add_argument("--include", action="append", default=[], type=Path, metavar="OTHER_STUDY",
                        help="another study folder whose runs/*.json records join the report (read only; "
                             "repeatable); the outputs are still written into sweep_dir only")
    logging = parser.add_mutually_exclusive_group()
    logging.add_argument("--wandb", dest="use_wandb", action="store_true", default=None,
                         help="start an offline W&B run (group = sweep name) if none is active, and log the report")
    logging.add_argument("--no-wandb", dest="use_wandb", action="store_false", help="never touch W&B")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        write_report(args.sweep_dir, metric=args.metric, method=args.method, baseline=args.baseline,
                     group_by=args.group_by, use_wandb=args.use_wandb, include=args.include,
                     compare=args.compare, ratios=args.ratio, efficiency_against=args.efficiency_against)
    return 0


if __name__ == "__main__":
    sys.exit(main())
