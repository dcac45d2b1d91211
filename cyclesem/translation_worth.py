"""What translation is worth per synthetic pair: paired differences of test mIoU against the pair's source-only ratio.

    python -m cyclesem.translation_worth --pair experiments/real_frac_study:1.0:cyclesem \
        --pair experiments/domain_gap/gap_study:0.25:cyclesem_warm \
        --calibration experiments/domain_gap/calibration --output experiments/domain_gap/worth

Per pair (FOLDER:PALETTE_SHIFT[:METHOD], METHOD = M, default cyclesem) at 5 % and 10 % real: oracle − baseline,
M − baseline and M − target_only, each a paired difference over the seeds both sides share with its 95 %
t-interval (one shared seed: the value alone, a pilot; a side not run: a row marked missing). The x axis is the
pair's source-only ratio, baseline at 0 % / target_only at 100 % test mIoU: the --calibration table's
(ratio.csv of `python -m cyclesem.report ... --ratio baseline@0:target_only@1`) at the pair's palette shift, else
the pair's own records'. Writes translation_worth.csv (differences as fractions) and translation_worth.png into
--output and prints the table (points). See docs/domain_gap.md#what-translation-is-worth-per-pair.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from cyclesem.report.plot import plot_translation_worth
from cyclesem.report.translation_worth import PairSpec, print_worth, translation_worth, write_worth_csv
from cyclesem.report.types import ReportError
from cyclesem.runtime.errors import exit_on_user_error


def _pair(text: str) -> PairSpec:
    try:
        return PairSpec.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def write_translation_worth(pairs: Sequence[PairSpec], calibration: Path | None, output: Path,
                            console: Console | None = None) -> dict[str, Path]:
    """Read every pair first (an error leaves nothing written), then write the CSV and the figure into ``output``
    and print the table."""
    rows = translation_worth(pairs, calibration)
    if output.exists() and not output.is_dir():
        raise ReportError(f"--output {output} is a file; expected a folder for translation_worth.csv and .png")
    output.mkdir(parents=True, exist_ok=True)
    paths = {"csv": write_worth_csv(rows, output / "translation_worth.csv"),
             "png": plot_translation_worth(rows, output / "translation_worth.png")}
    console = console or Console()
    print_worth(console, rows)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()), markup=False, soft_wrap=True)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cyclesem.translation_worth", description=__doc__.split("\n")[0])
    parser.add_argument("--pair", action="append", required=True, type=_pair, metavar="FOLDER:PALETTE_SHIFT[:METHOD]",
                        help="a study folder (runs/*.json), the palette shift of its pair (only its records at that "
                             "shift are read) and the translation method M (default cyclesem), e.g. "
                             "experiments/domain_gap/gap_study:0.25:cyclesem_warm (repeatable: one per pair)")
    parser.add_argument("--calibration", type=Path, default=None, metavar="DIR",
                        help="a folder with ratio.csv (or the file) of the gap calibration, e.g. "
                             "experiments/domain_gap/calibration: the pairs' source-only ratios; a shift it lacks "
                             "is computed from the pair's own baseline at 0 %% and target_only at 100 %%")
    parser.add_argument("--output", type=Path, required=True, metavar="DIR",
                        help="the folder translation_worth.csv and translation_worth.png are written into")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        write_translation_worth(args.pair, args.calibration, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
