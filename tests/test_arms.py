"""The evaluation arms in one place (issue 33, item 5): the registry is consistent (every compared arm exists, each
arm's settings apply, stream keys and colours are unique), and a new arm is one `Arm(...)` entry: registered here,
it is a valid method name, trains with its own settings through the evaluation stage at ci size, and is drawn in
its colour. (That the registry left every table byte-identical was checked at ci size with every arm: see the
issue's closing note.)"""
import dataclasses

import pytest

from soar_lite import arms, plots, seeds
from soar_lite.config import ConfigError, load_config, parse_method
from soar_lite.stages import evaluate, meta_train, probe


def test_every_compared_arm_is_in_the_registry():
    for a, b in arms.COMPARISONS:
        assert parse_method(a).base in arms.ARMS and parse_method(b).base in arms.ARMS, (a, b)
    for name in arms.FIG7_ARMS + arms.FIG5_LEFT + arms.FIG9_TRAINED + arms.FIG14_FAMILIES:
        assert name in arms.ARMS


def test_colours_are_distinct_and_stream_keys_known():
    taken = [a.color for a in arms.ARMS.values() if a.color]
    assert len(taken) == len(set(taken))
    for arm in arms.ARMS.values():
        for kind, fmt in arm.stream_keys:
            assert seeds.STREAM_KEYS[kind] == fmt
    assert all(plots.color_of(name) == color for name, color in arms.colors().items())


@pytest.mark.parametrize("name, field, expected", [
    ("hard-only-4x-group", "student.group_size", 8), ("hard-only-extended", "steps", 8), ("serl", "fixed_step", 2),
    ("serl", "mode", "mixed"), ("soar-pq@curriculum", "student.warmup_steps", 0), ("hard-only", "steps", 2),
    ("base-t@curriculum", "mode", "curriculum"),
])
def test_each_arms_settings(name, field, expected):
    ecfg = load_config("ci", ["evaluate.serl_step=2", "evaluate.extended_steps_factor=4",
                              "evaluate.student.warmup_steps=3"]).evaluate
    got = evaluate.method_settings(ecfg, name)
    for part in field.split("."):
        got = getattr(got, part)
    assert got == expected


@pytest.mark.whole_run(seconds=15)
def test_a_new_arm_is_one_registry_entry(tmp_path, monkeypatch):
    """Hard-Only trained twice as long, added as one Arm: a method name, two students of its own settings."""
    new = arms.Arm("hard-only-2x", "Hard-Only trained twice as long (a test arm)", color="#000001",
                   settings=lambda ecfg, spec: dataclasses.replace(ecfg, steps=2 * ecfg.steps))
    with pytest.raises(ConfigError, match="unknown method 'hard-only-2x'"):
        parse_method("hard-only-2x")
    monkeypatch.setitem(arms.ARMS, new.name, new)
    cfg = load_config("ci", [f"results_dir={tmp_path}", "meta.teachers=[grounded]", "evaluate.other_seeds=2",
                             "evaluate.methods=[hard-only, hard-only-2x]"])
    quiet = lambda *a: None  # noqa: E731
    probe.run(cfg, log=quiet)
    meta_train.run(cfg, log=quiet)
    res = evaluate.run(cfg, log=quiet)
    assert set(res.table.method) == {"hard-only", "hard-only-2x"}
    assert res.curves[res.curves.method == "hard-only-2x"].step.max() == 2 * cfg.evaluate.steps
    assert evaluate.students(cfg.evaluate, "hard-only-2x") == 2
    fig, ax = plots.curves(res.curves, 1)
    assert "#000001" in [line.get_color() for line in ax.lines]
