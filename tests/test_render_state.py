"""scripts/render_state.py: a stopped render's state saved, mirrored and restored byte for byte, without what a resume
writes anew; a live render and a non-empty target are refused in one line."""
import fcntl

from conftest import load_script


def _tool():
    return load_script("render_state")


STATE = {  # carried: the reports, tables, provenance, checkpoints (a binary), evaluation students
    "01_probe.ipynb": b"{}", "config.yaml": b"seed: 0\n", "provenance/probe.json": b'{"parts": []}',
    "meta/checkpoints/teacher.pt": bytes(range(256)) * 4, "evaluate/students/hard-only-0.json": b"{}",
}
NOT_CARRIED = {"logs/meta_train.log": b"x", "progress/meta.json": b"{}", ".run.lock": b"pid 1 (run)",
               "03_meta_train.partial.ipynb": b"{}", "meta/metrics.jsonl.123.tmp": b"half"}


def _write(root, files):
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_save_mirror_and_restore_carry_exactly_the_resumable_state(tmp_path, capsys):
    tool = _tool()
    run, saved, again = tmp_path / "run", tmp_path / "saved", tmp_path / "again"
    _write(run, {**STATE, **NOT_CARRIED})
    assert tool.main(["save", str(run), str(saved)]) == 0
    assert _files(saved) == STATE
    assert "save: 5 files" in capsys.readouterr().out

    # a second save copies only what changed and deletes what the run no longer has
    (run / "evaluate/students/hard-only-0.json").unlink()
    _write(run, {"config.yaml": b"seed: 1\n", "evaluate/students/hard-only-1.json": b"{}"})
    assert tool.main(["save", str(run), str(saved)]) == 0
    assert "(2 copied, 1 deleted)" in capsys.readouterr().out
    expected = {**STATE, "config.yaml": b"seed: 1\n", "evaluate/students/hard-only-1.json": b"{}"}
    del expected["evaluate/students/hard-only-0.json"]
    assert _files(saved) == expected

    assert tool.main(["restore", str(saved), str(again)]) == 0
    assert {k: v for k, v in _files(again).items() if k != ".run.lock"} == expected


def test_teacher_optimizer_states_are_carried_until_meta_training_finishes(tmp_path, capsys):
    tool = _tool()
    run, saved = tmp_path / "run", tmp_path / "saved"
    opt = {"meta/checkpoints/teacher_opt-00012.pt": b"adam", "meta_run1/checkpoints/teacher_opt-00020.pt": b"adam"}
    _write(run, {**STATE, **opt, "provenance/meta_train.json": b'{"parts": []}'})  # started, not finished
    assert tool.main(["save", str(run), str(saved)]) == 0
    assert set(opt) <= set(_files(saved))
    _write(run, {"provenance/meta_train.json": b'{"parts": [], "finished": "2026-12-07 06:32 UTC"}'})
    assert tool.main(["save", str(run), str(saved)]) == 0
    assert "(1 copied, 2 deleted)" in capsys.readouterr().out.splitlines()[-1]
    assert not set(opt) & set(_files(saved)) and "meta/checkpoints/teacher.pt" in _files(saved)


def test_a_live_render_and_a_non_empty_target_are_refused(tmp_path, capsys):
    tool = _tool()
    run, saved = tmp_path / "run", tmp_path / "saved"
    _write(run, STATE)
    with open(run / ".run.lock", "a+") as held:  # what a live `soar-lite run` holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert tool.main(["save", str(run), str(saved)]) == 2
    err = capsys.readouterr().err
    assert "is in use" in err and err.count("\n") == 1 and not saved.exists()
    assert tool.main(["restore", str(run), str(run)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert tool.main(["save", str(tmp_path / "missing"), str(saved)]) == 2
