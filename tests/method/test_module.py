"""CycleSemModule's three optimizer steps, on tiny networks and without a Trainer (`cyclesem.method.harness`)."""

from __future__ import annotations

import copy
from functools import partial
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from cyclesem.method.classifier_copies import frozen
from cyclesem.method.harness import random_batch, without_trainer
from cyclesem.method.losses import semantic_loss
from cyclesem.method.module import CycleSemModule
from cyclesem.method.options import LossWeights, stylized_loss_weight
from cyclesem.models.discriminator import PatchDiscriminator
from cyclesem.models.generator import ResnetGenerator
from cyclesem.models.segmenter import UNet

H, W = 32, 32


def make_module(*, baseline: bool = False, lr: float = 1e-2, optimizer=torch.optim.Adam, for_trainer: bool = False,
                **kwargs) -> CycleSemModule:
    torch.manual_seed(0)
    nets = {} if baseline else dict(
        gen_s2t=ResnetGenerator(ngf=4, n_blocks=1), gen_t2s=ResnetGenerator(ngf=4, n_blocks=1),
        disc_s=PatchDiscriminator(ndf=4), disc_t=PatchDiscriminator(ndf=4),
        optimizer_g=partial(optimizer, lr=lr), optimizer_d=partial(optimizer, lr=lr),
    )
    module = CycleSemModule(segmenter=UNet(base_channels=4, depth=2), optimizer_seg=partial(optimizer, lr=lr),
                            pool_size=4, **nets, **kwargs)
    return module if for_trainer else without_trainer(module)


def make_batch(sides=("source", "target"), unlabeled_target: bool = False) -> dict:
    batch = random_batch(2, H, W, seed=1, sides=sides)
    if unlabeled_target:
        batch["target"]["label"].fill_(255)
    return batch


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters only: BatchNorm running statistics move with every forward in train mode."""
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before: dict, module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.named_parameters())


def test_each_step_updates_only_its_own_group():
    module = make_module()
    opt_g, opt_d, opt_seg = module.optimizers()
    batch = make_batch()
    groups = {"gen": [module.gen_s2t, module.gen_t2s], "disc": [module.disc_s, module.disc_t],
              "seg": [module.segmenter]}

    def states():
        return {name: [snapshot(n) for n in nets] for name, nets in groups.items()}

    def moved(before):
        return {name: any(changed(b, n) for b, n in zip(before[name], nets, strict=True)) for name, nets in groups.items()}

    fakes = module.translate(batch["source"]["image"], batch["target"]["image"])
    before = states()
    fused, ok = module.generator_step(opt_g, fakes, batch, {})
    assert ok and moved(before) == {"gen": True, "disc": False, "seg": False}
    before = states()
    assert module.discriminator_step(opt_d, fakes, batch["source"]["image"], batch["target"]["image"], {})
    assert moved(before) == {"gen": False, "disc": True, "seg": False}
    before = states()
    assert module.segmenter_step(opt_seg, fakes.source_as_target.detach(), batch["source"]["label"],
                                 batch["target"]["image"], batch["target"]["label"], fused, {})
    assert moved(before) == {"gen": False, "disc": False, "seg": True}


def test_discriminators_frozen_during_generator_step():
    module = make_module()
    batch = make_batch()
    fakes = module.translate(batch["source"]["image"], batch["target"]["image"])
    module.generator_step(module.optimizers()[0], fakes, batch, {})
    for p in [*module.disc_s.parameters(), *module.disc_t.parameters()]:
        assert p.grad is None and p.requires_grad  # no gradient reached them, and the freeze was undone
    assert all(p.grad is not None for p in module.gen_s2t.parameters())


@pytest.mark.parametrize("sem_source,seg_source", [(1.0, 1.0), (0.5, 2.0)])
def test_fused_semantic_gradient_equals_sequential(sem_source, seg_source):
    """One segmenter forward on source_as_target feeding both groups gives the gradients of the
    straightforward computation: generator loss with F_T frozen, then the segmenter loss on detached fakes."""
    loss = dict(sem_source=sem_source, seg_source=seg_source, sem_target=1.0, seg_target=1.0)
    fused_module = make_module(lr=0.0, optimizer=torch.optim.SGD, loss=loss)
    reference = copy.deepcopy(fused_module)
    batch = make_batch()
    assert fused_module.fuses_source_term()
    fused_module.training_step(batch, 0)

    # sequential reference on an identical copy
    x_s, y_s = batch["source"]["image"], batch["source"]["label"]
    x_t, y_t = batch["target"]["image"], batch["target"]["label"]
    fakes = reference.translate(x_s, x_t)
    with frozen(reference.disc_s, reference.disc_t, reference.segmenter):
        g_total = reference.weights.gan * (
            torch.mean((reference.disc_t(fakes.source_as_target) - 1) ** 2)
            + torch.mean((reference.disc_s(fakes.target_as_source) - 1) ** 2))
        g_total = g_total + reference.weights.cycle * ((fakes.source_rec - x_s).abs().mean()
                                                       + (fakes.target_rec - x_t).abs().mean())
        g_total = g_total + reference.weights.cycle * reference.weights.identity * (
            (reference.gen_s2t(x_t) - x_t).abs().mean() + (reference.gen_t2s(x_s) - x_s).abs().mean())
        g_total = g_total + sem_source * semantic_loss(reference.segmenter(fakes.source_as_target), y_s)
        g_total = g_total + semantic_loss(reference.segmenter(fakes.target_rec), y_t)
    g_total.backward()
    seg_total = (seg_source * semantic_loss(reference.segmenter(fakes.source_as_target.detach()), y_s)
                 + semantic_loss(reference.segmenter(x_t), y_t))
    seg_total.backward()

    for net in ("gen_s2t", "gen_t2s", "segmenter"):
        for (name, p_fused), p_ref in zip(getattr(fused_module, net).named_parameters(),
                                          getattr(reference, net).parameters(), strict=True):
            torch.testing.assert_close(p_fused.grad, p_ref.grad, rtol=1e-4, atol=1e-6, msg=f"{net}.{name}")
    # F_T's running statistics moved only with the segmenter's own training forwards (stylized source, target),
    # not with the generators' pass through it on the reconstructed target
    for (name, b_fused), b_ref in zip(fused_module.segmenter.named_buffers(), reference.segmenter.buffers(),
                                      strict=True):
        torch.testing.assert_close(b_fused, b_ref, rtol=1e-5, atol=1e-6, msg=f"segmenter buffer {name}")


@pytest.mark.parametrize("mode", ["joint", "ema"])
def test_generator_step_leaves_the_segmenter_buffers_alone(mode):
    """The classifier the generators' semantic terms go through (F_T, or the ema copy) keeps its BatchNorm running
    statistics through the generator step, even in train mode (``module.train()`` puts the copy in train mode
    too, as the benchmark's module does), where a plain forward on the same fakes moves them."""
    module = make_module(semantic_classifier=mode, loss=dict(seg_source=0.0))  # seg_source 0: no fused forward
    module.train()
    classifier = module.semantic_classifier()
    assert classifier.training and classifier is (module.segmenter if mode == "joint" else module.sem_net)
    batch = make_batch()
    buffers = {k: v.clone() for k, v in classifier.named_buffers()}
    fakes = module.translate(batch["source"]["image"], batch["target"]["image"])
    module.generator_step(module.optimizers()[0], fakes, batch, {})
    assert all(torch.equal(buffers[k], v) for k, v in classifier.named_buffers()), mode
    assert all(n.track_running_stats for n in classifier.modules()
               if isinstance(n, torch.nn.BatchNorm2d))  # the freeze was undone
    with torch.no_grad():  # the check above can fail: an unfrozen forward in train mode moves them
        classifier(fakes.target_rec)
    assert not torch.equal(buffers["stem.1.running_mean"], classifier.get_buffer("stem.1.running_mean"))


def test_baseline_trains_segmenter_on_raw_images():
    module = make_module(baseline=True)
    before = snapshot(module.segmenter)
    module.training_step(make_batch(), 0)
    assert not module.has_gan and changed(before, module.segmenter)


@pytest.mark.parametrize("sides", [("source",), ("target",)])
def test_one_domain_batches_skip_gan_terms(sides):
    module = make_module()
    gen_before, seg_before = snapshot(module.gen_s2t), snapshot(module.segmenter)
    module.training_step(make_batch(sides), 0)
    assert not changed(gen_before, module.gen_s2t)  # no translation without both domains
    assert changed(seg_before, module.segmenter)


def test_unlabeled_target_contributes_no_ce():
    module = make_module()
    logs: dict = {}
    batch = make_batch(unlabeled_target=True)
    fakes = module.translate(batch["source"]["image"], batch["target"]["image"])
    module.generator_step(module.optimizers()[0], fakes, batch, logs)
    assert logs["g_sem_target"].item() == 0.0
    assert torch.isfinite(logs["g_total"])


def test_ema_classifier_tracks_segmenter_and_is_not_stepped_by_generators():
    module = make_module(semantic_classifier="ema", ema_decay=0.5)
    ema_before = snapshot(module.sem_net)
    batch = make_batch()
    fakes = module.translate(batch["source"]["image"], batch["target"]["image"])
    module.generator_step(module.optimizers()[0], fakes, batch, {})
    assert not changed(ema_before, module.sem_net)
    assert all(p.grad is None for p in module.segmenter.parameters())  # not fused: F_T untouched by step 1
    module.segmenter_step(module.optimizers()[2], fakes.source_as_target.detach(), batch["source"]["label"],
                          batch["target"]["image"], batch["target"]["label"], None, {})
    seg = dict(module.segmenter.named_parameters())
    for name, p in module.sem_net.named_parameters():  # halfway between the old copy and the stepped F_T
        torch.testing.assert_close(p, 0.5 * ema_before[name] + 0.5 * seg[name].detach())


def test_semantic_classifier_none_gives_the_generators_no_semantic_terms():
    module = make_module(semantic_classifier="none")
    assert module.sem_net is None and not module.fuses_source_term()
    batch, logs = make_batch(), {}
    fakes = module.translate(batch["source"]["image"], batch["target"]["image"])
    module.generator_step(module.optimizers()[0], fakes, batch, logs)
    assert "g_sem_source" not in logs and "g_sem_target" not in logs
    expected = logs["g_gan"] + 10.0 * logs["g_cycle"] + 10.0 * 0.5 * logs["g_identity"]
    torch.testing.assert_close(logs["g_total"], expected)
    assert all(p.grad is None for p in module.segmenter.parameters())


def test_nonfinite_losses_are_skipped_then_stop_training():
    module = make_module(max_nonfinite_steps=2)
    batch = make_batch()
    batch["source"]["image"][0, 0, 0, 0] = float("nan")
    gen_before = snapshot(module.gen_s2t)
    module.training_step(batch, 0)
    assert module.nonfinite.total == 1 and not changed(gen_before, module.gen_s2t)
    with pytest.raises(FloatingPointError, match="2 consecutive"):
        module.training_step(batch, 1)


def buffers_of(module: CycleSemModule) -> dict[str, torch.Tensor]:
    """Every buffer of every network (segmenter, the ema copy, generators, discriminators)."""
    return {k: v.clone() for k, v in module.named_buffers() if not k.startswith(("class_weight", "sem_net_ready"))}


@pytest.mark.parametrize("mode", ["joint", "ema"])
@pytest.mark.parametrize("side", ["source", "target"])
def test_a_skipped_step_leaves_every_buffer_as_it_was(mode, side):
    """A NaN pixel in one image: every group skips its update, and no buffer keeps a trace of the batch, though
    F_T ran on it in train mode (the fused source term, its own step) before the losses could be checked; the
    ema copy, updated from F_T at the next good step, stays finite."""
    module = make_module(semantic_classifier=mode)
    module.train()
    module.training_step(make_batch(), 0)  # a good step first: the statistics are not their initial values
    before = buffers_of(module)
    assert any("running_mean" in k for k in before) and all(torch.isfinite(v.float()).all() for v in before.values())
    params = snapshot(module)
    batch = make_batch()
    batch[side]["image"][0, 0, 0, 0] = float("nan")
    module.training_step(batch, 1)
    assert module.nonfinite.total == 1 and not changed(params, module)
    after = buffers_of(module)
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert not moved, moved
    module.training_step(make_batch(), 2)
    assert all(torch.isfinite(v.float()).all() for v in buffers_of(module).values())


def test_source_share_rule_scales_stylized_weight():
    loss = LossWeights(seg_source=2.0, seg_source_rule="source_share")
    assert stylized_loss_weight(loss, 0.1) == pytest.approx(2.0)
    assert stylized_loss_weight(loss, 0.8) == pytest.approx(2.0 * 0.2 / 0.8)
    assert stylized_loss_weight(LossWeights(seg_source=2.0), 0.8) == 2.0  # constant: as given


# (real_frac, weight) with seg_source=2, seg_target=1, hand-computed; f = real_frac
STYLIZED_WEIGHTS = {
    "constant": [(0.0, 2.0), (0.1, 2.0), (0.5, 2.0), (0.9, 2.0), (1.0, 2.0)],
    # 2 · (1 − f) / max(f, 1 − f): 2·1/1, 2·0.9/0.9, 2·0.5/0.5, 2·0.1/0.9, 2·0/1
    "source_share": [(0.0, 2.0), (0.1, 2.0), (0.5, 2.0), (0.9, 0.2 / 0.9), (1.0, 0.0)],
    # seg_target · (1 − f) / f, seg_source at f = 0: 2, 1·0.9/0.1, 1·0.5/0.5, 1·0.1/0.9, 1·0/1
    "labelled_share": [(0.0, 2.0), (0.1, 9.0), (0.5, 1.0), (0.9, 1 / 9), (1.0, 0.0)],
    # progress 0: seg_source at every fraction
    "anneal": [(0.0, 2.0), (0.1, 2.0), (0.5, 2.0), (0.9, 2.0), (1.0, 2.0)],
}


@pytest.mark.parametrize("rule", sorted(STYLIZED_WEIGHTS))
def test_stylized_weight_of_each_rule_across_the_fractions(rule):
    loss = LossWeights(seg_source=2.0, seg_target=1.0, seg_source_rule=rule, seg_source_end=0.5)
    for real_frac, expected in STYLIZED_WEIGHTS[rule]:
        assert stylized_loss_weight(loss, real_frac) == pytest.approx(expected), real_frac


def test_labelled_share_gives_stylized_images_their_share_of_the_labelled_set():
    """w / (w + seg_target) = 1 − real_frac: 0.9 of the CE weight at 10 % real, where `constant` gives 1/2."""
    for seg_target in (1.0, 0.5):
        loss = LossWeights(seg_target=seg_target, seg_source_rule="labelled_share")
        for real_frac in (0.025, 0.1, 0.3, 0.5, 0.9):
            w = stylized_loss_weight(loss, real_frac)
            assert w / (w + seg_target) == pytest.approx(1 - real_frac)
    constant = stylized_loss_weight(LossWeights(), 0.1)
    assert constant / (constant + LossWeights().seg_target) == 0.5


def test_anneal_falls_linearly_to_seg_source_end():
    loss = LossWeights(seg_source=2.0, seg_source_rule="anneal", seg_source_end=0.5)
    for real_frac in (0.0, 0.1, 0.5, 0.9, 1.0):  # the same at every fraction
        assert [stylized_loss_weight(loss, real_frac, p) for p in (0.0, 0.5, 1.0)] == [2.0, 1.25, 0.5]
    to_zero = LossWeights(seg_source_rule="anneal")  # seg_source_end defaults to 0
    assert [stylized_loss_weight(to_zero, 0.1, p) for p in (0.0, 0.25, 1.0)] == [1.0, 0.75, 0.0]
    assert stylized_loss_weight(LossWeights(seg_source=2.0), 0.1, 0.7) == 2.0  # the other rules ignore progress


@pytest.mark.parametrize("real_frac,progress,message", [
    (1.5, 0.0, r"real_frac=1.5: expected a float in \[0, 1\]"),
    (0.1, -0.1, r"progress=-0.1: expected a float in \[0, 1\]"),
    (0.1, 1.2, r"progress=1.2: expected a float in \[0, 1\]"),
])
def test_stylized_weight_refuses_values_out_of_range(real_frac, progress, message):
    with pytest.raises(ValueError, match=message):
        stylized_loss_weight(LossWeights(seg_source_rule="anneal"), real_frac, progress)


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="sometimes"):
        LossWeights(seg_source_rule="sometimes")


class _WeightPerBatch(L.Callback):
    """The stylized weight the module used and logged in each training batch."""

    def __init__(self) -> None:
        self.used: list[float] = []
        self.logged: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.used.append(pl_module.seg_source_weight)
        self.logged.append(float(trainer.callback_metrics["train/seg_source_weight_step"]))


@pytest.mark.parametrize("baseline", [True, False])
def test_module_uses_the_annealed_weight_of_each_training_batch(baseline, tmp_path):
    """A real fit of 2 epochs × 3 batches with seg_source 1 → 0.25: batch k of 6 weighs 1 − 0.75 · k / 5."""
    loss = LossWeights(seg_source=1.0, seg_source_rule="anneal", seg_source_end=0.25)
    module = make_module(baseline=baseline, loss=loss, seg_source_weight=partial(stylized_loss_weight, loss, 0.5),
                         for_trainer=True)
    batches = [make_batch() for _ in range(3)]
    record = _WeightPerBatch()
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[record],
                        default_root_dir=tmp_path)
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    expected = [1.0 - 0.75 * k / 5 for k in range(6)]
    assert record.used == pytest.approx(expected) and record.logged == pytest.approx(expected)


def test_a_weight_that_follows_progress_needs_a_finite_run(tmp_path):
    loss = LossWeights(seg_source_rule="anneal")
    module = make_module(baseline=True, loss=loss, seg_source_weight=partial(stylized_loss_weight, loss, 0.5),
                         for_trainer=True)
    trainer = L.Trainer(max_epochs=-1, max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    with pytest.raises(ValueError, match="seg_source_rule=anneal.*trainer.max_epochs"):
        trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader([make_batch()], batch_size=None))


def test_stylized_weight_passed_in_scales_the_segmenter_source_term():
    """The module takes the stylized-loss weight as a number: half the weight, half the source-CE gradient."""
    grads = []
    for weight in (1.0, 0.5):
        module = make_module(baseline=True, lr=0.0, optimizer=torch.optim.SGD, seg_source_weight=weight,
                             loss=dict(seg_target=0.0))
        module.training_step(make_batch(("source",)), 0)
        grads.append(torch.cat([p.grad.flatten() for p in module.segmenter.parameters()]))
    torch.testing.assert_close(grads[1], 0.5 * grads[0])


def test_class_weight_passed_in_weights_the_cross_entropy():
    """The module's segmenter CE with class weights is the weighted mean Σ w_y·nll / Σ w_y over the pixels,
    computed here from the log-softmax by hand."""
    weight = torch.rand(19) + 0.5
    logs_plain, logs_weighted = {}, {}
    batch = make_batch()
    for logs, kwargs in ((logs_plain, {}), (logs_weighted, {"class_weight": weight})):
        module = make_module(baseline=True, lr=0.0, **kwargs)
        module.segmenter_step(module.optimizers(), batch["source"]["image"], batch["source"]["label"], None, None,
                              None, logs)
    reference = make_module(baseline=True)
    labels = batch["source"]["label"]  # (B, H, W), no ignored pixel
    with torch.no_grad():
        log_p = torch.log_softmax(reference.segmenter(batch["source"]["image"]).double(), dim=1)  # (B, C, H, W)
    nll = -log_p.gather(1, labels[:, None])[:, 0]  # (B, H, W)
    pixel_weight = weight.double()[labels]
    expected = (pixel_weight * nll).sum() / pixel_weight.sum()
    torch.testing.assert_close(logs_weighted["seg_source"].double(), expected, rtol=1e-5, atol=0)
    torch.testing.assert_close(logs_plain["seg_source"].double(), nll.mean(), rtol=1e-5, atol=0)
    assert not torch.equal(logs_weighted["seg_source"], logs_plain["seg_source"])


def test_gan_networks_all_or_none():
    with pytest.raises(ValueError, match="or none"):
        CycleSemModule(segmenter=UNet(base_channels=4, depth=2), optimizer_seg=partial(torch.optim.Adam),
                       gen_s2t=ResnetGenerator(ngf=4, n_blocks=1))


def test_frozen_classifier_is_what_the_generators_see_and_never_moves():
    module = make_module(semantic_classifier="frozen")
    assert not module.fuses_source_term()  # the source CE goes through the frozen copy, not F_T
    frozen_before, seg_before = snapshot(module.sem_net), snapshot(module.segmenter)
    for step in range(2):
        module.training_step(make_batch(), step)
    assert not changed(frozen_before, module.sem_net) and changed(seg_before, module.segmenter)
    # the generators' semantic loss is the frozen copy's: replacing the copy changes it
    batch = make_batch()
    fakes = module.translate(batch["source"]["image"], batch["target"]["image"])
    with torch.no_grad():
        through_copy = semantic_loss(module.sem_net(fakes.source_as_target), batch["source"]["label"])
        through_segmenter = semantic_loss(module.segmenter(fakes.source_as_target), batch["source"]["label"])
    logs: dict = {}
    module.generator_step(module.optimizers()[0], fakes, batch, logs)
    torch.testing.assert_close(logs["g_sem_source"], through_copy)
    assert not torch.allclose(logs["g_sem_source"], through_segmenter)


def test_the_two_image_pools_flip_their_own_coins():
    module = make_module()
    images = torch.rand(8, 3, 4, 4)
    for pool in (module.streams.pool_s, module.streams.pool_t):
        pool.query(images[:4])  # fill both (size 4) with the same images
    swapped = [[not torch.equal(a, b) for a, b in zip(pool.query(images[4:]), images[4:], strict=True)]
               for pool in (module.streams.pool_s, module.streams.pool_t)]
    assert module.streams.pool_s._generator.initial_seed() != module.streams.pool_t._generator.initial_seed()
    assert swapped[0] != swapped[1]  # one seed for both would swap the same positions


def test_nonfinite_fakes_skip_the_discriminator_step_and_never_enter_a_pool():
    module = make_module()
    batch = make_batch()
    fakes = module.translate(batch["source"]["image"], batch["target"]["image"])
    fakes.source_as_target = fakes.source_as_target.detach().clone()
    fakes.source_as_target[0, 0, 0, 0] = float("nan")
    disc_before = snapshot(module.disc_t)
    assert not module.discriminator_step(module.optimizers()[1], fakes, batch["source"]["image"],
                                         batch["target"]["image"], {})
    assert len(module.streams.pool_s) == len(module.streams.pool_t) == 0 and not changed(disc_before, module.disc_t)


def test_fp16_mixed_precision_is_refused_with_a_message():
    module = make_module()
    module.trainer = SimpleNamespace(precision="16-mixed")  # Lightning itself refuses fp16 on a CPU
    with pytest.raises(ValueError, match="32-true or bf16-mixed"):
        module.setup("fit")


class Recorder(torch.nn.Module):
    """A "discriminator" that keeps what it was shown."""

    def __init__(self, seen: list[torch.Tensor]) -> None:
        super().__init__()
        self.scale, self.seen = torch.nn.Parameter(torch.ones(1)), seen

    def forward(self, image):
        self.seen.append(image.detach().clone())
        return image.mean((1, 2, 3), keepdim=True) * self.scale


def discriminator_inputs(disc_noise: float) -> list[torch.Tensor]:
    """What the discriminators are shown in one training step of a module with recorders as discriminators."""
    seen: list[torch.Tensor] = []
    module = make_module(disc_noise=disc_noise)
    module.disc_s, module.disc_t = Recorder(seen), Recorder(seen)
    module.optimizers = without_trainer(module).optimizers  # optimizers over the recorders' parameters
    module.training_step(make_batch(), 0)
    return seen


def test_instance_noise_reaches_every_discriminator_input_with_its_std():
    seen: list[torch.Tensor] = []
    image = torch.zeros(4, 3, 16, 16)
    quiet, noisy = make_module(), make_module(disc_noise=0.1)
    assert torch.equal(quiet.judge(Recorder(seen), image), torch.zeros(4, 1, 1, 1))
    noisy.judge(Recorder(seen), image)
    assert abs(seen[-1].std().item() - 0.1) < 0.01 and abs(seen[-1].mean().item()) < 0.01
    # both steps go through judge: a real batch and a pooled fake batch per discriminator, one fake each in G's
    # step. The same module without noise shows the same images (the fakes are computed before any update), so
    # the difference is the noise alone: std 0.1 on each of the 6 inputs, a fresh draw each time.
    clean, noisy_inputs = discriminator_inputs(0.0), discriminator_inputs(0.1)
    assert len(clean) == len(noisy_inputs) == 6
    noise = [n - c for n, c in zip(noisy_inputs, clean, strict=True)]
    assert all(abs(d.std().item() - 0.1) < 0.01 and abs(d.mean().item()) < 0.01 for d in noise)
    assert not any(torch.allclose(noise[0], d) for d in noise[1:])


def test_instance_noise_leaves_the_global_random_stream_alone():
    """The noise comes from the module's own generator: a training step draws nothing from the process's global
    stream, which the data loader draws its base seed from (so a resume that restores it draws the same noise)."""
    seen: list[torch.Tensor] = []
    module = make_module(disc_noise=0.1)
    module.disc_s, module.disc_t = Recorder(seen), Recorder(seen)
    module.optimizers = without_trainer(module).optimizers
    before = torch.get_rng_state()
    module.training_step(make_batch(), 0)
    assert len(seen) == 6 and torch.equal(torch.get_rng_state(), before)


def test_each_rank_draws_its_own_pool_coins_and_noise():
    """Rank 0 keeps a single-process run's streams; another rank seeds its own (streams.py)."""
    single, rank1 = make_module(disc_noise=0.1), make_module(disc_noise=0.1)
    rank1.streams.for_rank(1)
    image = torch.zeros(2, 3, 8, 8)
    assert not torch.equal(single.streams.noise_like(image), rank1.streams.noise_like(image))
    seeds = {m.streams.pool_s._generator.initial_seed() for m in (single, rank1)}
    seeds |= {m.streams.pool_t._generator.initial_seed() for m in (single, rank1)}
    assert len(seeds) == 4
    rank0 = make_module(disc_noise=0.1)
    rank0.streams.for_rank(0)
    assert rank0.streams.pool_s._generator.initial_seed() == single.streams.pool_s._generator.initial_seed()


def test_apple_mps_is_refused_in_one_line():
    module = make_module()
    module.trainer = SimpleNamespace(precision="32-true", strategy=SimpleNamespace(root_device=torch.device("mps")),
                                     global_rank=0)
    with pytest.raises(ValueError, match=r"does not train on Apple MPS .*trainer.accelerator=cpu"):
        module.setup("fit")
    module.trainer = SimpleNamespace(precision="32-true", strategy=SimpleNamespace(root_device=torch.device("cpu")),
                                     global_rank=0)
    module.setup("fit")  # the CPU passes


def test_a_frozen_classifier_that_was_never_pretrained_is_refused():
    module = make_module(semantic_classifier="frozen")
    module.trainer = SimpleNamespace(ckpt_path="runs/ema/last.ckpt", max_epochs=1, num_training_batches=1,
                                     current_epoch=0)
    with pytest.raises(ValueError, match=r"frozen classifier of checkpoint runs/ema/last.ckpt was never pre-trained"):
        module.on_train_start()
    module.sem_net_ready.fill_(True)
    module.on_train_start()
