"""Which CPU code paths change the numbers, and what pinning them costs (issue 14, point 13).

Runs the same small pipeline (params/ci.yaml: probe, a 3-step grounded meta-training run, the evaluation of
base-model, hard-only and grounded-t) once per environment setting, each in a fresh process, in interleaved rounds,
and prints: which settings give tables identical to the native run, and the wall time of each relative to native
(median over rounds, side by side in one run). The settings emulate other machines on this one:

    native         what this CPU picks (ATen's AVX512 kernels here; MKL's own dispatch)
    aten-avx2      ATEN_CPU_CAPABILITY=avx2     (an AVX2-only x86 machine, for ATen's vectorised kernels)
    aten-default   ATEN_CPU_CAPABILITY=default  (no vector kernels)
    mkl-avx2       MKL_CBWR=AVX2                 (MKL's code path of an AVX2 machine)
    mkl-compat     MKL_CBWR=COMPATIBLE           (MKL's path that is the same on every x86 CPU)
    pinned         ATEN_CPU_CAPABILITY=default + MKL_CBWR=COMPATIBLE + ONEDNN_MAX_CPU_ISA=SSE41
    pinned-avx2    ATEN_CPU_CAPABILITY=avx2 + MKL_CBWR=COMPATIBLE + ONEDNN_MAX_CPU_ISA=SSE41
    pinned-on-avx2 `pinned` with MKL told the CPU has AVX2 only (MKL_ENABLE_INSTRUCTIONS=AVX2): must equal `pinned`
`pinned` is what `soar-lite run --pin-cpu` sets (cli.PIN_CPU_ENV).

    python scripts/cpu_determinism.py [--rounds 2]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from soar_lite.cli import PIN_CPU_ENV

REPO = Path(__file__).resolve().parent.parent
SETTINGS = {
    "native": {},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "mkl-avx2": {"MKL_CBWR": "AVX2"},
    "mkl-compat": {"MKL_CBWR": "COMPATIBLE"},
    "pinned": dict(PIN_CPU_ENV),
    "pinned-avx2": {**PIN_CPU_ENV, "ATEN_CPU_CAPABILITY": "avx2"},
    "pinned-on-avx2": {**PIN_CPU_ENV, "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}
PIPELINE = """
import sys
from soar_lite.config import load_config
from soar_lite.stages import evaluate, meta_train, probe
cfg = load_config("ci", ["results_dir=" + sys.argv[1], "meta.teachers=[grounded]", "meta.outer_steps=3",
                         "evaluate.methods=[base-model, hard-only, grounded-t]", "evaluate.steps=4",
                         "meta.reward_decoding=logprob"])
quiet = lambda *a: None
probe.run(cfg, log=quiet); meta_train.run(cfg, log=quiet); evaluate.run(cfg, log=quiet)
"""


def fingerprint(run: Path) -> dict:
    """What the run computed: meta-training rewards and scores, the pass@k table, the training curves."""
    rows = [json.loads(line) for line in (run / "meta" / "metrics.jsonl").read_text().splitlines()]
    meta = [{k: r[k] for k in ("reward_mean", "baseline_score", "rewards", "teacher_kl") if k in r} for r in rows]
    out = {"meta": json.dumps(meta, sort_keys=True)}
    for t in ("pass_at_k", "curves"):
        out[t] = (run / "tables" / f"{t}.csv").read_text()
    out["probe"] = (run / "probe" / "hard_test.json").read_text()
    return out


def run_once(env_extra: dict) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **env_extra}
        t0 = time.time()
        subprocess.run([sys.executable, "-c", PIPELINE, tmp], check=True, env=env, cwd=REPO)
        return time.time() - t0, fingerprint(Path(tmp) / "ci")


def max_reward_gap(a: dict, b: dict) -> float:
    ra = [r["reward_mean"] for r in json.loads(a["meta"])]
    rb = [r["reward_mean"] for r in json.loads(b["meta"])]
    return max(abs(x - y) for x, y in zip(ra, rb))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--settings", nargs="*", default=list(SETTINGS))
    args = ap.parse_args()
    if "native" not in args.settings:
        args.settings.insert(0, "native")
    times = {s: [] for s in args.settings}
    prints = {}
    for r in range(args.rounds):
        for s in (args.settings if r % 2 == 0 else list(reversed(args.settings))):  # interleaved rounds
            sec, fp = run_once(SETTINGS[s])
            times[s].append(sec)
            if s in prints and prints[s] != fp:
                print(f"{s}: differs between rounds (not deterministic on one machine)")
            prints[s] = fp
            print(f"round {r} {s}: {sec:.1f} s", flush=True)
    import statistics

    base = prints["native"]
    native_t = statistics.median(times["native"])
    print("\nsetting        identical to native (meta / pass_at_k / curves / probe)   max |reward gap|   time vs native")
    for s in args.settings:
        same = "/".join("yes" if prints[s][k] == base[k] else "NO" for k in ("meta", "pass_at_k", "curves", "probe"))
        print(f"{s:14s} {same:55s} {max_reward_gap(prints[s], base):.1e}          x{statistics.median(times[s]) / native_t:.2f}")
    groups: dict[str, list[str]] = {}
    for s in args.settings:
        groups.setdefault(hashlib.sha256(json.dumps(prints[s], sort_keys=True).encode()).hexdigest()[:8], []).append(s)
    print("\nsettings with identical tables: " + "; ".join(", ".join(g) for g in groups.values()))


if __name__ == "__main__":
    main()
