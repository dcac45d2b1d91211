import pytest
import torch

from cyclesem.models.generator import ResnetGenerator


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_default_generator_has_cyclegan_parameter_count():
    assert n_params(ResnetGenerator()) == 11_378_179


@pytest.mark.parametrize("height, width", [(36, 52), (20, 28), (64, 128)])
def test_output_shape_matches_input_for_multiples_of_four(height, width):
    gen = ResnetGenerator(ngf=8, n_blocks=2)
    out = gen(torch.randn(2, 3, height, width))
    assert out.shape == (2, 3, height, width)


def test_channel_counts_are_configurable():
    gen = ResnetGenerator(in_channels=1, out_channels=3, ngf=4, n_blocks=1)
    assert gen(torch.randn(1, 1, 16, 16)).shape == (1, 3, 16, 16)


def test_output_is_tanh_bounded_even_when_saturated():
    torch.manual_seed(0)
    # a large init gain and input push the pre-activation far past +-1, so the bound is really exercised
    gen = ResnetGenerator(ngf=8, n_blocks=1, init_gain=1.0)
    out = gen(100 * torch.randn(2, 3, 16, 16))
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert out.abs().max() > 0.99


def test_each_image_is_translated_independently_of_its_batch():
    # instance norm without running stats: no information leaks across the batch, train or eval
    torch.manual_seed(0)
    gen = ResnetGenerator(ngf=8, n_blocks=1)
    images = torch.randn(3, 3, 16, 16)
    torch.testing.assert_close(gen(images)[:1], gen(images[:1]))
    assert not any(isinstance(b, torch.Tensor) for b in gen.buffers())


def test_sizes_not_divisible_by_four_raise_a_clear_error():
    gen = ResnetGenerator(ngf=4, n_blocks=1)
    with pytest.raises(ValueError, match="divisible by 4.*18x20"):
        gen(torch.randn(1, 3, 18, 20))


def test_constructor_applies_gan_init():
    torch.manual_seed(0)
    gen = ResnetGenerator(init_gain=0.02)
    conv = gen.model[10].block[1]  # first conv of the first residual block, 256x256x3x3 weights
    assert conv.weight.shape == (256, 256, 3, 3)
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.01)
    assert conv.weight.mean().abs().item() < 1e-3
    assert torch.all(conv.bias == 0)
