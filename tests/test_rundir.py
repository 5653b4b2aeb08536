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


T0 = 1_796_000_000.0  # a fixed instant; parts are written with explicit times


def _prov(commit="e820b7e"):
    return {"commit": commit, "uncommitted_changes": False, "params_sha256": "aaa", "overrides": []}


def test_a_render_in_parts_keeps_each_part_and_marks_the_killed_one(tmp_path):
    """start_part / beat_part: a --resume render appends a part and closes an unfinished earlier one as interrupted
    at its last heartbeat; a fresh render starts the list anew."""
    from soar_lite.rundir import RunLayout, beat_part, parts_summary, read_json, start_part

    layout = RunLayout(tmp_path / "run")
    layout.provenance("meta_train").parent.mkdir(parents=True)
    start_part(layout, "meta_train", _prov(), resume=False, now=T0)
    beat_part(layout, "meta_train", now=T0 + 600)  # killed after its last heartbeat at +10 min
    start_part(layout, "meta_train", _prov(), resume=True, now=T0 + 3600)  # the next sitting, an hour later
    beat_part(layout, "meta_train", now=T0 + 3600 + 1200, finished=True)
    parts = read_json(layout.provenance("meta_train"))["parts"]
    assert [p.get("interrupted", False) for p in parts] == [True, False] and "finished" in parts[1]
    assert [p["resume"] for p in parts] == [False, True]
    assert parts_summary(parts) == {"parts": 2, "seconds": 1800.0, "paused_seconds": 3000.0, "interrupted": 1}
    start_part(layout, "meta_train", _prov(), resume=False, now=T0 + 9000)  # rendered afresh: one part
    assert len(read_json(layout.provenance("meta_train"))["parts"]) == 1


@pytest.mark.parametrize("spans, expected", [
    ([(0, 60)], {"parts": 1, "seconds": 60.0, "paused_seconds": 0.0, "interrupted": 0}),
    ([(0, 60), (60, 120)], {"parts": 2, "seconds": 120.0, "paused_seconds": 0.0, "interrupted": 1}),
    ([(0, 60), (3660, 3720), (7320, 7380)], {"parts": 3, "seconds": 180.0, "paused_seconds": 7200.0, "interrupted": 2}),
])
def test_parts_summary(spans, expected):
    from soar_lite.rundir import _part_time, parts_summary

    parts = [{"started": _part_time(T0 + a), "last_seen": _part_time(T0 + b), **({"interrupted": True} if i < len(spans) - 1
                                                                               else {"finished": _part_time(T0 + b)})}
             for i, (a, b) in enumerate(spans)]
    assert parts_summary(parts) == expected


def test_the_index_shows_a_stage_rendered_in_parts_and_a_second_commit(tmp_path):
    """The index's wall time of a stage rendered in parts is their sum, its 'How it was rendered' table lists each
    part, and a part from another commit makes the index say the run comes from two commits."""
    from soar_lite.report_index import build
    from soar_lite.rundir import RunLayout, beat_part, read_json, record_provenance, start_part, write_json

    run = tmp_path / "run"
    layout = RunLayout(run)
    layout.provenance("probe").parent.mkdir(parents=True)
    for stage, nb in (("probe", "01_probe.ipynb"), ("meta_train", "03_meta_train.ipynb")):
        (run / nb).write_text('{"cells": []}')
        start_part(layout, stage, _prov(), resume=False, now=T0)
        beat_part(layout, stage, now=T0 + 120, finished=stage == "probe")
    start_part(layout, "meta_train", _prov(), resume=True, now=T0 + 7200)
    beat_part(layout, "meta_train", now=T0 + 7200 + 480, finished=True)
    for stage in ("probe", "meta_train"):
        record_provenance(layout, stage, **_prov(), params="params/x.yaml", started="2026-12-01 00:00 UTC",
                          seconds=120.0, all_parts={"parts": len(read_json(layout.provenance(stage))["parts"]),
                                                    "seconds": 120.0 if stage == "probe" else 600.0})
    index = build(run)
    assert "| 10.0 min in 2 parts |" in index and "| 2.0 min |" in index
    assert "## How it was rendered" in index and "| interrupted |" in index and "2.0 h paused between parts" in index
    assert "one commit and one params file" in index
    record = read_json(layout.provenance("meta_train"))
    record["parts"][0]["commit"] = "0000000"
    write_json(layout.provenance("meta_train"), record)
    assert "come from 2 different commits" in build(run)


@pytest.mark.parametrize("last, now, expected", [
    ({"finished": "x", "commit": "abc", "params_sha256": "p"}, {"commit": "abc", "params_sha256": "p"}, ["probe"]),
    ({"commit": "abc", "params_sha256": "p"}, {"commit": "abc", "params_sha256": "p"}, []),  # interrupted
    ({"finished": "x", "commit": "abc", "params_sha256": "p"}, {"commit": "def", "params_sha256": "p"}, []),
    ({"finished": "x", "commit": "abc", "params_sha256": "p"}, {"commit": "abc", "params_sha256": "q"}, []),
    ({"finished": "x", "commit": "abc", "params_sha256": "p", "uncommitted_changes": True},
     {"commit": "abc", "params_sha256": "p"}, []),
    ({"finished": "x", "commit": "abc", "params_sha256": "p"},
     {"commit": "abc", "params_sha256": "p", "uncommitted_changes": True}, []),
    ({"finished": "x", "commit": None, "params_sha256": "p"}, {"commit": None, "params_sha256": "p"}, []),  # no git
])
def test_a_resume_of_the_whole_run_skips_only_stages_finished_from_this_commit_and_params(tmp_path, last, now, expected):
    """`soar-lite run --resume` without --only: a stage whose last part finished from the same commit (no uncommitted
    changes) and params is not run again; a stage with no report, or no provenance, runs."""
    import json

    from soar_lite.cli import finished_before

    (tmp_path / "provenance").mkdir()
    (tmp_path / "provenance" / "probe.json").write_text(json.dumps({"stage": "probe", "parts": [last]}))
    (tmp_path / "01_probe.ipynb").write_text("{}")
    (tmp_path / "provenance" / "tiny_world.json").write_text(json.dumps({"stage": "tiny_world", "parts": [last]}))
    assert finished_before(tmp_path, ["probe", "tiny_world", "meta_train"], now) == expected  # no 02 report
