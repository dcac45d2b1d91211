"""Scoring a module's G_S→T on the paired set outside a Trainer, with the module's own evaluation step: the
evaluate command's translation metrics and the warm-up CycleGAN's curve (`cyclesem.method.warmup_training`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from cyclesem.method.module import CycleSemModule


@torch.no_grad()
def translation_scores(module: CycleSemModule, paired_batches: Iterable[Mapping], device: torch.device) -> dict[str, float]:
    """translation_l1, translation_score and translation_gain of the module's G_S→T over `paired_batches` (the
    paired set's loader, loader 1 of val / test; the score only with a reference). Leaves the module in eval mode
    and its test-stage translation metrics reset, so it can be called again."""
    module.to(device).eval()
    for batch in paired_batches:
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        module.eval_step(batch, 1, module.test_metrics, module.test_translation, module.test_translation_score)
    scores: dict[str, float] = {}
    if module.test_translation.update_count > 0:
        scores["translation_l1"] = float(module.test_translation.compute())
    if module.test_translation_score.update_count > 0:
        scores["translation_score"] = float(module.test_translation_score.compute()["mIoU"])
        if module.reference.has_gain:
            scores["translation_gain"] = module.reference.gain(scores["translation_score"])
    module.test_translation.reset()
    module.test_translation_score.reset()
    return scores
