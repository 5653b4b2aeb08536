"""Stage `probe` (notebook 01): the fail@k hard set, confirmed and split, and the base model's pass@k per
difficulty level (paper App. B.5, Table 2). The algorithm is in `soar_lite.probe`.

Writes probe/hard_{train,test}.json, probe/first_batch_counts.csv, probe/summary.json,
tables/hard_sets.csv and tables/pass_at_k_by_level.csv.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..probe import HardSet, count_correct, find_hard_set, mean_pass_at_k
from ..rundir import report_progress, write_json, write_table
from ..seeds import derive
from ..tasks import make_task
from ..tasks.base import DataError, Problem
from .common import display_path, exclusive, load, open_run, save_problems

PAPER_TABLE2 = pd.DataFrame([
    {"pool": "MATH (test split)", "n_pool": 5000, "n_fail": 719, "n_train": 359, "n_test": 360},
    {"pool": "HARP", "n_pool": 4768, "n_fail": 1428, "n_train": 714, "n_test": 714},
    {"pool": "OlympiadBench", "n_pool": 674, "n_fail": 316, "n_train": 158, "n_test": 158},
])


@dataclass
class ProbeResult:
    table: pd.DataFrame  # Table 2 analogue: pool, n_pool, n_fail, n_train, n_test
    summary: dict  # counts of each filtering step, seconds, split seed
    levels: pd.DataFrame | None  # level, n, k, pass_at_k (None when probe.level_pool is empty)
    hard_set: HardSet

    def findings(self) -> list[str]:
        """Sentences computed from the tables (the report's closing cell)."""
        s = self.summary
        out = [f"{s['fail_first_batch']} of {s['n_pool']} problems fail the first batch of samples; {s['leaked_in_confirmation']} "
               f"of them are solved by the independent confirming batch, leaving {s['fail_both_batches']} hard problems "
               f"({s['n_train']} hard-train, {s['n_test']} hard-test)."]
        dup = s.get("duplicate_questions", 0)
        out.append(f"{dup} problem(s) of the pool repeat an earlier question under another id: grouped, so each such "
                   f"question lands on one side of the split." if dup else
                   "No question of the pool repeats another (duplicate ids are refused when the data is read).")
        sh = s.get("shared_structure") or {}
        if sh:
            out.append(f"Split leak check: {100 * sh['test_subchains_of_train']:.0f}% of hard-test chains lie inside a "
                       f"hard-train chain; {100 * sh['test_pieces_on_train_paths']:.0f}% of the facts on hard-test paths "
                       f"are also on hard-train paths, and {100 * sh['test_answers_in_train_chains']:.0f}% of hard-test "
                       f"answers appear somewhere in a hard-train reference chain.")
        if self.levels is not None and not self.levels.empty:
            kmax = int(self.levels.k.max())
            lv = self.levels[self.levels.k == kmax].set_index("level").pass_at_k
            lowest = lv.idxmin()
            out.append(f"Base model pass@{kmax} per difficulty level: " + ", ".join(f"{lvl} {v:.3f}" for lvl, v in lv.items())
                       + f" (lowest {lv.min():.3f} at {lowest}).")
        return out


def preflight(cfg, resume: bool = False) -> None:
    """The probe's refusals before anything is written: its data (`check_inputs`)."""
    check_inputs(cfg)


def check_inputs(cfg) -> list[Problem]:
    """The probe's pool (and level pool) read and validated before anything is written: a missing, empty or
    malformed data file is one error naming the file and line (tasks.base.DataError)."""
    task, p = make_task(cfg.task), cfg.probe
    pool = _pool(task, "pool", p.pool)
    if p.level_pool:
        _pool(task, "level_pool", p.level_pool)
    pool = pool[: p.limit] if p.limit else pool
    if not pool:
        raise DataError(f"probe.pool {p.pool!r}: no problems to probe")
    answers: dict[str, tuple[str, str]] = {}
    for q in pool:  # one question, two answers: one of them is wrong, and the probe cannot tell which
        seen = answers.setdefault(q.question.strip(), (q.id, q.answer))
        if str(seen[1]).strip() != str(q.answer).strip():
            raise DataError(f"probe.pool {p.pool!r}: problems {seen[0]} and {q.id} ask the same question with different "
                            f"answers ({seen[1]!r} vs {q.answer!r}); keep one")
    return pool


def _pool(task, key: str, name: str) -> list[Problem]:
    """A pool by name; a name the world does not know is one DataError naming the key (a file's own errors name
    the file and line)."""
    if not name.strip():
        raise DataError(f"probe.{key} is empty: name a pool of the world (task.name={task.name})")
    try:
        return task.problems(name)
    except DataError:
        raise
    except (ValueError, KeyError) as e:
        raise DataError(f"probe.{key} {name!r}: {e}") from None


def duplicate_questions(pool: list[Problem]) -> int:
    """Problems whose question repeats an earlier one's under another id (the split keeps them on one side)."""
    return len(pool) - len({q.question.strip() for q in pool})


@exclusive("probe")
def run(cfg, log=print) -> ProbeResult:
    """fail@k hard set (confirmed), split, saved; pass@k of the base model per difficulty level."""
    pool = check_inputs(cfg)
    layout = open_run(cfg)
    policy, task = load(cfg)
    log(f"backend: {policy.backend} on {policy.device}")
    p = cfg.probe
    t0 = time.time()
    hs = find_hard_set(policy, task, p.pool, pool, samples=p.samples, confirm_samples=p.confirm_samples,
                       temperature=p.temperature, test_fraction=p.test_fraction,
                       first_seed=derive(cfg.seed, "probe", "first_batch"),
                       confirm_seed=derive(cfg.seed, "probe", "confirm_batch"),
                       split_seed=derive(cfg.seed, "probe", "split"), batch_size=cfg.model.gen_batch_size,
                       on_progress=lambda d, t: report_progress(layout, "probe", "probe", d, t, "problems probed"))
    seconds = time.time() - t0
    if not hs.train or not hs.test:  # what was measured is kept; the hard sets are not written, so no stage runs on none
        write_table(pd.DataFrame({"id": [q.id for q in pool], "level": [q.level for q in pool],
                                  "first_correct": hs.first_counts}), layout.first_batch_counts)
        raise DataError(f"probe.pool {p.pool!r}: {hs.n_fail} of {len(pool)} problems ({len({q.question.strip() for q in pool})} "
                        f"distinct questions) failed both batches, leaving hard-train {len(hs.train)} and hard-test "
                        f"{len(hs.test)}: both need at least one problem (a larger or harder pool; the first-batch "
                        f"counts are in {display_path(layout.first_batch_counts)})")
    save_problems(layout.hard_train, hs.train)
    save_problems(layout.hard_test, hs.test)
    write_table(pd.DataFrame({"id": [q.id for q in pool], "level": [q.level for q in pool],
                              "first_correct": hs.first_counts}), layout.first_batch_counts)
    table = pd.DataFrame([hs.row()])
    write_table(table, layout.table("hard_sets"))
    n_first = int((hs.first_counts == 0).sum())
    summary = {"seconds": round(seconds, 1), "n_pool": len(pool), "fail_first_batch": n_first,
               "fail_both_batches": hs.n_fail, "leaked_in_confirmation": n_first - hs.n_fail,
               "n_train": len(hs.train), "n_test": len(hs.test), "split_seed": hs.split_seed,
               "duplicate_questions": duplicate_questions(pool),
               "shared_structure": task.shared_structure(hs.train, hs.test)}
    levels = None
    if p.level_pool:
        levels = pass_at_k_by_level(cfg, policy, task)
        write_table(levels, layout.table("pass_at_k_by_level"))
    write_json(layout.summary("probe"), summary)
    return ProbeResult(table=table, summary=summary, levels=levels, hard_set=hs)


def pass_at_k_by_level(cfg, policy, task, ks=(1, 4, 8, 16, 32)) -> pd.DataFrame:
    """The base model's pass@k per difficulty level on the level pool."""
    p = cfg.probe
    probs = task.problems(p.level_pool)
    if p.level_limit:
        rng = np.random.default_rng(derive(cfg.seed, "probe", "level_subsample"))
        probs = [probs[i] for i in sorted(rng.choice(len(probs), min(p.level_limit, len(probs)), replace=False))]
    counts = count_correct(policy, task, probs, p.level_samples, p.temperature, derive(cfg.seed, "probe", "level_samples"),
                           cfg.model.gen_batch_size)
    ks = [k for k in ks if k <= p.level_samples]
    rows = []
    for level in sorted({q.level for q in probs}, key=_level_key):
        c = [int(n) for q, n in zip(probs, counts) if q.level == level]
        for k, v in mean_pass_at_k(c, p.level_samples, ks).items():
            rows.append({"level": level, "n": len(c), "k": k, "pass_at_k": v})
    return pd.DataFrame(rows)


def _level_key(level: str):
    digits = "".join(ch for ch in str(level) if ch.isdigit())
    return (int(digits) if digits else 10**6, str(level))
