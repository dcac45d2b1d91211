import pytest
import torch
from torch import nn

from cyclesem.models.init import init_gan_weights


def test_conv_linear_and_norm_layers_follow_cyclegan_normal_init():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(128, 256, 3),  # 294,912 weights: std estimate is tight
        nn.BatchNorm2d(20_000),
        nn.ConvTranspose2d(256, 64, 3),
        nn.Linear(300, 500),
        nn.InstanceNorm2d(8),  # affine=False: nothing to init, must not crash
    )
    assert init_gan_weights(net, gain=0.05) is net
    for layer in (net[0], net[2], net[3]):
        assert layer.weight.std().item() == pytest.approx(0.05, rel=0.02)
        assert layer.weight.mean().abs().item() < 2e-3
        assert torch.all(layer.bias == 0)
    assert net[1].weight.mean().item() == pytest.approx(1.0, abs=2e-3)
    assert net[1].weight.std().item() == pytest.approx(0.05, rel=0.03)
    assert torch.all(net[1].bias == 0)


def test_non_positive_gain_is_rejected():
    with pytest.raises(ValueError, match="gain"):
        init_gan_weights(nn.Linear(2, 2), gain=0.0)
