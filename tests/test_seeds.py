"""seeds.py: one derivation for every random draw; a whole run derives no seed for two different roles, and the
evaluation's test-sampling streams never coincide with the probe's selection batches (REVIEW F1)."""
import pytest

from soar_lite.seeds import derive, recording, recording_keys, shared_keys, shared_seeds


def test_derive_is_stable_and_separates_roles_and_indices():
    assert derive(0, "evaluate", "test_sample", 0, 0) == derive(0, "evaluate", "test_sample", 0, 0)
    seeds = {derive(0, "evaluate", "test_sample", 0, 0), derive(0, "probe", "first_batch"),
             derive(0, "probe", "confirm_batch"), derive(1, "evaluate", "test_sample", 0, 0),
             derive(0, "evaluate", "test_sample", 1, 0), derive(0, "evaluate", "test_sample", 0, 1),
             derive(0, "evaluate", "student_train", 0, 0)}
    assert len(seeds) == 7 and all(0 <= s < 2**63 for s in seeds)


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="unknown stage"):
        derive(0, "evaluation", "x")


def test_shared_seeds_finds_one_seed_used_by_two_roles():
    records = [("probe", "a", (), 5), ("evaluate", "b", (0,), 5), ("evaluate", "b", (1,), 6)]
    assert shared_seeds(records) == {5: {("probe", "a"), ("evaluate", "b")}}


def test_step0_evaluation_is_independent_of_the_probes_batches(tiny_task):
    """Every hard-test sample the evaluation draws at step 0 (any student) has a row seed that none of the probe's
    first or confirming batches used: the untrained model is not re-scored on the samples that selected it."""
    from soar_lite.sampling import row_seed

    probs = tiny_task.problems("hard-candidates")[:40]
    samples = 128
    probe_rows = {row_seed(derive(0, "probe", role), p.id, i) for role in ("first_batch", "confirm_batch")
                  for p in probs for i in range(samples)}
    for student in range(8):
        eval_rows = {row_seed(derive(0, "evaluate", "test_sample", student, 0), p.id, i) for p in probs
                     for i in range(samples)}
        assert not eval_rows & probe_rows


@pytest.mark.whole_run(seconds=47)
def test_a_full_run_derives_no_seed_for_two_roles(tmp_path):
    """probe -> tiny_world -> meta_train (grounded, intrinsic, no promotion, paper grouping; 2 teacher seeds; tau
    from null steps; the SNR estimate) -> evaluate (every method) -> analyze at ci size, recording every derivation."""
    from soar_lite.config import load_config
    from soar_lite.stages import analyze, evaluate, meta_train, probe, tiny_world

    # ci's tau = -1: every step promotes, so PQ and PS exist whatever the students' rewards (at ci size they are often
    # exactly 0 in the tiny world); the tau calibration's null steps run in a second run of the same seed (tau_null)
    cfg = load_config("ci", [f"results_dir={tmp_path}", "meta.runs=2", "meta.snr_draws=2",
                             "meta.reward_decoding=logprob",
                             "meta.teachers=[grounded, intrinsic, grounded-no-promotion, grounded-paper-grouping, "
                             "grounded-frozen]",
                             "meta.paper_grouping=[2, 4, 1]",
                             "evaluate.methods=[base-model, hard-only, hard-only-4x-group, hard-only-matched, soar-pq, "
                             "soar-ps, grounded-t, base-t, intrinsic-t, grounded-t-no-promotion, curated, frozen-pq, frozen-ps]"])
    null_cfg = load_config("ci", [f"results_dir={tmp_path / 'tau_null'}", "meta.tau_null_steps=2",
                                  "meta.reward_decoding=logprob", "meta.teachers=[grounded]", "meta.tau_fwer=0.99",
                                  "meta.tau_null_sims=200", "meta.inner_steps_per_promotion=1", "meta.max_inner_steps=2",
                                  "meta.student.group_size=8", "meta.student.batch_questions=4"])
    quiet = lambda *a: None  # noqa: E731
    with recording() as rec, recording_keys() as keys:
        probe.run(cfg, log=quiet)
        tiny_world.run(cfg, log=quiet)
        meta_train.run(cfg, log=quiet)
        evaluate.run(cfg, log=quiet)
        analyzed = analyze.run(cfg, log=quiet)
        probe.run(null_cfg, log=quiet)
        staged = meta_train.run(null_cfg, log=quiet).runs[("grounded", 0)]
    assert len(rec) > 100
    assert [t["inner_steps"] for t in staged.tau_stages] == [1, 2]  # a later stage's null, on its own seeds
    # diversity per teacher seed: two seeds of each teacher set, paired with the untrained model's draws
    assert sorted(analyzed.per_teacher.groupby("set").teacher_seed.nunique().items()) == [
        ("base-t", 2), ("grounded-t", 2), ("intrinsic-t", 2)]
    assert {stage for stage, *_ in rec} == {"model", "probe", "tiny_world", "meta_train", "evaluate", "analyze"}
    assert shared_seeds(rec) == {}
    # the sampling-stream keys: every kind of stream is built by seeds.stream_key, and no key serves two kinds
    assert {kind for kind, _ in keys} >= {"problem", "training_step", "teacher_step", "inner_question", "null_teacher",
                                           "stage_null_teacher", "guard_probe", "diagnostics", "snr_teacher", "teacher_draw", "synthetic",
                                           "pq", "curated", "ablation", "world_teacher", "world_dataset"}
    assert shared_keys(keys) == {}
