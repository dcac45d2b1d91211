"""Score the generators `diagnose.py` saved with the translation score (FCN-score) of a training run.

    python -m cyclesem.reference                      # once: trains or finds the synthetic reference segmenter
    python experiments/translation/score.py [RUNS_DIR] # writes RUNS_DIR/../variants.md and variants.csv

Each G_S→T in RUNS_DIR/<name>_gs.pt (its options from <name>.json; the score is kept in the record, so runs
whose weights are gone — a clean clone — are read from there) translates the paired set of
conf/data/synthetic.yaml (the same images and reference as `val/translation_score` of a training run), and the
reference segmenter scores the translations against the source labels.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import torch
from diagnose import ARCHS
from scoring import load_reference, translation_score

from cyclesem.models.generator import ResnetGenerator


def best_gain(history: list[dict]) -> str:
    """The highest gain at an evaluation point, with its step ("—" for runs made before diagnose.py scored)."""
    scored = [h for h in history if "translation_gain" in h]
    if not scored:
        return "—"
    best = max(scored, key=lambda h: h["translation_gain"])
    return f"{best['translation_gain']:.3f} @ {best['step']}"


@torch.no_grad()
def check_l1(generator: ResnetGenerator, paired, recorded: float, name: str) -> None:
    """The loaded weights reproduce the run's last translation L1 (the same generator, the same 64 scenes)."""
    batch = next(iter(torch.utils.data.DataLoader(paired, batch_size=len(paired))))
    l1 = (generator.eval()(batch["source_image"]) - batch["paired_image"]).abs().mean().item()
    if abs(l1 - recorded) > 1e-3:
        raise SystemExit(f"{name}: the saved generator gives translation L1 {l1:.4f}, its run recorded {recorded:.4f}")


def final_score(record: dict, weights: Path, record_file: Path, reference, paired) -> float:
    """The translation score of the run's final G_S→T: measured from its weights (`<name>_gs.pt`, not committed)
    and kept in the run's record as `final_score`, so a clean clone reads it from there."""
    stored = record.get("final_score")
    if not weights.exists():
        if stored is None or stored["reference"] != reference.key:
            raise SystemExit(f"{record_file.stem}: no weights {weights.name} and no final_score for reference "
                             f"{reference.key} in its record: rerun its diagnose.py command (args in the record)")
        return stored["translation_score"]
    args = record["args"]
    generator = ResnetGenerator(ngf=args["ngf"], n_blocks=args["nb"], upsample=args["up"], **ARCHS[args["arch"]])
    state = torch.load(weights, map_location="cpu", weights_only=True)
    # the first runs' precursor of diagnose.py wrapped the generator as `g`
    generator.load_state_dict({k.removeprefix("g."): v for k, v in state.items()})
    check_l1(generator, paired, record["history"][-1]["translation_l1"], record_file.stem)
    score = translation_score(generator, reference, paired)
    record["final_score"] = {"reference": reference.key, "translation_score": score,
                             "translation_gain": reference.gain(score)}
    record_file.write_text(json.dumps(record, indent=1))
    return score


def main() -> None:
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "runs")
    torch.set_num_threads(1)
    reference, paired = load_reference()
    rows = []
    for record_file in sorted(runs.glob("*.json")):
        record = json.loads(record_file.read_text())
        args, weights = record["args"], runs / f"{record_file.stem}_gs.pt"
        score = final_score(record, weights, record_file, reference, paired)
        last = record["history"][-1]
        rows.append({"variant": record_file.stem, "supervised": args.get("supervised", False), "arch": args["arch"],
                     "ngf": args["ngf"],
                     "upsample": args["up"],
                     "identity": args["idt"], "lr_g": args.get("lrg") or args["lr"], "lr_d": args["lr"],
                     "disc_noise": args.get("dnoise", 0.0), "d_layers": args.get("dl", 3),
                     "d_pool": args.get("dpool", 1), "cycle": args["cyc"],
                     "steps": last["step"], "translation_l1": round(last["translation_l1"], 4),
                     "translation_score": round(score, 4), "translation_gain": round(reference.gain(score), 3),
                     "best_gain_on_the_way": best_gain(record["history"]), "wall_s": last["wall_s"]})
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
