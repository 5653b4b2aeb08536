"""tracking.py: off by default (nothing imported, nothing sent); a named tracker that is not installed is one line;
with one, every meta-training row's scalars are mirrored (a stand-in trackio module records the calls)."""
import sys
import types

import pytest

from soar_lite.config import ConfigError, load_config
from soar_lite.tracking import scalars


@pytest.mark.parametrize("row,expected", [
    ({"step": 3, "reward_mean": 0.5, "promoted": True, "questions": ["a"], "tau": None},
     {"step": 3.0, "reward_mean": 0.5, "promoted": 1.0}),
    ({"guard": {"retries": 1, "attempts": [{}]}, "diagnostics": {"useful_share": 0.1}},
     {"guard/retries": 1.0, "diagnostics/useful_share": 0.1}),
])
def test_scalars(row, expected):
    assert scalars(row) == expected


def test_tracking_is_off_by_default_and_a_missing_tracker_is_one_line(monkeypatch):
    assert load_config("ci").tracking == "none"
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"tracking: wandb is not installed: pip install wandb"):
        load_config("ci", ["tracking=wandb"])


def test_meta_training_rows_are_mirrored(tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("trackio")
    fake.__spec__ = types.SimpleNamespace(name="trackio")
    fake.init = lambda **kw: calls.append(("init", kw["project"], kw["name"]))
    fake.log = lambda values, step=None: calls.append(("log", step, values))
    fake.finish = lambda: calls.append(("finish",))
    monkeypatch.setitem(sys.modules, "trackio", fake)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: fake.__spec__ if name == "trackio" else real(name, *a))
    from soar_lite.stages import meta_train, probe

    cfg = load_config("ci", [f"results_dir={tmp_path}", "tracking=trackio", "meta.teachers=[grounded]"])
    probe.run(cfg, log=lambda m: None)
    meta_train.run(cfg, log=lambda m: None)
    assert calls[0] == ("init", "soar-lite", "ci/meta") and calls[-1] == ("finish",)
    logged = [c for c in calls if c[0] == "log"]
    assert [c[1] for c in logged] == [0, 1] and "reward_mean" in logged[0][2] and "guard/kl_prev" in logged[0][2]
