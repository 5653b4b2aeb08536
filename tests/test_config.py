"""Strict params loading: unknown keys, wrong types and missing files are named; nothing is written."""
import re
import subprocess
import sys

import pytest

from conftest import REPO
from soar_lite.config import ConfigError, load_config

PARAMS = sorted((REPO / "params").glob("*.yaml"))


@pytest.mark.parametrize("path", PARAMS, ids=[p.stem for p in PARAMS])
def test_every_shipped_params_file_loads(path):
    cfg = load_config(path)
    assert cfg.name == path.stem


def test_unknown_key_is_named(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("meta:\n  tua: 0.01\n")
    with pytest.raises(ConfigError, match=r"unknown key 'tua'") as e:
        load_config(p)
    assert "meta" in str(e.value) and str(p) in str(e.value)


def test_wrong_type_is_named(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("meta:\n  g: four\n")
    with pytest.raises(ConfigError, match=r"meta\.g: expected int"):
        load_config(p)


def test_nested_section_unknown_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("meta:\n  student:\n    lr: 1.0e-4\n    gruop_size: 8\n")
    with pytest.raises(ConfigError, match=r"meta\.student: unknown key 'gruop_size'"):
        load_config(p)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_choice(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model:\n  backend: vllm\n")
    with pytest.raises(ConfigError, match="model.backend"):
        load_config(p)


def test_overrides_apply_and_are_checked(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text("meta:\n  g: 4\n")
    assert load_config(p, ["meta.g=3", "model.path=tiny"]).meta.g == 3
    with pytest.raises(ConfigError, match="override meta.nope=1: meta has no key 'nope'"):
        load_config(p, ["meta.nope=1"])


def test_cli_rejects_unknown_key_before_writing_anything(tmp_path):
    p = tmp_path / "typo.yaml"
    p.write_text(f"name: typo\nresults_dir: {tmp_path / 'results'}\nprobe:\n  sampels: 128\n")
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "unknown key 'sampels'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_shipped_params_resolve_by_name_from_any_directory(tmp_path, monkeypatch):
    """A pip-installed copy (Colab) has no params/ folder beside the notebook: names fall back to the shipped files."""
    monkeypatch.chdir(tmp_path)
    assert load_config("params/paper-math.yaml").name == "paper-math"
    assert load_config("colab-small").model.path.startswith("Qwen/")
    with pytest.raises(ConfigError, match=r"shipped params: .*tiny"):
        load_config("params/paper-mth.yaml")
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "tiny.yaml").write_text("name: mine\n")
    assert load_config("params/tiny.yaml").name == "mine"  # a file that exists always wins


def test_grounded_teacher_checkpoint_follows_evaluate_teacher_step():
    from soar_lite.stages.meta_train import trained_teacher_path

    harp = load_config(REPO / "params" / "paper-harp.yaml")
    assert (harp.meta.outer_steps, harp.evaluate.teacher_step) == (200, 170)  # §2.3
    assert trained_teacher_path(harp, "grounded").name == "teacher_step00170.pt"
    assert trained_teacher_path(harp, "intrinsic").name == "teacher.pt"
    with pytest.raises(ConfigError, match="teacher_snapshots"):
        load_config(REPO / "params" / "paper-harp.yaml", ["meta.teacher_snapshots=[]"])


@pytest.mark.parametrize("override, key", [
    ("meta.r=0", "meta.r: must be >= 1"),
    ("meta.g=1", "meta.g: must be >= 2"),
    ("evaluate.ks=[0]", "evaluate.ks"),
    ("evaluate.ks=[64]", "evaluate.ks"),
    ("meta.student.group_size=1", "meta.student.group_size"),
    ("world_check.arms.steps=0", "world_check.arms.steps: must be >= 1"),
    ("probe.test_fraction=1.0", "probe.test_fraction"),
    ("meta.teachers=[grounded, grounded]", "meta.teachers"),
    ("meta.teachers=[learnability]", "meta.teachers[0]: must be one of grounded, intrinsic, grounded-no-promotion"),
    ("meta.runs=0", "meta.runs"),
    ("evaluate.base_model_seeds=1", "evaluate.base_model_seeds"),
    ("executor.workers=0", "executor.workers"),
    ("task.name=chess", "task.name: unknown world 'chess'"),
    ("model.gen_batch_size=0", "model.gen_batch_size"),
])
def test_ranges_and_choices_are_checked_with_the_key(tmp_path, override, key):
    p = tmp_path / "ok.yaml"
    p.write_text("task:\n  name: tiny\n")
    with pytest.raises(ConfigError) as e:
        load_config(p, [override])
    assert key in str(e.value) and str(p) in str(e.value)


def test_sub_experiments_start_from_the_evaluate_section_and_config_yaml_records_them(tmp_path):
    import yaml

    from soar_lite.config import to_dict

    cfg = load_config(REPO / "params" / "tiny.yaml", [f"results_dir={tmp_path}"])
    arms, ablation, ev = cfg.world_check.arms, cfg.analyze.ablation, cfg.evaluate
    assert (arms.steps, arms.eval_every, arms.seeds) == (40, 20, 2)  # world_check.arms' own values
    assert arms.student == ev.student and arms.samples == ev.samples and arms.mode == ev.mode
    assert ablation.steps == 20 and ablation.seeds == 2  # the ablation's own values in params/tiny.yaml
    assert ablation.mode == "mixed" and ablation.eval_every == ev.eval_every and ablation.student == ev.student
    over = load_config(REPO / "params" / "tiny.yaml", ["evaluate.student.lr=0.5", "analyze.ablation.seeds=5"])
    assert over.world_check.arms.student.lr == 0.5 and over.analyze.ablation.seeds == 5
    assert over.analyze.ablation.student.warmup_steps == over.evaluate.student.warmup_steps
    cfg.layout.prepare(cfg)
    assert yaml.safe_load(cfg.layout.config.read_text()) == to_dict(cfg)


def test_a_partial_section_keeps_its_fields_defaults():
    """evaluate.student's default warm-up is 20 (Table 3), a plain StudentRLConfig's 0: a params file that sets only
    the learning rate keeps 20."""
    from soar_lite.config import _build, RunConfig

    cfg = _build(RunConfig, {"evaluate": {"student": {"lr": 1e-4}}}, "")
    assert (cfg.evaluate.student.lr, cfg.evaluate.student.warmup_steps, cfg.meta.student.warmup_steps) == (1e-4, 20, 0)


def test_every_field_has_help_and_the_cli_prints_it():
    from soar_lite.config import describe

    lines = describe()
    assert len(lines) > 100 and all(": " in line and not line.endswith(": ") for line in lines)
    assert any(line.startswith("meta.tau (float, default 0.01)") and "[Table 3]" in line for line in lines)
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "params"], capture_output=True, text=True)
    assert r.returncode == 0 and "meta.student.group_size" in r.stdout


@pytest.mark.parametrize("content, message", [
    (b"", "the params file is empty"),
    (b"# only a comment\n", "the params file is empty"),
    (b"meta:\n  g: 3\nmeta:\n  n: 5\n", "line 3: key 'meta' is written twice in one mapping (first at line 1)"),
    (b"meta:\n  g: 3\n  g: 4\n", "line 3: key 'g' is written twice"),
    (b"\x00\x01\xff\xfe\x00garbage", "not a UTF-8 text file"),
    ("meta:\n  g: 3\n".encode("utf-16"), "not a UTF-8 text file"),
    (b"meta: [\n", "not valid YAML (line 2"),
    (b"- a\n- b\n", "the top level must be a mapping"),
])
def test_a_params_file_that_cannot_be_read_is_one_error_naming_it(tmp_path, content, message):
    p = tmp_path / "bad.yaml"
    p.write_bytes(content)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert message in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value)


def test_scientific_notation_is_a_number_and_a_utf8_bom_is_accepted(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_bytes("\ufeffmeta:\n  student:\n    lr: 1e-3\n  tau: -2E-2\n".encode())
    cfg = load_config(p, ["meta.teacher.lr=3e-4"])
    assert (cfg.meta.student.lr, cfg.meta.tau, cfg.meta.teacher.lr) == (1e-3, -0.02, 3e-4)


@pytest.mark.parametrize("override, message", [
    ("meta.gg=3", "override meta.gg=3: meta has no key 'gg' (did you mean 'g'?)"),
    ("mta.g=3", "override mta.g=3: the top level has no key 'mta' (did you mean 'meta'?)"),
    ("meta.g.x=3", "override meta.g.x=3: 'g' is a value, not a section"),
    ("meta.g=[1,", "override meta.g=[1,: the value is not valid YAML"),
])
def test_an_override_error_blames_the_override_with_a_suggestion(override, message):
    with pytest.raises(ConfigError) as e:
        load_config("ci", [override])
    assert str(e.value) == message or str(e.value).startswith(message)
    assert "ci.yaml" not in str(e.value)


def test_a_file_typo_gets_a_suggestion_and_another_suffix_is_not_a_shipped_file(tmp_path, monkeypatch):
    p = tmp_path / "typo.yaml"
    p.write_text("meta:\n  outer_step: 3\n")
    with pytest.raises(ConfigError, match=r"meta: unknown key 'outer_step' \(did you mean 'outer_steps'\?\)"):
        load_config(p)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"params file not found: params/ci.yml \(did you mean params/ci.yaml\?\)"):
        load_config("params/ci.yml")


@pytest.mark.parametrize("name", ["../../x", "/tmp/x", "a/b", "..", ""])
def test_a_run_name_cannot_leave_the_results_root(name):
    with pytest.raises(ConfigError, match="name: must be a plain folder name"):
        load_config("ci", [f"name='{name}'"])


def test_a_value_inherited_from_evaluate_is_named_where_it_was_written():
    with pytest.raises(ConfigError, match=r"evaluate\.ks: must be >= 1"):
        load_config("ci", ["evaluate.ks=[0]"])


def test_every_numeric_knob_has_a_range():
    """Issue 14 point 6: a number without a range can only be the run seed or tau (a reward threshold may be < 0)."""
    import dataclasses
    import typing

    from soar_lite.config import RunConfig

    unranged = []

    def walk(cls, prefix=""):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            h = hints[f.name]
            if dataclasses.is_dataclass(h):
                walk(h, f"{prefix}{f.name}.")
                continue
            base = typing.get_args(h)[0] if typing.get_origin(h) is list else h
            if base in (int, float) and all(f.metadata.get(b) is None for b in ("ge", "gt", "lt")):
                unranged.append(prefix + f.name)

    walk(RunConfig)
    assert unranged == ["seed", "meta.tau"]


def _leaf_keys(cls=None, prefix=""):
    import dataclasses
    import typing

    from soar_lite.config import RunConfig

    cls = cls or RunConfig
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _leaf_keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", hints[f.name]


FLOAT_KEYS = [k for k, t in _leaf_keys() if t is float]
MUTATIONS = ["{a: 1}", "-1", "0", "1000000000000", "1.0e+30", ".nan", ".inf", "-.inf", "''", "[1, 2]", "true"]


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_every_float_knob_must_be_finite(key, value):
    """Before: meta.teacher.lr=.inf checkpointed a teacher of NaNs; meta.tau=.nan ran to exit 0 and never promoted."""
    with pytest.raises(ConfigError, match=re.escape(key.split(".")[-1]) + r".*must be a finite number") as e:
        load_config("ci", [f"{key}={value}"])
    assert "\n" not in str(e.value)


@pytest.mark.whole_run(seconds=45)
def test_every_params_key_fuzzed_runs_or_is_one_line(tmp_path):
    """Every key, every mutation (wrong type, negative, zero, huge, NaN, +-inf, empty string, list, bool) and an
    unknown key beside each: `soar-lite run`'s checks before anything is written either accept it or stop with one
    line naming the key -- never a traceback."""
    from soar_lite.cli import preflight
    from soar_lite.rundir import RunDirError
    from soar_lite.tasks.base import DataError

    keys = [k for k, _ in _leaf_keys()]
    accepted = refused = 0
    for key in keys:
        for value in MUTATIONS + ["unknown"]:
            override = f"{key}x=1" if value == "unknown" else f"{key}={value}"
            try:
                cfg = load_config("ci", [f"results_dir={tmp_path / 'r'}", override])
            except ConfigError as e:
                msg = str(e)
                assert "\n" not in msg and key.split(".")[-1] in msg, (override, msg)
                refused += 1
                continue
            try:
                preflight(cfg, ["probe", "tiny_world", "meta_train", "evaluate", "analyze"], resume=False)
            except (RunDirError, DataError, FileNotFoundError) as e:
                assert "\n" not in str(e), (override, str(e))
                refused += 1
                continue
            accepted += 1
    assert refused > len(keys) * 3 and accepted > len(keys) // 2  # both outcomes occur: the fuzz reaches the checks


def test_extends_merges_a_parent_params_file(tmp_path):
    """`extends:` loads the parent first (a path beside the file, or a shipped name), merges sections key by key,
    appends the deviations, refuses a cycle and a missing parent in one line naming the file; the reports'
    params fingerprint changes when the parent does."""
    from soar_lite.stages.common import params_fingerprint

    parent = tmp_path / "parent.yaml"
    parent.write_text("deviations: [a]\nmeta: {outer_steps: 3, g: 2}\nevaluate: {seeds: 2, steps: 7}\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: parent.yaml\ndeviations: [b]\nmeta: {g: 4}\nevaluate: {methods: [hard-only]}\n")
    cfg = load_config(child)
    assert (cfg.meta.outer_steps, cfg.meta.g, cfg.evaluate.seeds, cfg.evaluate.steps) == (3, 4, 2, 7)
    assert cfg.evaluate.methods == ["hard-only"] and cfg.deviations == ["a", "b"] and cfg.name == "child"
    shipped = tmp_path / "shipped.yaml"
    shipped.write_text("extends: ci\nmeta: {outer_steps: 1}\n")
    assert load_config(shipped).model.path == load_config("ci").model.path == "tiny"
    before = params_fingerprint(str(child), [])
    parent.write_text("deviations: [a]\nmeta: {outer_steps: 5, g: 2}\nevaluate: {seeds: 2, steps: 7}\n")
    assert params_fingerprint(str(child), []) != before
    parent.write_text("extends: child.yaml\n")
    with pytest.raises(ConfigError, match=r"parent.yaml: extends: 'child.yaml' extends this file again"):
        load_config(child)
    child.write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"child.yaml: extends: params file not found: nowhere.yaml"):
        load_config(child)
    child.write_text("extends: [a, b]\n")
    with pytest.raises(ConfigError, match=r"child.yaml: extends: expected the name or path of one params file"):
        load_config(child)


@pytest.mark.parametrize("name, parsed", [
    ("grounded-t", ("grounded-t", None, None)),
    ("grounded-t#32", ("grounded-t", 32, None)),
    ("base-t@curriculum", ("base-t", None, "curriculum")),
    ("curated#64@mixed", ("curated", 64, "mixed")),
    ("soar-pq@curriculum", ("soar-pq", None, "curriculum")),
    ("hard-only-extended", ("hard-only-extended", None, None)),
    ("serl#64", ("serl", 64, None)),
])
def test_method_names_parse(name, parsed):
    from soar_lite.config import parse_method

    m = parse_method(name)
    assert (m.base, m.n_questions, m.mode) == parsed


@pytest.mark.parametrize("methods, message", [
    ("[grounded-tt]", "evaluate.methods: unknown method 'grounded-tt'"),
    ("[soar-pq#32]", "evaluate.methods: method 'soar-pq#32': #n"),
    ("[grounded-t#0]", "evaluate.methods: method 'grounded-t#0': #n"),
    ("[hard-only@curriculum]", "evaluate.methods: method 'hard-only@curriculum': @mixed or @curriculum"),
    ("[base-t@sideways]", "evaluate.methods: method 'base-t@sideways': @mixed or @curriculum"),
    ("[base-t, base-t]", "evaluate.methods: a method named twice"),
])
def test_bad_method_names_are_named(methods, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("ci", [f"evaluate.methods={methods}"])


@pytest.mark.parametrize("overrides, message", [
    (["evaluate.serl_min_agreement=0.9", "evaluate.serl_max_agreement=0.5"], "evaluate.serl_min_agreement: must be <="),
    (["evaluate.methods=[serl]", "evaluate.eval_every=2", "evaluate.serl_step=5"], "evaluate.serl_step: must be an evaluated step"),
    (["evaluate.serl_max_agreement=1.5"], "evaluate.serl_max_agreement"),
])
def test_bad_serl_settings_are_named(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("ci", overrides)
