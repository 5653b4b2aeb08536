"""rundir.py: one atomic write, and the layout that owns every path of a run directory."""
import os

import pandas as pd
import pytest

from soar_lite.rundir import RunLayout, atomic_write, read_jsonl, rewrite_jsonl, write_table


def test_atomic_write_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    atomic_write(path, lambda tmp: tmp.write_text("one"))
    atomic_write(path, lambda tmp: tmp.write_text("two"))
    assert path.read_text() == "two"
    assert os.listdir(path.parent) == ["a.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def boom(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, boom)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_write_table_is_plain_csv(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]})
    write_table(df, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == df.to_csv(index=False)


def test_rewrite_jsonl_round_trip(tmp_path):
    rows = [{"step": 0}, {"step": 1, "x": [1, 2]}]
    rewrite_jsonl(tmp_path / "m.jsonl", rows)
    assert read_jsonl(tmp_path / "m.jsonl") == rows


@pytest.mark.parametrize("path, expected", [
    (lambda l: l.table("pass_at_k"), "tables/pass_at_k.csv"),
    (lambda l: l.figure("x"), "figures/x.png"),
    (lambda l: l.hard_train, "probe/hard_train.json"),
    (lambda l: l.summary("evaluate"), "evaluate/summary.json"),
    (lambda l: l.meta().metrics, "meta/metrics.jsonl"),
    (lambda l: l.meta("intrinsic").teacher, "meta_intrinsic/checkpoints/teacher.pt"),
    (lambda l: l.meta().promoted(2), "meta/checkpoints/promoted_2.pt"),
    (lambda l: l.meta().teacher_at(170), "meta/checkpoints/teacher_step00170.pt"),
    (lambda l: l.meta().stamped("teacher_opt", 3), "meta/checkpoints/teacher_opt-00003.pt"),
    (lambda l: l.judge_cache, "analyze/judge_cache.jsonl"),
])
def test_layout_paths(tmp_path, path, expected):
    assert path(RunLayout(tmp_path)) == tmp_path / expected


def test_stale_tmp_files_of_a_killed_write_are_removed_at_the_next_start(tmp_path):
    """A write killed mid-way leaves `<name>.<pid>.tmp`; the next start removes it unless its writer still runs."""
    import os

    from soar_lite.rundir import remove_stale_tmp

    (tmp_path / "tables").mkdir()
    dead = tmp_path / "tables" / "pass_at_k.csv.99999999.tmp"
    live = tmp_path / "tables" / f"curves.csv.{os.getpid()}.tmp"
    odd = tmp_path / "x.tmp"
    for f in (dead, live, odd):
        f.write_text("partial")
    assert remove_stale_tmp(tmp_path) == 1
    assert not dead.exists() and live.exists()
    assert odd.exists()  # not the package's <name>.<pid>.tmp: a user's file, never touched (issue 32)


def test_a_reports_warnings_name_no_folder_and_empty_plots_warn_nothing(monkeypatch):
    """Rendered reports are committed: a warning prints its file's name, not this machine's folder, and a plot of
    arms this run does not have draws no empty legend (matplotlib's warning named the package's path)."""
    import warnings

    import pandas as pd

    from soar_lite import plots
    from soar_lite.stages.common import notebook_setup

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after the test
    notebook_setup("ci", [])
    assert warnings.formatwarning("m", UserWarning, "/some/machine/soar_lite/plots.py", 37) == \
        "plots.py:37: UserWarning: m\n"
    curve = pd.DataFrame({"step": [0, 10], "k": [1, 1], "pass_at_k": [0.1, 0.2], "method": ["hard-only"] * 2})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plots.curves(curve, 1, ["soar-pq"])
    assert not [w for w in caught if "No artists" in str(w.message)]


def test_the_run_index_names_a_reports_overrides(tmp_path):
    """A report rendered with overrides (here evaluate's -o evaluate.ps_seeds=6) is named so in the index, and the
    index says the run's reports were rendered with different params."""
    import json

    from soar_lite.report_index import build

    run = tmp_path / "run"
    (run / "provenance").mkdir(parents=True)
    for stage, overrides, sha in (("probe", [], "aaa"), ("evaluate", ["evaluate.ps_seeds=6"], "bbb")):
        (run / "provenance" / f"{stage}.json").write_text(json.dumps(
            {"stage": stage, "commit": "60e5870", "uncommitted_changes": False, "params": "params/x.yaml",
             "params_sha256": sha, "overrides": overrides, "started": "2026-12-01 00:00 UTC", "seconds": 60.0}))
        (run / {"probe": "01_probe.ipynb", "evaluate": "04_evaluate.ipynb"}[stage]).write_text('{"cells": []}')
    index = build(run)
    assert "| params/x.yaml with `evaluate.ps_seeds=6` | bbb |" in index and "| params/x.yaml | aaa |" in index
    assert "rendered with 2 different params" in index and "one commit and one params file" not in index
