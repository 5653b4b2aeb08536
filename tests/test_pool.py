"""executor.StudentPool without processes: its queues are thread-safe queues here, the owner and its helper one
process. Batches submitted before they are collected come back in job order, whichever is collected first (a
result of another batch waits in the stash); a job that fails is raised by its owner, naming it."""
import queue
import threading

import pytest

from soar_lite.executor import StudentPool


class _Active:
    def __init__(self, value):
        self.value, self._lock = value, threading.Lock()

    def get_lock(self):
        return self._lock


def _square(x):
    return x * x


def _fail(x):
    raise ValueError(f"bad job {x}")


def _pool():
    return StudentPool(queue.Queue(), [queue.Queue()], _Active(1), owner=0)


@pytest.mark.parametrize("order", ["first-then-second", "second-then-first"])
def test_two_batches_submitted_before_either_is_collected_come_back_in_job_order(order):
    pool = _pool()
    a = pool.submit(_square, [(i,) for i in range(5)])
    b = pool.submit(_square, [(10 + i,) for i in range(3)])
    if order == "first-then-second":
        got_a, got_b = pool.collect(a), pool.collect(b)
    else:  # b's collection runs a's jobs first (the queue is FIFO): their results wait in the stash
        got_b, got_a = pool.collect(b), pool.collect(a)
    assert got_a == [0, 1, 4, 9, 16] and got_b == [100, 121, 144]
    assert pool.tasks.empty() and not pool._stash


def test_with_a_helper_thread_taking_jobs_at_the_same_time_the_results_are_those_of_one():
    pool = _pool()
    helper = StudentPool(pool.tasks, pool.results, pool.active)
    done = threading.Event()

    def help_until(event):
        while not event.is_set():
            helper.help_once(timeout=0.01)

    t = threading.Thread(target=help_until, args=(done,))
    t.start()
    try:
        assert pool.run(_square, [(i,) for i in range(200)]) == [i * i for i in range(200)]
    finally:
        done.set()
        t.join()


def test_a_failed_job_is_raised_by_its_owner_naming_it():
    pool = _pool()
    with pytest.raises(RuntimeError, match="ValueError: bad job 3"):
        pool.run(_fail, [(3,)])
