"""Score the generators `diagnose.py` saved with the translation score (FCN-score) of a training run.

    python -m cyclesem.reference                      # once: trains or finds the synthetic reference segmenter
    python experiments/translation/score.py [RUNS_DIR] # writes RUNS_DIR/../variants.md and variants.csv

Each G_S→T in RUNS_DIR/<name>_gs.pt (its options from <name>.json) translates the paired set of
conf/data/synthetic.yaml (the same images and reference as `val/translation_score` of a training run), and the
reference segmenter scores the translations against the source labels.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from cyclesem.config import CONF_DIR, ReferenceConfig
from cyclesem.data.labels import NUM_CLASSES
from cyclesem.method.metrics import SegmentationMetrics
from cyclesem.method.reference import translation_reference
from cyclesem.models.generator import ResnetGenerator

ARCHS = {"plain": {}, "skip": {"input_skip": True}, "residual": {"input_skip": True, "residual": True}}


def main() -> None:
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "runs")
    torch.set_num_threads(1)
    with initialize_config_dir(config_dir=str(Path(CONF_DIR).absolute()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["logger=none"])
    paired = instantiate(cfg.data.paired)()
    spec = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(ReferenceConfig),
                                                  OmegaConf.to_container(cfg.reference, resolve=True)),
                                  enum_to_str=True)
    reference = translation_reference(spec, paired, torch.device("cpu"), train=False)
    if reference is None:
        raise SystemExit("no cached reference: run `python -m cyclesem.reference` first")
    rows = []
    for record_file in sorted(runs.glob("*.json")):
        record = json.loads(record_file.read_text())
        args, weights = record["args"], runs / f"{record_file.stem}_gs.pt"
        generator = ResnetGenerator(ngf=args["ngf"], n_blocks=args["nb"], upsample=args["up"], **ARCHS[args["arch"]])
        generator.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        metrics = SegmentationMetrics(NUM_CLASSES)
        with torch.no_grad():
            for batch in DataLoader(paired, batch_size=32):
                metrics.update(reference(generator.eval()(batch["source_image"])), batch["label"])  # (B, C, H, W)
        score = float(metrics.compute()["mIoU"])
        last = record["history"][-1]
        rows.append({"variant": record_file.stem, "arch": args["arch"], "upsample": args["up"],
                     "identity": args["idt"], "lr_g": args.get("lrg") or args["lr"], "lr_d": args["lr"],
                     "disc_noise": args.get("dnoise", 0.0), "steps": last["step"],
                     "translation_l1": round(last["translation_l1"], 4), "translation_score": round(score, 4),
                     "translation_gain": round(reference.gain(score), 3), "wall_s": last["wall_s"]})
    with open(runs.parent / "variants.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"Reference {reference.key}: floor (raw source) {reference.floor:.4f}, ceiling (paired renders) "
             f"{reference.ceiling:.4f} mIoU on {len(paired)} paired scenes.", "",
             "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in rows]
    (runs.parent / "variants.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
