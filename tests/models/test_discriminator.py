import pytest
import torch

from cyclesem.models.discriminator import PatchDiscriminator


def test_default_discriminator_has_patchgan_parameter_count():
    disc = PatchDiscriminator()
    assert sum(p.numel() for p in disc.parameters()) == 2_764_737


@pytest.mark.parametrize(
    "n_layers, size, expected",
    [(3, (64, 128), (6, 14)), (3, (256, 256), (30, 30)), (3, (24, 24), (1, 1)), (2, (32, 40), (6, 8))],
)
def test_patch_logit_map_shape(n_layers, size, expected):
    disc = PatchDiscriminator(ndf=4, n_layers=n_layers)
    out = disc(torch.randn(2, 3, *size))
    assert out.shape == (2, 1, *expected)


def test_channel_widths_double_and_cap_at_eight_times_ndf():
    disc = PatchDiscriminator(ndf=2, n_layers=5)
    widths = [m.out_channels for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths == [2, 4, 8, 16, 16, 16, 1]


def test_discriminator_gan_init_gives_small_weights_and_zero_bias():
    torch.manual_seed(0)
    disc = PatchDiscriminator(init_gain=0.02)
    big = disc.model[8]  # 256 -> 512 channel stride-1 conv, 2.1M weights
    assert big.weight.shape == (512, 256, 4, 4)
    assert big.weight.std().item() == pytest.approx(0.02, rel=0.01)
    assert torch.all(big.bias == 0)


def test_too_small_input_raises_a_clear_error():
    disc = PatchDiscriminator(ndf=4)
    with pytest.raises(ValueError, match="at least 24x24, got 16x64"):
        disc(torch.randn(1, 3, 16, 64))
