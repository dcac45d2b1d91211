"""How many paired scenes the translation score needs: the cached default reference's floor and ceiling on the first
n scenes, and their sampling spread (bootstrap over all 600 scenes).

    python experiments/translation_reference/limit.py      # after `python -m cyclesem.reference`

Prints a markdown table; per-image confusion matrices, so one forward per scene and image kind.
"""

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from cyclesem.runtime.config import CONF_DIR, ReferenceConfig
from cyclesem.data.paired import PairedImages
from cyclesem.data.transforms import eval_transform
from cyclesem.method.metrics import confusion_matrix, scores_from_confusion
from cyclesem.method.reference_segmenter import ensure_reference

torch.set_num_threads(2)
with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
    cfg = compose("reference")
spec = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(ReferenceConfig),
                                              OmegaConf.to_container(cfg.reference, resolve=True)), enum_to_str=True)
entry = ensure_reference(spec, torch.device("cpu"), train=False)
assert entry is not None, "no cached reference: run python -m cyclesem.reference first"
root = cfg.data.prepare.root
paired = PairedImages(f"{root}/gta5/images", f"{root}/gta5_as_cityscapes/images", label_dir=f"{root}/gta5/labels",
                      transform=eval_transform())
matrices = {"floor": [], "ceiling": []}  # per scene, (19, 19)
with torch.no_grad():
    for batch in torch.utils.data.DataLoader(paired, batch_size=32):
        for kind, key in (("floor", "source_image"), ("ceiling", "paired_image")):
            pred = entry.segmenter(batch[key]).argmax(1)
            matrices[kind] += [confusion_matrix(p, t) for p, t in zip(pred, batch["label"], strict=True)]
stacked = {kind: torch.stack(m).numpy() for kind, m in matrices.items()}  # (600, 19, 19)
rng = np.random.default_rng(0)


def miou(cms: np.ndarray) -> float:
    return scores_from_confusion(torch.from_numpy(cms.sum(0)))["mIoU"]


print(f"reference {entry.key}: {len(paired)} paired scenes\n")
print("| n | floor (first n) | ceiling (first n) | floor bootstrap sd | ceiling bootstrap sd |")
print("|---:|---:|---:|---:|---:|")
for n in (64, 128, 200, 600):
    first = {kind: miou(cms[:n]) for kind, cms in stacked.items()}
    spread = {kind: np.std([miou(cms[rng.integers(0, len(cms), n)]) for _ in range(300)]) for kind, cms in stacked.items()}
    print(f"| {n} | {100 * first['floor']:.1f} | {100 * first['ceiling']:.1f} | {100 * spread['floor']:.2f} | "
          f"{100 * spread['ceiling']:.2f} |")
