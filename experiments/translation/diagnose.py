"""The CycleGAN alone on the synthetic pair: does a generator variant translate, and how fast?

A plain loop over the method's own networks and losses (cyclesem.models, cyclesem.method.losses, ImagePool),
without the segmenter, so a variant costs about half a cyclesem step. Both domains use all their train images
(600 source, 600 target): this isolates the generator and discriminator from the data-side limit of a run at
10 % real, whose CycleGAN sees only the 20 labelled target images. Every `--eval-every` steps: the translation
L1 against the paired renders (first 64 paired scenes), the translation score and gain (the reference segmenter of
`python -m cyclesem.reference` on G_S→T(source) against the source labels, as `val/translation_gain` of a training
run) and a panel (source | G_S→T(source) | paired render | real target images); at the end G_S→T's weights, which
`score.py` scores again for the variants table.

    python experiments/translation/diagnose.py --name plain --steps 1000
    python experiments/translation/diagnose.py --name residual --steps 1000 --arch residual --up resize --idt 0
    python experiments/translation/diagnose.py --name supervised_plain --steps 1000 --supervised

`--supervised` is the generator's ceiling at the budget: G_S→T alone learns the paired renders with an L1 loss
(pix2pix without its GAN term) on the 536 source scenes outside the 64 evaluation scenes, no discriminator, no
cycle: what the architecture reaches when the target is given, not searched for.

Writes <out>/<name>.json (arguments, L1 history, wall time), <name>_<step>.png and <name>_gs.pt.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scoring import load_reference, translation_score

from cyclesem.method.image_pool import ImagePool
from cyclesem.method.losses import cycle_loss, discriminator_loss, gan_loss, identity_loss
from cyclesem.models.discriminator import PatchDiscriminator
from cyclesem.models.generator import ResnetGenerator
from cyclesem.study.run_record import portable_path

ARCHS = {  # --arch: ResnetGenerator options
    "plain": {},
    "skip": {"input_skip": True},
    "residual": {"input_skip": True, "residual": True},
}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True)
    p.add_argument("--out", default=str(Path(__file__).parent / "runs"))
    p.add_argument("--data", default=os.path.join(os.environ.get("CYCLESEM_DATA_DIR", "data"), "synthetic"))
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=2e-4, help="Adam lr of D (and of G unless --lrg)")
    p.add_argument("--lrg", type=float, default=None, help="Adam lr of the generators")
    p.add_argument("--gan", type=float, default=1.0, help="weight of the generators' adversarial loss")
    p.add_argument("--dnoise", type=float, default=0.0, help="instance noise std on D's inputs (model.disc_noise)")
    p.add_argument("--ngf", type=int, default=16)
    p.add_argument("--nb", type=int, default=4)
    p.add_argument("--dpool", type=int, default=1,
                   help="average-pool D's inputs by this factor: D judges colour and layout, not pixel texture")
    p.add_argument("--ndf", type=int, default=16)
    p.add_argument("--dl", type=int, default=3, help="discriminator n_layers")
    p.add_argument("--ntarget", type=int, default=600, help="target train images the CycleGAN sees")
    p.add_argument("--idt", type=float, default=0.5, help="identity weight (multiplies --cyc, as model.loss)")
    p.add_argument("--cyc", type=float, default=10.0)
    p.add_argument("--up", default="transpose", choices=["transpose", "resize"])
    p.add_argument("--arch", default="plain", choices=sorted(ARCHS))
    p.add_argument("--bs", type=int, default=4)
    p.add_argument("--supervised", action="store_true", help="G_S→T learns the paired renders by L1 (the ceiling)")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


def load(paths: list[Path]) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1]."""
    x = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in paths]).astype(np.float32)
    return torch.from_numpy(x).permute(0, 3, 1, 2) / 127.5 - 1


def panel(rows: list[torch.Tensor], path: Path) -> None:
    """Rows of 6 images each (6, 3, H, W), stacked: one column per scene (the last row: other scenes)."""
    grid = torch.cat([torch.cat(list(r[:6]), 2) for r in rows], 1)  # (3, rows·H, 6·W)
    Image.fromarray(((grid.permute(1, 2, 0) + 1) * 127.5).clamp(0, 255).byte().numpy()).save(path)


def main() -> None:
    a = parse()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    root, out = Path(a.data), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    src = load(sorted((root / "gta5/images").glob("*.png")))
    tgt = load(sorted((root / "cityscapes/leftImg8bit/train").glob("*/*.png"))[: a.ntarget])
    all_names = sorted(p.name for p in (root / "gta5_as_cityscapes/images").glob("*.png"))
    names = all_names[:64]  # the evaluation scenes: data.paired of conf/data/synthetic.yaml (limit 64)
    paired_src = load([root / "gta5/images" / n for n in names])
    paired = load([root / "gta5_as_cityscapes/images" / n for n in names])
    if a.supervised:  # the training pairs: every other scene
        src = load([root / "gta5/images" / n for n in all_names[64:]])
        src_renders = load([root / "gta5_as_cityscapes/images" / n for n in all_names[64:]])
    print("untranslated L1", (paired_src - paired).abs().mean().item(), flush=True)
    reference, paired_set = load_reference()
    real_targets = tgt[torch.linspace(0, len(tgt) - 1, 6).long()]  # (6, 3, H, W)

    def generator() -> ResnetGenerator:
        return ResnetGenerator(ngf=a.ngf, n_blocks=a.nb, upsample=a.up, **ARCHS[a.arch])

    g_s2t, g_t2s = generator(), generator()
    d_s, d_t = PatchDiscriminator(ndf=a.ndf, n_layers=a.dl), PatchDiscriminator(ndf=a.ndf, n_layers=a.dl)
    opt_g = torch.optim.Adam(itertools.chain(g_s2t.parameters(), g_t2s.parameters()), lr=a.lrg or a.lr,
                             betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(itertools.chain(d_s.parameters(), d_t.parameters()), lr=a.lr, betas=(0.5, 0.999))
    pool_s, pool_t = ImagePool(50, seed=1), ImagePool(50, seed=2)
    rng = np.random.default_rng(0)
    history: list[dict] = []
    started = time.time()

    def noisy(x: torch.Tensor) -> torch.Tensor:  # what D sees of (B, 3, H, W): (B, 3, H / dpool, W / dpool)
        x = torch.nn.functional.avg_pool2d(x, a.dpool) if a.dpool > 1 else x
        return x + a.dnoise * torch.randn_like(x) if a.dnoise > 0 else x

    def cyclegan_step(xs: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One update of the generators, then of the discriminators; (GAN, cycle, D) losses."""
        s2t, t2s = g_s2t(xs), g_t2s(xt)
        for d in (d_s, d_t):
            d.requires_grad_(False)
        loss_gan = gan_loss(d_t(noisy(s2t)), True) + gan_loss(d_s(noisy(t2s)), True)
        loss_cycle = cycle_loss(g_t2s(s2t), xs) + cycle_loss(g_s2t(t2s), xt)
        total = a.gan * loss_gan + a.cyc * loss_cycle
        if a.idt > 0:
            total = total + a.cyc * a.idt * (identity_loss(g_s2t(xt), xt) + identity_loss(g_t2s(xs), xs))
        opt_g.zero_grad()
        total.backward()
        opt_g.step()
        for d in (d_s, d_t):
            d.requires_grad_(True)
        loss_d = (discriminator_loss(d_t(noisy(xt)), d_t(noisy(pool_t.query(s2t.detach()))))
                  + discriminator_loss(d_s(noisy(xs)), d_s(noisy(pool_s.query(t2s.detach())))))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        return loss_gan, loss_cycle, loss_d

    for step in range(1, a.steps + 1):
        pick = rng.integers(len(src), size=a.bs)
        xs, xt = src[pick], tgt[rng.integers(len(tgt), size=a.bs)]  # (B, 3, H, W)
        flip = torch.from_numpy(rng.random(a.bs) < 0.5)[:, None, None, None]
        xs = torch.where(flip, xs.flip(-1), xs)
        if a.supervised:
            render = torch.where(flip, src_renders[pick].flip(-1), src_renders[pick])  # (B, 3, H, W)
            loss_gan = loss_d = torch.zeros(())
            loss_cycle = (g_s2t(xs) - render).abs().mean()  # logged as "cyc": the supervised L1
            opt_g.zero_grad()
            loss_cycle.backward()
            opt_g.step()
        else:
            loss_gan, loss_cycle, loss_d = cyclegan_step(xs, xt)
        if step % 50 == 0:
            print(f"  {step} g_gan {loss_gan.item():.3f} cyc {loss_cycle.item():.3f} d {loss_d.item():.3f}", flush=True)
        if step % a.eval_every == 0:
            with torch.no_grad():
                translated = g_s2t.eval()(paired_src)
                g_s2t.train()
            l1 = (translated - paired).abs().mean().item()
            score = translation_score(g_s2t, reference, paired_set)
            history.append({"step": step, "translation_l1": l1, "translation_score": score,
                            "translation_gain": reference.gain(score), "g_gan": loss_gan.item(),
                            "cycle": loss_cycle.item(), "d": loss_d.item(), "wall_s": round(time.time() - started, 1)})
            print(f"step {step} L1 {l1:.4f} score {score:.4f} gain {reference.gain(score):.3f} "
                  f"t {time.time() - started:.0f}s", flush=True)
            panel([paired_src, translated, paired, real_targets], out / f"{a.name}_{step}.png")
    torch.save(g_s2t.state_dict(), out / f"{a.name}_gs.pt")
    args = {**vars(a), "out": portable_path(a.out)}  # the record names no machine's folders
    (out / f"{a.name}.json").write_text(json.dumps({"args": args, "history": history}, indent=1))


if __name__ == "__main__":
    main()
