"""The method's knobs: each enum and each default written once.

`MethodOptions` is what ``model.*`` holds besides the networks and optimizers. `CycleSemModule` builds one
from its keyword arguments, and the Hydra schema (`cyclesem.runtime.config.ModelConfig`) extends it, so the YAML
files and the module's constructor repeat none of these defaults. Importing this module has no side
effects (the schema module registers itself with Hydra's ConfigStore; the module must not import that).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum
from os import PathLike
from typing import Any, Optional


class GanMode(str, Enum):
    lsgan = "lsgan"  # least squares (LSGAN, the CycleGAN default)
    vanilla = "vanilla"  # binary cross-entropy on logits (the original GAN)


class SemanticClassifier(str, Enum):
    joint = "joint"  # F_T itself (the source report)
    ema = "ema"  # moving-average copy of F_T
    frozen = "frozen"  # copy of F_T pre-trained on the run's labelled images, then frozen (CyCADA)
    none = "none"  # no semantic terms: the generators are a plain CycleGAN (loss.sem_* are not used)


class PretrainOn(str, Enum):
    source = "source"
    target = "target"
    both = "both"

    @property
    def sides(self) -> tuple[str, ...]:
        """The labelled sets (``DomainMixDataModule.labeled_sets`` keys) the frozen copy pre-trains on."""
        return ("source", "target") if self is PretrainOn.both else (self.value,)


class ClassWeighting(str, Enum):
    none = "none"
    inverse = "inverse"  # total / (classes present · count_c)
    median = "median"  # median frequency balancing (Eigen & Fergus 2015)


class SourceWeightRule(str, Enum):
    """The segmenter's CE weight w on stylized source images (`stylized_loss_weight`), f = data.real_frac. Each
    segmenter step sees one stylized and one real batch, so the stylized share of the CE weight is
    w / (w + seg_target) whatever the fraction (at f = 0 there is no real batch, at f = 1 no stylized one)."""

    constant = "constant"  # w = seg_source at every fraction: share 1/2 with the default weights
    # w = seg_source · (1 − f) / max(f, 1 − f): seg_source up to f = 0.5, then the source/real ratio (share 1 − f
    # with the default weights only above 0.5: it never touches the low fractions)
    source_share = "source_share"
    # stylized images weigh what they are in the labelled set, share 1 − f over the whole range:
    # w = seg_target · (1 − f) / f (0.1 → 9 · seg_target, 0.5 → seg_target, 0.9 → seg_target / 9; 1 → 0, no source);
    # at f = 0 (no real batch to share with) w = seg_source. seg_source is not used otherwise.
    labelled_share = "labelled_share"
    # w falls linearly from seg_source at the run's first training batch to seg_source_end at its last
    # (progress p = batches done / (max_epochs · batches per epoch − 1)): w = seg_source + (seg_source_end −
    # seg_source) · p, at every fraction
    anneal = "anneal"


@dataclass
class LossWeights:
    gan: float = 1.0
    cycle: float = 10.0
    identity: float = 0.5  # multiplies `cycle`, as in CycleGAN; 0 switches identity off
    sem_source: float = 1.0  # generators: CE(F(G_S→T(x_s)), y_s)
    sem_target: float = 1.0  # generators: CE(F(G_S→T(G_T→S(x_t))), y_t)
    seg_source: float = 1.0  # segmenter: CE(F_T(x_SasT detached), y_s)
    seg_target: float = 1.0  # segmenter: CE(F_T(x_t), y_t)
    seg_source_rule: SourceWeightRule = SourceWeightRule.constant
    seg_source_end: float = 0.0  # `anneal`: the stylized weight at the last training batch

    def __post_init__(self) -> None:
        # Hydra hands over enum members, checkpoints' stored configs plain strings
        self.seg_source_rule = SourceWeightRule(self.seg_source_rule)


def stylized_loss_weight(loss: LossWeights, real_frac: float, progress: float = 0.0) -> float:
    """The weight of the segmenter's CE on stylized source images under `loss.seg_source_rule` (see
    `SourceWeightRule`) at real share `real_frac` and training progress `progress` (0 at the run's first batch,
    1 at its last; only ``anneal`` reads it)."""
    if not 0.0 <= real_frac <= 1.0:
        raise ValueError(f"real_frac={real_frac!r}: expected a float in [0, 1]")
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress={progress!r}: expected a float in [0, 1]")
    rule = loss.seg_source_rule
    if rule == SourceWeightRule.source_share:
        return loss.seg_source * (1.0 - real_frac) / max(real_frac, 1.0 - real_frac)
    if rule == SourceWeightRule.labelled_share:
        return loss.seg_source if real_frac == 0 else loss.seg_target * (1.0 - real_frac) / real_frac
    if rule == SourceWeightRule.anneal:
        return loss.seg_source + (loss.seg_source_end - loss.seg_source) * progress
    return loss.seg_source


@dataclass
class MethodOptions:
    """``model.*`` apart from the networks and optimizers (every key: docs/configuration.md#model)."""

    style_transfer: bool = True  # false: the baseline (no generators or discriminators are built)
    loss: LossWeights = field(default_factory=LossWeights)
    gan_mode: GanMode = GanMode.lsgan
    semantic_classifier: SemanticClassifier = SemanticClassifier.joint
    ema_decay: float = 0.99
    segmenter_pretrain_epochs: int = 2  # `frozen`: epochs of pre-training (train.build runs them)
    pretrain_on: PretrainOn = PretrainOn.source  # `frozen`: which labelled images
    semantic_warmup_epochs: int = 0  # GAN + cycle only for this many epochs
    pool_size: int = 50
    disc_noise: float = 0.0  # std of Gaussian instance noise on every discriminator input ([-1, 1] pixels)
    class_weights: ClassWeighting = ClassWeighting.none  # train.build computes them from the labelled set
    max_nonfinite_steps: int = 10
    gradient_clip_val: Optional[float] = None  # noqa: UP045 (OmegaConf reads this annotation)
    decay_start_frac: float = 0.5  # G/D learning rates decay linearly to 0 after this share of epochs
    log_images_every_n_steps: int = 200  # the ImagePanels callback's cadence (0 = never)
    channels_last: bool = False
    compile: bool = False  # torch.compile every network in configure_model; the first steps compile
    compile_mode: Optional[str] = None  # noqa: UP045 (OmegaConf reads this annotation) null: torch's default
    # where the generators and discriminators start (train.build loads them; docs/warm_start.md): null, from
    # scratch; true, the warm-up CycleGAN of this pair, seed and CycleGAN config (cyclesem/method/warmup.py, built
    # if missing); or the directory of a warm-up cache entry. A warm-started run's method is <method>_warm.
    warm_start: Any = None

    def __post_init__(self) -> None:
        # one place that turns strings (checkpoints, tests) into the enums the code compares against
        if not isinstance(self.loss, LossWeights):
            self.loss = LossWeights(**(self.loss or {}))
        self.warm_start = warm_start_setting(self.warm_start)
        self.gan_mode = GanMode(self.gan_mode)
        self.semantic_classifier = SemanticClassifier(self.semantic_classifier)
        self.pretrain_on = PretrainOn(self.pretrain_on)
        self.class_weights = ClassWeighting(self.class_weights)

    @classmethod
    def keys(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def from_mapping(cls, values: Any) -> MethodOptions:
        """The options among ``values`` (a model config: networks and optimizers are left out)."""
        return cls(**{k: values[k] for k in cls.keys() if k in values})


def warm_start_setting(value: Any) -> bool | str | None:
    """``model.warm_start`` as the code reads it: None (false, null), True (true, also the string a str-typed
    override gives) or a directory path."""
    if value is None or value is False or str(value).lower() in ("false", "none", "null", ""):
        return None
    if value is True or str(value).lower() == "true":
        return True
    if not isinstance(value, (str, PathLike)):
        raise ValueError(f"model.warm_start={value!r}: expected null, true or the directory of a warm-up "
                         "(<warmup.cache_dir>/<key>)")
    return str(value)


# torch.compile's documented modes (model.compile_mode, the benchmark's compile_mode); null is "default"
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

# fp16 mixed precision scales each backward by a GradScaler: the fused generator/segmenter backward and the
# segmenter's own backward would need one scale and unscaling before clipping. bf16 needs no scaler.
FP16_PRECISIONS = ("16", "16-mixed", "16-true")


def check_training_device(device_type: str) -> None:
    """Refuse a device the module cannot train on: ``trainer.accelerator=auto`` picks Apple MPS where there is one,
    which has no float64 (the epoch means' running sums) and on which nothing here was ever run."""
    if device_type == "mps":
        raise ValueError("cyclesem does not train on Apple MPS (no float64 for its running sums, never tested "
                         "there): set trainer.accelerator=cpu, or train on a CUDA GPU")
