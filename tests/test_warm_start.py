"""Training jobs warm-started from the warm-up CycleGAN: method=cyclesem_warm / cyclegan_warm load its weights (built
on demand, then found in the cache), name it in their record, and refuse what cannot work."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from cyclesem.method import warmup as warmup_module
from cyclesem.method.warmup import RECORD_FILE, WEIGHTS_FILE, WarmupCacheError, networks_of
from cyclesem.runtime.config import ConfigError, validate
from cyclesem.runtime.preflight import preflight
from cyclesem.study.run_record import method_of
from cyclesem.train import build, train
from tests.conftest import compose_train


def cached_entry(cache: Path) -> Path:
    (entry,) = [p for p in cache.iterdir() if p.is_dir()]
    return entry


def assert_networks_equal_cache(model, entry: Path) -> None:
    state = torch.load(entry / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    for name, network in networks_of(model).items():
        own = network.state_dict()
        assert own.keys() == {k.split(".", 1)[1] for k in state if k.startswith(f"{name}.")}, name
        assert all(torch.equal(value, state[f"{name}.{key}"]) for key, value in own.items()), name


def test_a_warm_job_builds_the_warmup_once_loads_it_and_names_it_in_its_record(tmp_path, data_dir, monkeypatch):
    cache = tmp_path / "warmup"
    overrides = ["method=cyclesem_warm", "data.real_frac=0.5", "trainer.fast_dev_run=true", f"warmup.cache_dir={cache}"]
    L.seed_everything(0)
    _, model, _ = build(compose_train(overrides, tmp_path / "a", data_dir))  # no warm-up yet: built here
    after_building = torch.get_rng_state()
    entry = cached_entry(cache)
    assert_networks_equal_cache(model, entry)  # step 0: the generators and discriminators are the warm-up's
    assert model.warm_start_record["key"] == entry.name and model.warm_start_record["batches"] == 4

    calls: list = []
    monkeypatch.setattr(warmup_module, "train_warmup", lambda *args, **kwargs: calls.append(args))
    L.seed_everything(0)
    build(compose_train(overrides, tmp_path / "b", data_dir))
    # found in the cache; building it on demand drew nothing from the job's random streams
    assert calls == [] and torch.equal(torch.get_rng_state(), after_building)
    record = train(compose_train(overrides, tmp_path / "c", data_dir))
    assert calls == [] and record["method"] == "cyclesem_warm"
    warm = json.loads((entry / RECORD_FILE).read_text())
    assert record["warm_start"] == {"key": entry.name, "batches": 4, "budget": 4, "stopped_early": False,
                                    **{k: warm["curve"][-1][k] for k in ("translation_score", "translation_gain",
                                                                         "translation_l1")},
                                    "reference": warm["reference"]}
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["warm_start"]["key"] == entry.name
    # a job from scratch starts elsewhere and says so
    _, cold, _ = build(compose_train(["method=cyclesem", "trainer.fast_dev_run=true", f"warmup.cache_dir={cache}"],
                                     tmp_path / "d", data_dir))
    assert cold.warm_start_record is None
    assert not torch.equal(cold.gen_s2t.state_dict()["model.1.weight"], model.gen_s2t.state_dict()["model.1.weight"])


def test_warm_start_follows_input_skip_and_refuses_a_warmup_of_another_generator(tmp_path, data_dir):
    cache = tmp_path / "warmup"
    skip = ["method=cyclegan_warm", "+model.gen_s2t.input_skip=true", "trainer.fast_dev_run=true",
            f"warmup.cache_dir={cache}"]
    cfg = compose_train(skip, tmp_path / "skip", data_dir)
    _, model, _ = build(cfg)
    entry = cached_entry(cache)
    assert model.gen_s2t.input_skip and model.gen_t2s.input_skip and method_of(cfg) == "cyclegan_warm"
    assert_networks_equal_cache(model, entry)  # the head that reads the raw image beside the features included
    # a generator without the skip cannot take these weights: one error naming the file and the network
    plain = ["method=cyclesem", f"model.warm_start={entry}", "trainer.fast_dev_run=true"]
    with pytest.raises(WarmupCacheError, match=f"warm-up {entry / WEIGHTS_FILE} cannot be loaded into this run's "
                                               "model.gen_s2t .*unexpected keys"):
        build(compose_train(plain, tmp_path / "plain", data_dir))
    # a directory names the warm-up whatever its key: a job with the skip loads it and names it
    named = compose_train(["method=cyclesem", "+model.gen_s2t.input_skip=true", f"model.warm_start={entry}",
                           "trainer.fast_dev_run=true"], tmp_path / "named", data_dir)
    _, loaded, _ = build(named)
    assert_networks_equal_cache(loaded, entry) and loaded.warm_start_record["key"] == entry.name
    assert method_of(named) == "cyclesem_warm"


def test_warm_start_settings_are_checked_before_a_run(tmp_path, data_dir):
    cfg = compose_train(["method=cyclesem_warm", "data.unlabeled_target=true", "data.real_frac=0.0"], tmp_path, data_dir)
    assert method_of(cfg) == "cyclesem_warm_unlabeled"
    with pytest.raises(ConfigError, match="model.warm_start=True is out of range: expected null with "
                                          "model.style_transfer=false"):
        validate(compose_train(["method=baseline", "model.warm_start=true"], tmp_path, data_dir))
    with pytest.raises(ConfigError, match="warmup.batches=0 is out of range"):
        validate(compose_train(["method=cyclesem_warm", "warmup.batches=0"], tmp_path, data_dir))
    missing = tmp_path / "no_such_warmup"
    with pytest.raises(ConfigError, match=f"model.warm_start={missing} holds no warmup.json"):
        preflight(compose_train(["method=cyclesem", f"model.warm_start={missing}"], tmp_path, data_dir), "train")
    assert method_of(compose_train(["method=cyclegan", "model.warm_start=false"], tmp_path, data_dir)) == "cyclegan"
