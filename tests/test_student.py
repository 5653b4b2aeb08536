"""student.py: the inner loop's reset (§2.4). Every student starts from the baseline adapter with a fresh AdamW: two
students from one baseline give the same adapters in either order, and a student run twice gives the same adapter
twice (no optimizer state or adapter change carries over from the student before)."""
import torch

from soar_lite.config import StudentRLConfig
from soar_lite.models import restore, snapshot
from soar_lite.student import RLItem, StudentJob, run_student_job


def _job(baseline, task, seed):
    w = task.world
    items = [RLItem(w.question(x, 1), w.format_chain(w.chain(x, 1)), f"reset{x}") for x in range(8)]
    q_r = [w.problem(x, 2) for x in range(4)]
    return StudentJob(baseline=baseline, items=items, steps=2, seed=seed, reward_problems=q_r, decoding="logprob",
                      eval_seed=11)


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_students_reset_to_the_baseline_with_a_fresh_optimizer(policy, tiny_task):
    rl = StudentRLConfig(lr=1e-2, kl_coef=0.05, warmup_steps=0, batch_questions=4, group_size=4)
    start = snapshot(policy)
    baseline = {k: v + 0.01 * torch.randn_like(v, generator=torch.Generator().manual_seed(0)) for k, v in start.items()}
    a, b = _job(baseline, tiny_task, 1), _job(baseline, tiny_task, 2)
    ab = [run_student_job(policy, tiny_task, j, rl) for j in (a, b)]
    ba = [run_student_job(policy, tiny_task, j, rl) for j in (b, a)]
    again = run_student_job(policy, tiny_task, a, rl)
    assert _same(ab[0].trained, ba[1].trained) and _same(ab[1].trained, ba[0].trained)
    assert _same(ab[0].trained, again.trained) and ab[0].score == again.score
    assert not _same(ab[0].trained, baseline)  # it did train
    assert not _same(ab[0].trained, ab[1].trained)  # different seeds, different students
    restore(policy, start)
