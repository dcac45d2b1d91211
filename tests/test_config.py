"""Every config composes; bad values stop with one clear message before any output is written."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_object
from omegaconf import OmegaConf

from cyclesem.runtime.config import ConfigError, jobs_per_machine, scored_splits, val_interval, validate
from cyclesem.study.sweep_progress import sweep_job_configs
from tests.conftest import CONF_DIR, REPO, compose_config


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def targets(node) -> list[str]:
    """Every ``_target_`` in a composed (resolved) config."""
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "_target_"] + [t for v in node.values() for t in targets(v)]
    if isinstance(node, list):
        return [t for v in node for t in targets(v)]
    return []


def assert_targets_import(cfg) -> None:
    for target in targets(OmegaConf.to_container(cfg, resolve=True)):  # every interpolation resolves, too
        assert callable(get_object(target)), target


# one value per option that only that option sets: the composed config must show the choice took effect
OPTION_VALUES = {
    "data": {"synthetic": ("data.source.root", "synthetic_palette0.25/gta5"), "gta5_cityscapes": ("data.val_batch_size", 2)},
    "model": {"cyclesem": ("model.style_transfer", True), "baseline": ("model.style_transfer", False)},
    "trainer": {"cpu": ("trainer.precision", "32-true"), "gpu": ("trainer.precision", "bf16-mixed"),
                "ddp": ("trainer.use_distributed_sampler", False), "ddp_cpu": ("trainer.devices", 2)},
    "logger": {"wandb": ("logger.wandb.offline", True), "csv": ("logger.csv.name", "csv"),
               "tensorboard": ("logger.tensorboard.name", "tensorboard"), "none": ("logger", {})},
    "callbacks": {"default": ("callbacks.image_panels.every_n_steps", 200)},
    "paths": {"default": ("paths.data_dir", "data")},
}


@pytest.mark.parametrize("group", sorted(OPTION_VALUES))
def test_every_group_option_composes(group, tmp_path, monkeypatch):
    monkeypatch.delenv("CYCLESEM_DATA_DIR", raising=False)
    assert set(group_options(group)) == set(OPTION_VALUES[group])  # a new option gets a line above
    for option, (key, expected) in OPTION_VALUES[group].items():
        cfg = compose_config("train", [f"{group}={option}"], tmp_path)
        assert HydraConfig.get().runtime.choices[group] == option
        value = OmegaConf.select(cfg, key)
        assert value == expected or (isinstance(value, str) and value.endswith(str(expected))), (option, key, value)
        assert_targets_import(cfg)
        validate(cfg)


def flat(node: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_composes(experiment, tmp_path):
    """The composed config holds every value the experiment file sets (its sweep is Hydra's, not the job's)."""
    cfg = compose_config("train", [f"+experiment={experiment}"], tmp_path)
    own = yaml.safe_load((CONF_DIR / "experiment" / f"{experiment}.yaml").read_text()) or {}
    values = {k: v for k, v in flat(own).items() if not k.startswith(("hydra.", "defaults"))}
    for key, expected in values.items():
        if isinstance(expected, str) and "${" in expected:  # an interpolation: compare what it resolves to
            probe = OmegaConf.create({**OmegaConf.to_container(cfg), "_probe": expected})
            expected = probe._probe
        assert OmegaConf.select(cfg, key) == expected, (experiment, key)
    for override in own.get("defaults", []):  # `override /data: gta5_cityscapes`; a plain name includes a preset
        if not isinstance(override, dict):
            continue
        (group, option), = override.items()
        assert HydraConfig.get().runtime.choices[group.removeprefix("override /")] == option
    assert_targets_import(cfg)
    validate(cfg)


@pytest.mark.parametrize("name", ["evaluate", "stylize"])
def test_entry_point_configs_compose(name, tmp_path):
    """Each inference entry point's config composes with every interpolation resolving and a device its
    resolver takes, and checks its inputs before anything is written: its Hydra callback runs the pre-flight
    checks of this entry point, which name the missing checkpoint."""
    from cyclesem.runtime.device import resolve_device
    from cyclesem.runtime.preflight import preflight

    overrides = ["ckpt_path=x.ckpt"] + (["input_dir=a", "output_dir=b"] if name == "stylize" else [])
    cfg = compose_config(name, overrides, tmp_path)
    assert_targets_import(cfg)
    callback = HydraConfig.get().callbacks.preflight
    assert callback._target_ == "cyclesem.runtime.preflight.ValidateConfig" and callback.task == name
    assert resolve_device(cfg.device).type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match=r"^ckpt_path=x.ckpt does not exist: expected a checkpoint file"):
        preflight(cfg, name)


@pytest.mark.parametrize("cores,threads,jobs", [(16, 1, 16), (16, 4, 4), (16, 3, 5), (16, 32, 1), (16, None, 1),
                                                (None, 2, 1)])
def test_jobs_per_machine_fits_the_cores(cores, threads, jobs, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    assert jobs_per_machine(threads) == jobs


@pytest.mark.parametrize("accelerator", ["auto", "gpu", "mps"])
def test_an_accelerator_that_means_apple_mps_is_refused(accelerator, tmp_path, monkeypatch):
    """Lightning's auto and gpu choices take Apple MPS before CUDA; cyclesem refuses it in one line (its float64
    running sums do not exist there). Tested by making MPS look available."""
    from lightning.pytorch.accelerators import MPSAccelerator

    monkeypatch.setattr(MPSAccelerator, "is_available", staticmethod(lambda: True))
    cfg = compose_config("train", [f"trainer.accelerator={accelerator}"], tmp_path)
    with pytest.raises(ConfigError, match=rf"^trainer.accelerator={accelerator} means Apple MPS here, where "
                                          r"cyclesem does not train .*: set trainer.accelerator=cpu$"):
        validate(cfg)
    validate(compose_config("train", ["trainer.accelerator=cpu"], tmp_path))


def test_default_config_matches_the_documented_defaults(tmp_path):
    cfg = compose_config("train", [], tmp_path)
    choices = HydraConfig.get().runtime.choices
    assert (choices.data, choices.model, choices.trainer, choices.logger) == ("synthetic", "cyclesem", "cpu", "wandb")
    assert cfg.logger.wandb.offline is True
    assert cfg.data.real_frac == 0.1


def test_pavement_share_names_the_pair_root_and_source_filter_defaults_off(tmp_path, monkeypatch):
    monkeypatch.delenv("CYCLESEM_DATA_DIR", raising=False)
    default = compose_config("train", [], tmp_path)
    assert default.data.prepare.root == "data/synthetic_palette0.25" and default.data.prepare.pavement_share == 0.0
    assert default.data.source_filter.value == "none" and default.data.source.root == "data/synthetic_palette0.25/gta5"
    cfg = compose_config("train", ["data.prepare.pavement_share=0.3", "data.source_filter=pavement"], tmp_path)
    assert cfg.data.prepare.root == "data/synthetic_pavement0.3_palette0.25"
    assert cfg.reference.pair_manifest == "data/synthetic_pavement0.3_palette0.25/manifest.json"
    validate(cfg)


def test_palette_shift_names_the_pair_root(tmp_path, monkeypatch):
    """Only the first pair (palette_shift 1) keeps the root ``synthetic``; the default is the calibrated pair, 0.25."""
    monkeypatch.delenv("CYCLESEM_DATA_DIR", raising=False)
    assert compose_config("train", [], tmp_path).data.prepare.palette_shift == 0.25
    for shift, name in (("0", "synthetic_palette0"), ("0.25", "synthetic_palette0.25"), ("1", "synthetic")):
        cfg = compose_config("train", [f"data.prepare.palette_shift={shift}"], tmp_path)
        assert cfg.data.prepare.root == f"data/{name}" and cfg.reference.pair_manifest == f"data/{name}/manifest.json"
    cfg = compose_config("train", ["data.prepare.palette_shift=0.5", "data.prepare.pavement_share=0.3"], tmp_path)
    assert cfg.data.prepare.root == "data/synthetic_pavement0.3_palette0.5"


@pytest.mark.parametrize("override,key,expected", [
    ("data.real_frac=1.5", "data.real_frac", "[0, 1]"),
    ("data.real_frac=-0.1", "data.real_frac", "[0, 1]"),
    ("data.num_labeled=0", "data.num_labeled", ">= 1"),
    ("data.num_labeled=-5", "data.num_labeled", ">= 1"),
    ("model.loss.cycle=-1", "model.loss.cycle", ">= 0"),
    ("model.ema_decay=1.0", "model.ema_decay", "[0, 1)"),
    ("trainer.precision=16-mixed", "trainer.precision", "32-true or bf16-mixed"),
    ("val_points=0", "val_points", "null (every epoch) or an integer >= 1"),
    ("data.prepare.pavement_share=1.5", "data.prepare.pavement_share=1.5", "a float in [0, 1]"),
    ("data.prepare.pavement_share=-0.1", "data.prepare.pavement_share=-0.1", "a float in [0, 1]"),
    ("data.prepare.pavement_share=abc", "data.prepare.pavement_share='abc'", "a float in [0, 1]"),
    ("data.prepare.palette_shift=1.5", "data.prepare.palette_shift=1.5", "a float in [0, 1]"),
    ("data.prepare.palette_shift=-0.5", "data.prepare.palette_shift=-0.5", "a float in [0, 1]"),
    ("data=gta5_cityscapes data.source_filter=pavement data.source.split_file=clean.txt", "data.source.split_file",
     "null with data.source_filter=pavement"),
    ("model.loss.seg_source_end=-1", "model.loss.seg_source_end", ">= 0"),
    ("data=gta5_cityscapes test_checkpoint=best", "test_checkpoint='best'",
     "expected last: checkpoints would be selected on None/val, the split the test stage scores"),
    ("data.target_test.split=val", "test_checkpoint='best'", "data/synthetic_palette0.25/cityscapes/val, the split the test stage"),
    # the synthetic pair's studies pin its palette: on the real data that is a pair to shape that is not there
    ("+experiment=gap_study data=gta5_cityscapes method=baseline", "data.prepare={'palette_shift': 0.25}",
     "expected data=synthetic, or +experiment=gta5_study"),
    ("+experiment=real_frac_study data=gta5_cityscapes method=baseline", "data.prepare={'palette_shift': 1.0}",
     "renders nothing"),
])
def test_validate_names_key_and_range(override, key, expected, tmp_path):
    cfg = compose_config("train", override.split(), tmp_path)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert key in str(err.value) and expected in str(err.value)


@pytest.mark.parametrize("max_epochs,val_points,interval", [
    (48, 6, 8), (48, 4, 12), (48, 1, 48), (6, 3, 2),  # val_points divides max_epochs: exactly that many
    (48, 5, 8),  # 4 or 6 validations are as close: the more
    (10, 3, 5), (7, 3, 7),  # the closest count whose interval divides max_epochs, so the last epoch is validated
    (6, None, 1), (100, 200, 1),
])
def test_val_interval_ends_on_the_last_epoch(max_epochs, val_points, interval):
    assert val_interval(max_epochs, val_points) == interval and max_epochs % interval == 0


def test_val_points_set_the_trainer_unless_it_is_set_itself(tmp_path):
    assert compose_config("train", [], tmp_path).trainer.check_val_every_n_epoch == 2  # 6 epochs, 3 points
    cfg = compose_config("train", ["trainer.max_epochs=48", "val_points=4"], tmp_path)
    assert cfg.trainer.check_val_every_n_epoch == 12 and cfg.trainer.limit_val_batches is None
    assert compose_config("train", ["val_points=4", "trainer.check_val_every_n_epoch=5"],
                          tmp_path).trainer.check_val_every_n_epoch == 5
    assert compose_config("train", ["test_checkpoint=last"], tmp_path).trainer.limit_val_batches == 0
    assert compose_config("train", ["test_checkpoint=last", "trainer.limit_val_batches=1.0"],
                          tmp_path).trainer.limit_val_batches == 1.0


def run_cli(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyclesem.train", *overrides], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("override,message", [
    ("data.real_frac=1.5", "data.real_frac=1.5 is out of range: expected a float in [0, 1]"),
    ("data.num_labeled=0", "data.num_labeled=0 is out of range: expected an integer >= 1"),
    ("data.real_frac=abc", "data.real_frac"),  # wrong type: OmegaConf names the key
    ("data.foo=1", "foo"),  # unknown key
    ("model.semantic_classifier=colluding", "semantic_classifier"),
    ("data.prepare.pavement_share=1.5", "data.prepare.pavement_share=1.5 is out of range: expected a float in [0, 1]"),
    ("data.source_filter=roads", "source_filter"),
    ("model.loss.seg_source_rule=sometimes", "seg_source_rule"),
    ("model.compile_mode=fastest", "model.compile_mode='fastest' is out of range: expected null or one of default"),
])
def test_cli_rejects_bad_values_without_creating_the_run_dir(override, message, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(override, f"hydra.run.dir={run_dir}", "logger=none")
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not run_dir.exists()


def test_cli_prints_composed_config():
    proc = run_cli("--cfg", "job", "data.real_frac=0.1")
    assert proc.returncode == 0, proc.stderr
    printed = OmegaConf.create(proc.stdout)
    assert printed.data.real_frac == 0.1 and printed.model._target_ == "cyclesem.method.module.CycleSemModule"


def sweep_jobs(overrides: list[str], sweep_dir) -> list[tuple[list[str], tuple[str | None, str | None]]]:
    """Each job of ``python -m cyclesem.train -m <overrides>`` (a preset's sweep, or one job without one), composed
    as that job will be: its overrides and (selection split, test split) as `cyclesem.train` records them."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = GlobalHydra.instance().hydra.compose_config(
            "train", [*overrides, f"hydra.sweep.dir={sweep_dir}"], run_mode=RunMode.MULTIRUN)
        return [(job, scored_splits(cfg)) for job, cfg in sweep_job_configs(config)]


@pytest.mark.parametrize("experiment", [None, *group_options("experiment")])
@pytest.mark.parametrize("data", group_options("data"))
def test_no_checkpoint_is_selected_on_the_split_that_is_scored(data, experiment, tmp_path):
    """Every data option × every preset (each directory listed, so a new option is covered), every job of the
    preset's sweep: the images the test stage scores are never the ones a checkpoint was selected on. Hydra's
    _self_ comes last in train.yaml, so a key it sets overrides what a data's config sets for the same key. The
    seed and the real fraction are narrowed to one value each: they pick images inside the train split, never a
    split, and each of a study's 270 jobs costs a resolution of the data nodes (the other axes are swept in full)."""
    overrides = [f"data={data}", "seed=0", "data.real_frac=0.1"] + ([f"+experiment={experiment}"] if experiment else [])
    jobs = sweep_jobs(overrides, tmp_path)
    assert jobs
    for job, (selection, test) in jobs:
        assert test is not None, job  # every preset scores a split
        assert selection != test, (job, selection)
    if data == "gta5_cityscapes" and experiment is None:  # Cityscapes' val split is its test set: no selection
        assert jobs[0][1] == (None, "None/val")
