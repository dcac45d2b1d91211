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


def test_plain_generator_is_blind_to_global_gain_and_offset_but_input_skip_is_not():
    # every path through the CycleGAN layout passes an instance norm, which removes a per-channel gain and offset:
    # the plain network cannot reproduce an image's exposure (the synthetic pair varies it per image)
    torch.manual_seed(0)
    image = torch.rand(2, 3, 16, 32) * 2 - 1
    darker = 0.6 * image - 0.2  # the same scene, under another exposure
    plain = ResnetGenerator(ngf=8, n_blocks=1, init_gain=0.2).eval()
    torch.testing.assert_close(plain(darker), plain(image), atol=1e-4, rtol=0)
    skip = ResnetGenerator(ngf=8, n_blocks=1, init_gain=0.2, input_skip=True).eval()
    assert (skip(darker) - skip(image)).abs().mean() > 0.01


def test_input_skip_adds_three_input_channels_to_the_output_conv_only():
    plain, skip = ResnetGenerator(ngf=8, n_blocks=1), ResnetGenerator(ngf=8, n_blocks=1, input_skip=True)
    assert n_params(skip) - n_params(plain) == 3 * 3 * 7 * 7  # (in=3 image channels) x (out=3) x 7x7
    assert skip(torch.randn(1, 3, 16, 32)).shape == (1, 3, 16, 32)


def test_plain_generator_keeps_cyclegan_parameter_names():
    # checkpoints written before the options existed still load into the default layout
    names = set(ResnetGenerator(ngf=8, n_blocks=1).state_dict())
    assert "model.1.weight" in names and not any(n.startswith("head.") for n in names)


def test_resize_upsampling_replaces_transposed_convs():
    gen = ResnetGenerator(ngf=8, n_blocks=1, upsample="resize")
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in gen.modules())
    assert sum(isinstance(m, torch.nn.Upsample) for m in gen.modules()) == 2
    assert gen(torch.randn(2, 3, 20, 28)).shape == (2, 3, 20, 28)


def test_unknown_upsampling_is_refused_by_name():
    with pytest.raises(ValueError, match="upsample must be one of"):
        ResnetGenerator(upsample="bilinear")


def test_residual_generator_starts_as_the_identity_and_learns_a_correction():
    torch.manual_seed(0)
    gen = ResnetGenerator(ngf=8, n_blocks=1, residual=True, upsample="resize")
    image = torch.rand(2, 3, 16, 32) * 1.8 - 0.9  # inside the atanh clamp: the identity is exact
    torch.testing.assert_close(gen(image), image, atol=1e-5, rtol=0)
    target = image.flip(-1)  # something else to become: the correction must move away from the identity
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    before = (gen(image) - target).abs().mean().item()
    for _ in range(20):
        loss = (gen(image) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.8 * before
    saturated = torch.ones(1, 3, 16, 32)
    saturated[..., ::2] = -1.0
    out = gen(saturated)
    assert torch.isfinite(out).all() and out.abs().max() <= 1.0  # ±1 pixels: clamped before atanh, no inf


def test_residual_needs_as_many_output_as_input_channels():
    with pytest.raises(ValueError, match="in_channels .1. must equal out_channels .3."):
        ResnetGenerator(in_channels=1, out_channels=3, residual=True)
