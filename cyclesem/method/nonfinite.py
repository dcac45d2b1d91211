"""Training steps with non-finite losses: skipped without a trace in the networks, counted, and the run stopped
after too many in a row.

A group whose loss is not finite takes no optimizer step. Its forwards ran before the loss could be checked,
though, and a forward in train mode moves BatchNorm running statistics (F_T's, in the generators' fused source
term and in the segmenter step): one NaN batch would leave NaN statistics for the rest of the run, and the ``ema``
copy would inherit them at its next update. So every buffer is snapshotted before the step and the skipped
group's networks get theirs back (`BufferSnapshot`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BufferSnapshot:
    """The buffers of `networks` (BatchNorm running statistics and batch counters) as they were when taken."""

    def __init__(self, *networks: nn.Module | None) -> None:
        self._saved = {id(net): [b.detach().clone() for b in net.buffers()] for net in networks if net is not None}

    def restore(self, *networks: nn.Module | None) -> None:
        """Put back the buffers of `networks` (each one snapshotted)."""
        for net in networks:
            if net is not None:
                for buffer, saved in zip(net.buffers(), self._saved[id(net)], strict=True):
                    buffer.copy_(saved)


class NonfiniteSteps:
    """Counts training steps in which some group skipped its update; raises after `limit` in a row."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = self.total = 0

    def count(self, skipped: bool, logs: dict[str, Tensor], device: torch.device) -> None:
        """Record this step; adds ``nonfinite_steps`` (the run's total so far) to `logs`, on `device`, the
        losses' (`EpochMeans` stacks them: a CPU scalar beside CUDA losses breaks the step)."""
        self.in_a_row = self.in_a_row + 1 if skipped else 0
        self.total += int(skipped)
        logs["nonfinite_steps"] = torch.tensor(float(self.total), device=device)
        if self.in_a_row >= self.limit:
            raise FloatingPointError(
                f"non-finite losses in {self.in_a_row} consecutive training steps "
                f"(model.max_nonfinite_steps={self.limit}); last losses: "
                + ", ".join(f"{k}={v.item():.4g}" for k, v in logs.items())
                + ". Lower the learning rates or set model.gradient_clip_val."
            )

    def state_dict(self) -> dict[str, int]:
        return {"in_a_row": self.in_a_row, "total": self.total}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.in_a_row, self.total = state["in_a_row"], state["total"]
