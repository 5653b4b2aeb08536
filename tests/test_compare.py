"""compare.py and `soar-lite compare`: two ci runs that differ in one knob (the params diff names it; pass@k side by
side with intervals, paired because both runs share the run seed; the 06_compare report renders), and the rerun
tolerance check on a copy of a run (within) and on a copy with one student's pass@k moved (outside)."""
import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from soar_lite.compare import compare_pass_at_k, load_run, params_diff, rerun_check
from soar_lite.config import load_config
from soar_lite.stages import evaluate, meta_train, probe

from conftest import REPO

pytestmark = pytest.mark.xdist_group("test_compare")  # two_runs: two whole runs, read by each test (tests/conftest.py)


FAST = ["evaluate.methods=[hard-only, base-t]", "meta.teachers=[grounded]"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("compare")
    for name, extra in (("a", []), ("b", ["evaluate.student.lr=2.0e-3"])):
        cfg = load_config("ci", [f"results_dir={base / name}", *FAST, *extra])
        quiet = lambda *a: None  # noqa: E731
        probe.run(cfg, log=quiet)
        meta_train.run(cfg, log=quiet)
        evaluate.run(cfg, log=quiet)
    return base / "a" / "ci", base / "b" / "ci"


def test_the_params_diff_names_the_one_knob(two_runs):
    a, b = (load_run(p) for p in two_runs)
    diff = params_diff(a, b)
    # the one knob, and the two sections that inherit it from `evaluate` (config.INHERITED): what ran
    assert set(diff.key) == {"evaluate.student.lr", "analyze.ablation.student.lr", "world_check.arms.student.lr"}
    assert all(list(r)[1:] == [0.001, 0.002] for _, r in diff.iterrows())


def test_pass_at_k_side_by_side_with_intervals(two_runs):
    a, b = (load_run(p) for p in two_runs)
    cmp = compare_pass_at_k(a, b)
    assert set(cmp.method) == {"hard-only", "base-t"} and set(cmp.k) == {1, 4}
    # one run seed: student s is index-matched, so paired (students that tie in both runs: untestable, never Welch)
    assert set(cmp.test) <= {"paired t", "untestable"}
    r = cmp.iloc[0]
    assert r.difference == pytest.approx(r.mean_b - r.mean_a)


def test_rerun_check_within_and_outside_tolerance(two_runs, tmp_path):
    a = load_run(two_runs[0])
    copy = tmp_path / "copy" / "ci"
    shutil.copytree(two_runs[0], copy)
    same = rerun_check(a, load_run(copy))
    assert same["same_params"] and same["within_tolerance"] and same["max_pass_at_k_gap"] == 0.0
    pk = pd.read_csv(copy / "tables" / "pass_at_k.csv")
    pk.loc[0, "pass_at_k"] += 0.2
    pk.to_csv(copy / "tables" / "pass_at_k.csv", index=False)
    moved = rerun_check(a, load_run(copy))
    assert not moved["within_tolerance"] and moved["max_pass_at_k_gap"] == pytest.approx(0.2)
    assert rerun_check(a, load_run(two_runs[1])) == {"same_params": False}


@pytest.mark.whole_run(seconds=46)
def test_the_compare_command_prints_and_renders(two_runs, tmp_path):
    out = tmp_path / "cmp"
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "compare", str(two_runs[0]), str(two_runs[1]), "--out",
                        str(out)], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "evaluate.student.lr (0.001 -> 0.002)" in r.stdout
    assert "hard-only pass@4:" in r.stdout and ("paired t" in r.stdout or "untestable" in r.stdout)
    nb = json.loads((out / "06_compare.ipynb").read_text())
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert (out / "06_compare.html").exists() and list((out / "tables").glob("pass_at_k_*.csv"))
    bad = subprocess.run([sys.executable, "-m", "soar_lite.cli", "compare", str(two_runs[0]), str(tmp_path / "nope")],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "not a run directory" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


# ---- issue 32: an empty, partial or doubled comparison is never "within tolerance"; damaged folders are one line
def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_rerun_check_of_nothing_is_not_within_tolerance(two_runs, tmp_path):
    a = load_run(two_runs[0])
    bare = tmp_path / "bare" / "ci"
    bare.mkdir(parents=True)
    shutil.copy(two_runs[0] / "config.yaml", bare / "config.yaml")
    shutil.copytree(two_runs[0] / "probe", bare / "probe")
    check = rerun_check(a, load_run(bare))
    assert check["same_params"] and not check["within_tolerance"] and check["verdict"] == "incomplete"
    assert any("missing in b" in m for m in check["missing"])
    both_bare = rerun_check(load_run(bare), load_run(bare))
    assert both_bare["verdict"] == "nothing to compare" and not both_bare["within_tolerance"]


def test_rerun_check_names_missing_rows(two_runs, tmp_path):
    a = load_run(two_runs[0])
    part = _copy(two_runs[0], tmp_path / "part" / "ci")
    pk = pd.read_csv(part / "tables" / "pass_at_k.csv")
    pk.head(2).to_csv(part / "tables" / "pass_at_k.csv", index=False)
    check = rerun_check(a, load_run(part))
    assert not check["within_tolerance"] and check["verdict"] == "incomplete"
    assert any(f"{len(pk) - 2} rows missing in b" in m for m in check["missing"])


@pytest.mark.parametrize("damage, says", [
    (lambda d: (d / "tables" / "pass_at_k.csv").write_text(""), "pass_at_k.csv: cannot be read"),
    (lambda d: (d / "tables" / "pass_at_k.csv").write_text("x,y\n1,2\n"), "not a pass@k table"),
    (lambda d: pd.concat([pd.read_csv(d / "tables" / "pass_at_k.csv")] * 2).to_csv(d / "tables" / "pass_at_k.csv",
                                                                                  index=False), "repeat a (method"),
    (lambda d: (d / "config.yaml").write_text(""), "config.yaml: not a run's config"),
    (lambda d: (d / "config.yaml").write_text("- a\n- b\n"), "config.yaml: not a run's config"),
    (lambda d: (d / "config.yaml").write_text("a: [\n"), "config.yaml: cannot be read as YAML"),
])
def test_damaged_run_folders_are_one_line(two_runs, tmp_path, damage, says):
    from soar_lite.compare import CompareError

    bad = _copy(two_runs[0], tmp_path / "bad" / "ci")
    damage(bad)
    with pytest.raises(CompareError, match=says.replace("(", r"\(")):
        load_run(bad)
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "compare", str(two_runs[0]), str(bad)],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_summary_counts_in_a_to_b_order_and_methods_of_one_run(two_runs, tmp_path):
    from soar_lite.compare import summary_lines

    a = load_run(two_runs[0])
    fewer = _copy(two_runs[0], tmp_path / "fewer" / "ci")
    pk = pd.read_csv(fewer / "tables" / "pass_at_k.csv")
    pk = pk[~((pk.method == "hard-only") & (pk.seed == 1))]
    pk = pd.concat([pk, pk[pk.method == "base-t"].assign(method="soar-pq")])
    pk.to_csv(fewer / "tables" / "pass_at_k.csv", index=False)
    lines = summary_lines([a, load_run(fewer)])
    assert any("hard-only pass@4" in line and "n = 2 -> 1" in line for line in lines)
    assert any("methods in one run only" in line and "soar-pq (ci only)" in line for line in lines)


def test_a_key_one_run_predates_is_not_a_params_difference(two_runs, tmp_path):
    import yaml

    from soar_lite.compare import schema_only_keys, summary_lines

    old = _copy(two_runs[0], tmp_path / "old" / "ci")
    cfg = yaml.safe_load((old / "config.yaml").read_text())
    del cfg["evaluate"]["extended_steps_factor"]  # rendered before the key existed; the other run holds its default
    (old / "config.yaml").write_text(yaml.safe_dump(cfg))
    a, b = load_run(old), load_run(two_runs[0])
    assert params_diff(a, b).empty and schema_only_keys(a, b) == ["evaluate.extended_steps_factor"]
    assert any("keys one run predates" in line for line in summary_lines([a, b]))
    cfg["evaluate"]["extended_steps_factor"] = 7  # a value that is not the default is a real difference
    (old / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert list(params_diff(load_run(old), b).key) == ["evaluate.extended_steps_factor"]
