import math

import pytest
import torch
import torch.nn.functional as F

from cyclesem.method.metrics import EpochMeans, SegmentationMetrics, confusion_matrix, scores_from_confusion

# 4 classes; class 2 is predicted but absent from the ground truth, class 3 absent from both
TARGET = torch.tensor([[0, 0, 1], [1, 255, 0]])
PRED = torch.tensor([[0, 1, 1], [2, 0, 0]])
EXPECTED_CM = torch.tensor([[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


def test_confusion_matrix_rows_are_ground_truth_and_ignore_is_dropped():
    cm = confusion_matrix(PRED, TARGET, num_classes=4)
    assert cm.dtype == torch.int64
    assert torch.equal(cm, EXPECTED_CM)


def test_confusion_matrix_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="target.*7"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 7]), num_classes=4)
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.zeros(2, 3), torch.zeros(3, 2), num_classes=4)


def test_scores_on_hand_computed_example():
    scores = scores_from_confusion(EXPECTED_CM)
    # IoU = TP / (GT + pred - TP): class 0: 2/3, class 1: 1/3, class 2: 0/1, class 3: absent → nan
    iou = scores["per_class_iou"]
    assert iou[:3].tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert math.isnan(iou[3].item())
    assert scores["mIoU"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert scores["pixel_acc"] == pytest.approx(3 / 5)
    # GT frequencies 3/5, 2/5
    assert scores["fwIoU"] == pytest.approx(3 / 5 * 2 / 3 + 2 / 5 * 1 / 3)
    assert all(isinstance(scores[k], float) for k in ("fwIoU", "mIoU", "pixel_acc"))


def test_scores_on_empty_matrix_are_nan():
    scores = scores_from_confusion(torch.zeros(3, 3, dtype=torch.long))
    assert all(math.isnan(scores[k]) for k in ("fwIoU", "mIoU", "pixel_acc"))
    assert torch.isnan(scores["per_class_iou"]).all()


def test_metric_accumulates_like_one_update_on_the_concatenation():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 5, 6, 6, generator=gen)
    target = torch.randint(0, 5, (4, 6, 6), generator=gen)
    target[0, :2] = 255
    split, whole = SegmentationMetrics(num_classes=5), SegmentationMetrics(num_classes=5)
    split.update(logits[:2], target[:2])
    split.update(logits[2:], target[2:])
    whole.update(logits, target)
    assert torch.equal(split.confmat, whole.confmat)
    assert split.confmat.sum().item() == 4 * 36 - 12
    assert split.compute()["fwIoU"] == pytest.approx(whole.compute()["fwIoU"])
    split.reset()
    assert split.confmat.sum().item() == 0


def test_low_resolution_logits_are_upsampled_to_label_size():
    # 2x2 logits, one class per quadrant with a large margin → each 2x2 block of the 4x4 label is that class
    logits = torch.full((1, 4, 2, 2), -10.0)
    for k, (y, x) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        logits[0, k, y, x] = 10.0
    target = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]).unsqueeze(0)
    metric = SegmentationMetrics(num_classes=4)
    metric.update(logits, target)
    assert metric.confmat.sum().item() == 16  # scored at label resolution
    assert metric.compute()["pixel_acc"] == pytest.approx(1.0)

    # same result as upsampling by hand and passing integer predictions
    pred = F.interpolate(logits, size=(4, 4), mode="bilinear", align_corners=False).argmax(1)
    by_hand = SegmentationMetrics(num_classes=4)
    by_hand.update(pred, target)
    assert torch.equal(by_hand.confmat, metric.confmat)


def test_metric_rejects_float_predictions_and_wrong_channels():
    metric = SegmentationMetrics(num_classes=4)
    with pytest.raises(ValueError, match="integer"):
        metric.update(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes=4"):
        metric.update(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))


def test_states_from_two_ranks_are_summed():
    # merge_state applies dist_reduce_fx, as the DDP sync does
    rank0, rank1 = SegmentationMetrics(num_classes=3), SegmentationMetrics(num_classes=3)
    rank0.update(torch.tensor([[[0, 1]]]), torch.tensor([[[0, 1]]]))
    rank1.update(torch.tensor([[[2, 1]]]), torch.tensor([[[2, 2]]]))
    rank0.merge_state(rank1)
    assert torch.equal(rank0.confmat, torch.tensor([[1, 0, 0], [0, 1, 0], [0, 1, 1]]))


def test_epoch_means_weight_by_batch_size_sum_ranks_and_survive_a_checkpoint():
    means = EpochMeans(("a", "b", "c"))
    means.update({"a": torch.tensor(1.0), "b": torch.tensor(4.0)}, batch_size=2)
    means.update({"a": torch.tensor(4.0)}, batch_size=1)  # "b" missing in this batch: not counted as 0
    restored = EpochMeans(("a", "b", "c"))
    restored.load_state_dict(means.state_dict())
    # a second "rank" holding the same batches: the sums double, the means stay
    restored.update({"a": torch.tensor(7.0)}, batch_size=1, sum_across_ranks=lambda t: 2 * t)
    assert restored.compute_and_reset() == pytest.approx({"a": (2 * 1 + 4 + 2 * 7) / (2 + 1 + 2), "b": 4.0})
    assert restored.compute_and_reset() == {}  # reset for the next epoch; "c" was never logged
    assert means.compute_and_reset() == pytest.approx({"a": 2.0, "b": 4.0})
