"""The report's types: one job's result, one (method, real fraction) group of them, and the report's error."""

from __future__ import annotations

from dataclasses import dataclass, field


class ReportError(ValueError):
    """The sweep directory cannot be reported on (absent, or holds no job directories)."""


@dataclass
class JobResult:
    job: str                      # directory name, "<n>_<override_dirname>"
    status: str                   # "completed" | "failed" | "missing"
    method: str | None
    real_frac: float | None
    seed: int | None
    split: str | None = None      # which scores were used: "test", or "val" when the job did not test
    scores: dict[str, float] = field(default_factory=dict)
    wall_time_s: float | None = None
    error: str | None = None


@dataclass
class GroupSummary:
    """Completed seeds of one method at one real fraction: mean, sample std (None for one seed), min, max, the
    95 % t-interval of the mean (None for one seed), and each seed's score (for paired differences)."""

    method: str
    real_frac: float
    n: int
    seeds: list[int]
    mean: dict[str, float]
    std: dict[str, float | None]
    low: dict[str, float]
    high: dict[str, float]
    ci_low: dict[str, float | None] = field(default_factory=dict)
    ci_high: dict[str, float | None] = field(default_factory=dict)
    by_seed: dict[str, dict[int, float]] = field(default_factory=dict)
