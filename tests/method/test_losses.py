import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cyclesem.method.losses import (
    class_weights_from_counts,
    cycle_loss,
    discriminator_loss,
    gan_loss,
    identity_loss,
    semantic_loss,
)

PRED = torch.tensor([0.0, 0.5, 1.0, 2.0])


def test_lsgan_is_mse_to_one_or_zero():
    assert gan_loss(PRED, True).item() == pytest.approx((1 + 0.25 + 0 + 1) / 4)
    assert gan_loss(PRED, False, "lsgan").item() == pytest.approx((0 + 0.25 + 1 + 4) / 4)


def test_vanilla_is_bce_with_logits():
    logits = torch.tensor([0.0, 2.0])
    real = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    fake = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert gan_loss(logits, True, "vanilla").item() == pytest.approx(real, rel=1e-6)
    assert gan_loss(logits, False, "vanilla").item() == pytest.approx(fake, rel=1e-6)


def test_unknown_gan_mode_names_allowed_values():
    with pytest.raises(ValueError, match="lsgan.*vanilla"):
        gan_loss(PRED, True, "wgan")  # type: ignore[arg-type]


def test_discriminator_loss_halves_the_sum():
    real, fake = torch.tensor([0.5, 1.0]), torch.tensor([0.5, 0.0])
    # real: (0.25 + 0) / 2, fake: (0.25 + 0) / 2
    assert discriminator_loss(real, fake).item() == pytest.approx(0.5 * (0.125 + 0.125))


def test_cycle_and_identity_are_l1():
    a, b = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    assert cycle_loss(a, b).item() == pytest.approx(1.0)
    assert identity_loss(a, b).item() == pytest.approx(1.0)


# 3 pixels: logits [0, 0] label 0 → log 2; logits [2, 0] label 1 → log(1 + e²); third pixel ignored
LOGITS = torch.tensor([[0.0, 2.0, 5.0], [0.0, 0.0, -5.0]]).reshape(1, 2, 1, 3)
LABELS = torch.tensor([[[0, 1, 255]]])
NLL = [math.log(2), math.log(1 + math.exp(2))]


def test_semantic_loss_ignores_255():
    assert semantic_loss(LOGITS, LABELS).item() == pytest.approx(sum(NLL) / 2, rel=1e-6)


def test_semantic_loss_weighted_mean():
    weights = torch.tensor([1.0, 3.0])
    expected = (1 * NLL[0] + 3 * NLL[1]) / 4
    loss = semantic_loss(LOGITS, LABELS, class_weights=weights)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert loss.item() == pytest.approx(
        F.cross_entropy(LOGITS, LABELS, weight=weights, ignore_index=255).item()
    )
    # the up-weighted class is the badly classified one, so weighting raises the loss
    assert loss.item() > semantic_loss(LOGITS, LABELS).item()


@pytest.mark.parametrize("weights", [None, torch.tensor([1.0, 3.0])])
def test_all_ignored_batch_gives_zero_with_zero_grads(weights):
    logits = torch.randn(2, 2, 3, 3, requires_grad=True)
    labels = torch.full((2, 3, 3), 255)
    loss = semantic_loss(logits, labels, class_weights=weights)
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_semantic_loss_upsamples_logits_to_label_size():
    logits = torch.tensor([1.0, 0.0]).reshape(1, 2, 1, 1)
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    assert semantic_loss(logits, labels).item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)


def test_semantic_loss_rejects_mismatched_weights():
    with pytest.raises(ValueError, match="class_weights"):
        semantic_loss(LOGITS, LABELS, class_weights=torch.ones(3))


COUNTS = np.array([10, 30, 0, 60])


def test_inverse_class_weights():
    weights = class_weights_from_counts(COUNTS, "inverse")
    assert weights.dtype == torch.float32
    expected = torch.tensor([100 / 30, 100 / 90, 0.0, 100 / 180])
    assert torch.allclose(weights, expected)
    # pixel-weighted mean weight is 1
    assert (weights.double() * torch.from_numpy(COUNTS)).sum().item() / COUNTS.sum() == pytest.approx(1.0)


def test_median_class_weights():
    # freqs 0.1, 0.3, 0.6 → median 0.3
    assert torch.allclose(
        class_weights_from_counts(torch.tensor(COUNTS), "median"), torch.tensor([3.0, 1.0, 0.0, 0.5])
    )
    # even number of present classes: freqs .05 .15 .3 .5 → median (.15 + .3) / 2 = .225
    weights = class_weights_from_counts(np.array([10, 30, 0, 60, 100]), "median")
    assert torch.allclose(weights, torch.tensor([4.5, 1.5, 0.0, 0.75, 0.45]))


def test_class_weights_none_and_errors():
    assert class_weights_from_counts(COUNTS, "none") is None
    with pytest.raises(ValueError, match="inverse"):
        class_weights_from_counts(COUNTS, "sqrt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="all zero"):
        class_weights_from_counts(np.zeros(19), "inverse")
    with pytest.raises(ValueError, match="non-negative"):
        class_weights_from_counts(np.array([1, -1]), "median")
