import pytest
import torch
import torchvision
from torch import nn

from cyclesem.models.segmenter import LRASPP, DeepLabV3, UNet, WeightsFileError, load_weights


@pytest.fixture
def no_downloads(monkeypatch):
    """Make any attempt to fetch pretrained weights fail loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"tried to download weights: {args}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", refuse)


def tiny_unet(**kwargs) -> UNet:
    return UNet(base_channels=4, depth=3, **kwargs)


@pytest.mark.parametrize("bilinear", [True, False])
@pytest.mark.parametrize("size", [(36, 52), (64, 128), (17, 23)])
def test_unet_logits_at_input_resolution_for_any_size(bilinear, size):
    net = UNet(base_channels=4, depth=4, bilinear=bilinear)
    assert net(torch.randn(2, 3, *size)).shape == (2, 19, *size)


def test_unet_trains_every_parameter():
    net = tiny_unet(num_classes=5)
    logits = net(torch.randn(2, 3, 20, 28))
    nn.functional.cross_entropy(logits, torch.randint(0, 5, (2, 20, 28))).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_unet_rejects_inputs_smaller_than_its_downsampling():
    with pytest.raises(ValueError, match="depth 4 needs H, W >= 16, got 12x40"):
        UNet(base_channels=4, depth=4)(torch.randn(1, 3, 12, 40))


def test_torchvision_segmenters_build_offline_and_return_full_resolution_logits(no_downloads):
    torch.manual_seed(0)
    for net in (DeepLabV3(num_classes=19), LRASPP(num_classes=19)):
        with torch.no_grad():
            logits = net.eval()(torch.randn(1, 3, 64, 64))
        assert logits.shape == (1, 19, 64, 64)
        assert torch.isfinite(logits).all()


def test_state_dict_keys_match_torchvision_so_its_files_load(no_downloads):
    ours = LRASPP(num_classes=19)
    theirs = torchvision.models.segmentation.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=19
    )
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_weights_path_round_trip_gives_identical_outputs(tmp_path, no_downloads):
    torch.manual_seed(0)
    trained = LRASPP(num_classes=19).eval()
    path = tmp_path / "lraspp.pt"
    torch.save(trained.state_dict(), path)
    restored = LRASPP(num_classes=19, weights_path=str(path)).eval()
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(restored(image), trained(image), rtol=0, atol=0)


def test_load_weights_round_trip_for_unet(tmp_path):
    torch.manual_seed(0)
    trained = tiny_unet()
    trained(torch.randn(2, 3, 16, 16))  # train-mode pass: moves BatchNorm running stats off defaults
    trained.eval()
    path = tmp_path / "unet.pt"
    torch.save(trained.state_dict(), path)
    restored = load_weights(tiny_unet(), path).eval()
    image = torch.randn(1, 3, 24, 24)
    torch.testing.assert_close(restored(image), trained(image), rtol=0, atol=0)


def test_lightning_checkpoint_with_prefix_loads_the_segmenter(tmp_path):
    trained = tiny_unet()
    state = {f"segmenter.{k}": v for k, v in trained.state_dict().items()}
    state["gen_s2t.model.0.weight"] = torch.zeros(1)  # other networks of the module are ignored
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "last.ckpt")
    restored = load_weights(tiny_unet(), tmp_path / "last.ckpt", prefix="segmenter.")
    torch.testing.assert_close(restored.head.weight, trained.head.weight, rtol=0, atol=0)


def test_missing_file_error_names_the_file(tmp_path, no_downloads):
    missing = tmp_path / "nowhere" / "weights.pt"
    with pytest.raises(FileNotFoundError, match="nowhere/weights.pt"):
        load_weights(tiny_unet(), missing)
    with pytest.raises(FileNotFoundError, match="nowhere/weights.pt"):
        LRASPP(weights_path=str(missing))


def test_wrong_keys_error_names_the_file_and_keys(tmp_path, no_downloads):
    path = tmp_path / "unet.pt"
    torch.save(tiny_unet().state_dict(), path)
    with pytest.raises(
        WeightsFileError, match=r"unet\.pt does not fit LRASPP.*missing keys: backbone.*unexpected keys"
    ):
        LRASPP(weights_path=str(path))


def test_shape_mismatch_outside_the_head_is_an_error(tmp_path):
    path = tmp_path / "wide.pt"
    torch.save(UNet(base_channels=8, depth=3).state_dict(), path)
    with pytest.raises(
        WeightsFileError,
        match=r"wide\.pt.*shape mismatches.*downs\.0\.0\.weight \(16, 8, 3, 3\) vs \(8, 4, 3, 3\)",
    ):
        load_weights(tiny_unet(), path)


def test_head_with_another_class_count_is_skipped_with_a_warning(tmp_path):
    torch.manual_seed(0)
    source = tiny_unet(num_classes=5)
    torch.save(source.state_dict(), tmp_path / "five.pt")
    fresh = tiny_unet(num_classes=19)
    fresh_head = fresh.head.weight.clone()
    with pytest.warns(UserWarning, match=r"five\.pt: skipping head tensors.*head\.weight"):
        load_weights(fresh, tmp_path / "five.pt")
    torch.testing.assert_close(fresh.stem[0].weight, source.stem[0].weight, rtol=0, atol=0)
    torch.testing.assert_close(fresh.head.weight, fresh_head, rtol=0, atol=0)


def test_corrupt_or_non_state_dict_files_are_rejected(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    with pytest.raises(WeightsFileError, match="could not read weights file .*garbage.pt"):
        load_weights(tiny_unet(), tmp_path / "garbage.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(WeightsFileError, match=r"list\.pt does not hold a state_dict"):
        load_weights(tiny_unet(), tmp_path / "list.pt")


def test_imagenet_backbone_files_load_into_the_backbones(tmp_path, no_downloads):
    torch.manual_seed(0)
    resnet = torchvision.models.resnet50()  # same layout as torchvision's ImageNet file, fc included
    torch.save(resnet.state_dict(), tmp_path / "resnet50.pth")
    deeplab = DeepLabV3(backbone_weights_path=str(tmp_path / "resnet50.pth"))
    torch.testing.assert_close(
        deeplab.backbone.layer4[2].conv3.weight, resnet.layer4[2].conv3.weight, rtol=0, atol=0
    )

    mobilenet = torchvision.models.mobilenet_v3_large()
    torch.save(mobilenet.state_dict(), tmp_path / "mobilenet.pth")
    lraspp = LRASPP(backbone_weights_path=str(tmp_path / "mobilenet.pth"))
    torch.testing.assert_close(
        lraspp.backbone["16"][0].weight, mobilenet.features[16][0].weight, rtol=0, atol=0
    )


def test_weights_path_and_backbone_path_together_are_rejected():
    with pytest.raises(ValueError, match="not both"):
        LRASPP(weights_path="a.pt", backbone_weights_path="b.pth")


def test_group_norm_unet_treats_each_image_alone():
    """norm=group (for batch size 1): an image's logits do not depend on the batch it came in, in train mode."""
    torch.manual_seed(0)
    net = UNet(base_channels=4, depth=2, norm="group").train()
    images = torch.randn(3, 3, 16, 16)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    torch.testing.assert_close(net(images)[:1], net(images[:1]))
    batch_norm = UNet(base_channels=4, depth=2).train()
    assert not torch.allclose(batch_norm(images)[:1], batch_norm(images[:1]))
    with pytest.raises(ValueError, match="norm must be one of"):
        UNet(norm="layer")
