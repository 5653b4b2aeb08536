"""Benchmark: restoring a student from an in-memory adapter snapshot vs reloading the model from disk.

    python scripts/bench_snapshot.py [--model tiny] [--repeats 20]

Prints both times and their ratio (target >= 20x, issue "SOAR meta-training"). Reload = what a student
copy would cost without snapshots: load_policy (model + tokenizer from disk, fresh LoRA wrapper).
"""
import argparse
import time

from soar_lite.config import ModelConfig
from soar_lite.models import load_policy, restore, snapshot


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--lora-r", type=int, default=32)
    a = ap.parse_args()
    cfg = ModelConfig(path=a.model, backend="hf", dtype="float32", lora_r=a.lora_r, lora_alpha=2 * a.lora_r)
    policy = load_policy(cfg)
    snap = snapshot(policy)
    t = time.perf_counter()
    for _ in range(a.repeats):
        restore(policy, snap)
    restore_s = (time.perf_counter() - t) / a.repeats
    t = time.perf_counter()
    for _ in range(max(3, a.repeats // 5)):
        load_policy(cfg)
    reload_s = (time.perf_counter() - t) / max(3, a.repeats // 5)
    print(f"model={a.model} lora_r={a.lora_r} adapter tensors={len(snap)} "
          f"params={sum(v.numel() for v in snap.values())}")
    print(f"restore from in-memory snapshot: {restore_s * 1e3:.3f} ms")
    print(f"reload from disk (load_policy):  {reload_s * 1e3:.1f} ms")
    print(f"ratio reload/restore: {reload_s / restore_s:.0f}x (target >= 20x)")


if __name__ == "__main__":
    main()
