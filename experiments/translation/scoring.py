"""The translation score of a training run, for the scripts in this folder: the cached reference segmenter and the
paired set of conf/data/synthetic.yaml, the same images and reference as `val/translation_score`.

Needs the reference in the cache: `python -m cyclesem.reference` trains or finds it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from cyclesem.runtime.config import CONF_DIR, ReferenceConfig
from cyclesem.data.labels import NUM_CLASSES
from cyclesem.data.paired import PairedImages
from cyclesem.method.metrics import SegmentationMetrics
from cyclesem.method.reference_segmenter import translation_reference
from cyclesem.method.translation_score import TranslationReference


def load_reference() -> tuple[TranslationReference, PairedImages]:
    """The default synthetic reference with its anchors, and the paired set it scores; exits when not cached."""
    with initialize_config_dir(config_dir=str(Path(CONF_DIR).absolute()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["logger=none"])
    paired = instantiate(cfg.data.paired)()
    spec = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(ReferenceConfig),
                                                  OmegaConf.to_container(cfg.reference, resolve=True)),
                                  enum_to_str=True)
    reference = translation_reference(spec, paired, torch.device("cpu"), train=False)
    if reference is None:
        raise SystemExit("no cached reference: run `python -m cyclesem.reference` first")
    return reference, paired


@torch.no_grad()
def translation_score(generator: nn.Module, reference: TranslationReference, paired: PairedImages) -> float:
    """mIoU (fraction) of the reference on G_S→T(source) against the source labels; `generator` is left in the
    mode it came in."""
    was_training = generator.training
    metrics = SegmentationMetrics(NUM_CLASSES)
    for batch in DataLoader(paired, batch_size=32):
        metrics.update(reference(generator.eval()(batch["source_image"])), batch["label"])  # (B, C, H, W)
    generator.train(was_training)
    return float(metrics.compute()["mIoU"])
