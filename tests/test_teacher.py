"""teacher.py: the k3 KL between two teachers, the per-dataset advantages, and the collapse guard -- an update that
would collapse the teacher is undone exactly (adapter and AdamW state), a halved one is kept when it is within the
bounds, and a harmless update passes untouched."""
import copy
import dataclasses

import numpy as np
import pytest
import torch

from soar_lite.config import TeacherGuardConfig, TeacherRLConfig
from soar_lite.models import restore, snapshot
from soar_lite.rloo import make_optimizer
from soar_lite.sampling import encode_prompts
from soar_lite.teacher import GuardProbe, dataset_advantages, k3_kl, sample_qa_pairs, teacher_update


@pytest.mark.parametrize("old,new,expected", [
    ([[0.0, -1.0]], [[0.0, -1.0]], 0.0),  # the same token probabilities: 0
    ([[np.log(0.5)]], [[np.log(0.25)]], (0.5 - 1) - np.log(0.5)),  # rho = 1/2
    ([[0.0], [np.log(0.5)]], [[0.0], [np.log(0.5)]], 0.0),
    ([[-1.0, -1.0], []], [[-1.0, -1.0 + np.log(2)], []], 0.5 * ((2 - 1) - np.log(2))),  # per row, then over rows
])
def test_k3_kl(old, new, expected):
    assert k3_kl([np.array(o) for o in old], [np.array(n) for n in new]) == pytest.approx(expected)


@pytest.mark.parametrize("rewards,sizes,normalize,expected", [
    ([1.0, 0.0], [2, 1], False, [1.0, 1.0, -1.0]),
    ([3.0, 1.0, 2.0], [1, 1, 1], False, [1.5, -1.5, 0.0]),
    ([1.0, 0.0], [1, 1], True, [2.0, -2.0]),  # divided by the SD over the g datasets (0.5)
])
def test_dataset_advantages(rewards, sizes, normalize, expected):
    np.testing.assert_allclose(dataset_advantages(rewards, sizes, normalize), expected, atol=1e-6)


@pytest.fixture(scope="module")
def rollouts(policy, tiny_task):
    torch.manual_seed(0)
    sample = sample_qa_pairs(policy, tiny_task, 64, stream=lambda r: (f"guard-test-r{r}", 100 + r))
    prompt = encode_prompts(policy.tokenizer, [tiny_task.teacher_prompt()])[0]
    adv = np.random.default_rng(0).normal(size=64) * 3
    return [prompt] * 64, sample.completion_ids, adv, sample.reject_rate


def _update(policy, task, rollouts, lr, guard):
    prompts, comps, adv, reject_before = rollouts
    opt = make_optimizer(policy, lr, 0.0)
    rl = TeacherRLConfig(lr=lr, kl_coef=0.05, warmup_steps=0)
    out = teacher_update(policy, opt, task, prompts, comps, adv, rl, lr, guard, reject_before=reject_before,
                         probe=GuardProbe(stream=lambda a: (f"probe-a{a}", 7 + a), batch_size=256))
    return out, opt


def test_an_update_that_would_collapse_the_teacher_is_undone(policy, tiny_task, rollouts):
    start = snapshot(policy)
    guard = TeacherGuardConfig(max_kl=0.05, max_reject_increase=0.25, probe_samples=64, max_retries=2)
    out, opt = _update(policy, tiny_task, rollouts, 1.0, guard)  # AdamW at lr 1: every attempt blows the bounds
    g = out["guard"]
    assert g["kept_previous"] and g["retries"] == 2 and len(g["attempts"]) == 3
    assert [a["lr_scale"] for a in g["attempts"]] == [1.0, 0.5, 0.25]
    assert all(a["kl_prev"] > 0.05 or a["reject_after"] - rollouts[3] > 0.25 for a in g["attempts"])
    now = snapshot(policy)
    assert all(torch.equal(now[k], start[k]) for k in start), "the teacher must be exactly the previous one"
    assert opt.state_dict()["state"] == {}, "the optimizer must be as it was (no step taken)"
    restore(policy, start)


def test_a_halved_update_within_the_bounds_is_kept(policy, tiny_task, rollouts):
    start = snapshot(policy)
    off = TeacherGuardConfig(enabled=False, probe_samples=0)
    kl = {}
    for lr in (2e-2, 1e-2):
        out, _ = _update(policy, tiny_task, rollouts, lr, off)
        kl[lr] = out["guard"]["kl_prev"]
        restore(policy, start)
    assert kl[1e-2] < kl[2e-2]
    bound = (kl[1e-2] + kl[2e-2]) / 2
    out, opt = _update(policy, tiny_task, rollouts, 2e-2, TeacherGuardConfig(max_kl=bound, probe_samples=0, max_retries=3))
    g = out["guard"]
    assert g["retries"] == 1 and g["lr_scale"] == 0.5 and not g["kept_previous"]
    assert g["kl_prev"] == pytest.approx(kl[1e-2], rel=1e-4)  # the retry is the same step at half the lr
    assert opt.state_dict()["state"][0]["step"].item() == 1  # one AdamW step, not two
    restore(policy, start)


def test_a_harmless_update_passes_untouched(policy, tiny_task, rollouts):
    start = snapshot(policy)
    guard = TeacherGuardConfig(max_kl=0.05, probe_samples=64)
    out, _ = _update(policy, tiny_task, rollouts, 1e-4, guard)
    g = out["guard"]
    assert g["retries"] == 0 and not g["kept_previous"] and g["kl_prev"] < 1e-3
    assert g["reject_after"] is not None
    assert any(not torch.equal(snapshot(policy)[k], start[k]) for k in start)  # the update was applied
    restore(policy, start)


def test_guard_off_measures_but_keeps_every_update(policy, tiny_task, rollouts):
    start = snapshot(policy)
    out, _ = _update(policy, tiny_task, rollouts, 1.0, dataclasses.replace(TeacherGuardConfig(), enabled=False,
                                                                           probe_samples=0))
    assert out["guard"]["retries"] == 0 and out["guard"]["kl_prev"] > 0.05 and not out["guard"]["kept_previous"]
    restore(policy, copy.deepcopy(start))


def test_two_turn_teacher_asks_the_question_then_its_answer(policy, tiny_task):
    """Table 8's multi-turn teacher on the tiny model: every pair has two rows (the question call, then the answer
    call whose prompt is the question asked back), the rows carry their pair's advantage, and the single-turn
    sampler is the same as before (one row a pair, the teacher prompt)."""
    two = sample_qa_pairs(policy, tiny_task, 16, stream=lambda r: (f"two-turn-r{r}", 7 + r), turns=2)
    assert len(two.pairs) == 16 and two.row_pair == [i for i in range(16) for _ in range(2)]
    tok = policy.tokenizer
    for i, qa in enumerate(two.pairs):
        assert two.prompt_ids[2 * i] == encode_prompts(tok, [tiny_task.teacher_question_prompt()])[0]
        assert two.prompt_ids[2 * i + 1] == encode_prompts(tok, [f"{qa.question}="])[0]
        assert tiny_task.parse_teacher(f"{qa.question}={qa.answer}") is not None
    _, _, adv = two.update_rows(np.arange(16.0))
    np.testing.assert_array_equal(adv, np.repeat(np.arange(16.0), 2))
    one = sample_qa_pairs(policy, tiny_task, 16, stream=lambda r: (f"two-turn-r{r}", 7 + r))
    assert one.row_pair == list(range(16)) and len(one.completion_ids) == 16
    assert one.prompt_ids == [encode_prompts(tok, [tiny_task.teacher_prompt()])[0]] * 16


def test_math_two_turn_prompts_and_parsers():
    from soar_lite.tasks.math_data import TEACHER_ANSWER_PROMPT, TEACHER_QUESTION_PROMPT, MathTask

    task = MathTask("math")
    assert task.has_two_turn_teacher() and "<answer>" not in TEACHER_QUESTION_PROMPT.split("Do not solve it")[0]
    assert task.parse_teacher_question("x <question>What is 2+2?</question> y") == "What is 2+2?"
    assert task.parse_teacher_question("<question> </question>") is None
    prompt = task.teacher_answer_prompt("What is 2+2?")
    assert "<question>What is 2+2?</question>" in prompt and prompt.rstrip().endswith(TEACHER_ANSWER_PROMPT)
    qa = task.parse_teacher_answer("What is 2+2?", "so <answer>\\boxed{4}</answer>")
    assert (qa.question, qa.answer) == ("What is 2+2?", "4")
    assert task.parse_teacher_answer("What is 2+2?", "4") is None  # no answer tags


def test_the_absolute_guard_stops_a_drift_of_updates_each_within_the_per_update_bound(policy, tiny_task, rollouts):
    """Issue 35: five updates, each within a generous per-update bound, drift the teacher from its initial model;
    with max_kl_initial between the first update's KL to the initial model and the drift's, the guard keeps the
    first updates and undoes (or shrinks) the ones that would cross it: the teacher ends within the bound."""
    from soar_lite.teacher import initial_logprobs, rollout_logprobs

    prompts, comps, _, _ = rollouts
    start = snapshot(policy)
    free = TeacherGuardConfig(max_kl=10.0, probe_samples=0, max_retries=2)
    opt = make_optimizer(policy, 3e-3, 0.0)
    rl = TeacherRLConfig(lr=3e-3, kl_coef=0.0, warmup_steps=0)
    adv = np.random.default_rng(1).normal(size=64) * 3
    probe = GuardProbe(stream=lambda a: (f"probe-drift-a{a}", 11 + a), batch_size=256)

    def drift(guard, steps=5):
        restore(policy, start)
        o = make_optimizer(policy, 3e-3, 0.0)
        rows = [teacher_update(policy, o, tiny_task, prompts, comps, adv, rl, 3e-3, guard, reject_before=0.0,
                               probe=probe)["guard"] for _ in range(steps)]
        return rows, k3_kl(rollout_logprobs(policy, prompts, comps), initial_logprobs(policy, prompts, comps))

    free_rows, free_kl = drift(dataclasses.replace(free, max_kl_initial=100.0))
    first = free_rows[0]["kl_initial"]
    assert all(not r["retries"] for r in free_rows) and free_kl > 2 * first  # each update passes; they add up
    bound = (first + free_kl) / 2
    rows, kl = drift(dataclasses.replace(free, max_kl_initial=bound))
    assert not rows[0]["retries"] and any(r["retries"] for r in rows)  # the first kept, a later one undone
    assert all(r["kept_previous"] or r["kl_initial"] <= bound for r in rows)
    assert kl <= bound * 1.05  # the final teacher stays near the bound (k3 on rollouts: an estimate)
    del opt
    restore(policy, start)


def test_the_absolute_rejection_bound_undoes_an_update_past_it(policy, tiny_task, rollouts):
    start = snapshot(policy)
    guard = TeacherGuardConfig(max_kl=10.0, max_reject_increase=1.0, max_reject=1e-9, probe_samples=64, max_retries=1)
    out, _ = _update(policy, tiny_task, rollouts, 1.0, guard)  # lr 1: the format breaks, past an absolute rate of ~0
    g = out["guard"]
    assert g["kept_previous"] and all(a["reject_after"] > 1e-9 for a in g["attempts"])
    assert all(torch.equal(snapshot(policy)[k], start[k]) for k in start)
    restore(policy, start)
