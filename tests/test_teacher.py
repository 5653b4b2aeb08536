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
