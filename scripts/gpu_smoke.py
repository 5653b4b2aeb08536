"""GPU smoke test of the paper-world plumbing, for a CUDA machine without internet.

    python scripts/gpu_smoke.py [--out results/gpu_smoke]            # on a GPU: both backends
    python scripts/gpu_smoke.py --allow-cpu --models big --big 64,2,2,150 --out DIR   # the test suite's CPU check

For each model -- the shipped tiny model, and a 113M-parameter Llama (d=768, 12 layers) with the same
tokenizer, built from a config and pretrained for 400 steps on the tiny world's corpus right here (so its
teacher samples parse) -- and each backend that imports (hf = peft; unsloth), in a fresh process each (unsloth
must be imported before transformers): probe on a slice -> one meta-training outer step -> a short
fresh-student evaluation. Prints seconds per stage, the outer step's measured throughputs (tokens/s of
generation / training), the unsloth/peft ratio per stage, and the cost model's estimate for every
params file from the larger model's throughput (scaled by the parameter ratio: an extrapolation).
Writes everything to OUT/summary.json.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STAGE_OVERRIDES = [
    "probe.limit=48", "probe.samples=16", "probe.confirm_samples=16", "probe.level_pool=''",
    "meta.outer_steps=1", "meta.g=4", "meta.n=32", "meta.r=1", "meta.M=32", "meta.inner_steps=4",
    "meta.max_teacher_tries=100", "meta.teachers=[grounded]", "evaluate.seeds=1", "evaluate.steps=8", "evaluate.eval_every=4",
    "evaluate.methods=[hard-only]", "model.gen_batch_size=512",
]
# d=768, 12 layers, 12 heads: 113,434,368 parameters (measured) with the tiny world's 220-token vocabulary
BIG = {"hidden": 768, "layers": 12, "heads": 12, "steps": 400, "lr": 1e-3}

STAGE_RUNNER = """
import json, sys, time
from soar_lite.config import load_config
from soar_lite.models import backend_line
from soar_lite.stages import evaluate, meta_train, probe
cfg = load_config(sys.argv[1], json.loads(sys.argv[2]))
print(backend_line(cfg.model.backend), flush=True)
times = {}
for name, fn in [("probe", probe.run), ("meta_step", meta_train.run), ("evaluate", evaluate.run)]:
    t = time.time(); fn(cfg, log=lambda m: None); times[name] = round(time.time() - t, 2)
    print(f"  {name}: {times[name]} s", flush=True)
metrics = [json.loads(l) for l in cfg.layout.meta().metrics.read_text().splitlines()]
print("RESULT " + json.dumps({"times": times, "profile": metrics[-1]["profile"]}), flush=True)
"""


def build_big(path: Path, device: str, size: dict) -> int:
    """Pretrain the larger model on the tiny world's corpus; returns its parameter count."""
    from soar_lite.tasks.tiny import TinyWorldSpec
    from soar_lite.tasks.tiny.pretrain import pretrain

    info = pretrain(path, steps=size["steps"], batch=96, lr=size["lr"], seed=0, spec=TinyWorldSpec(), log_every=100,
                    hidden=size["hidden"], layers=size["layers"], heads=size["heads"], device=device)
    return info["parameters"]


def run_one(model: str, backend: str, dtype: str, out: Path) -> dict:
    name = f"{Path(model).name}-{backend}"
    overrides = STAGE_OVERRIDES + [f"model.path={model}", f"model.backend={backend}", f"model.dtype={dtype}",
                                   f"results_dir={out}", f"name={name}"]
    t = time.time()
    r = subprocess.run([sys.executable, "-c", STAGE_RUNNER, str(REPO / "params" / "tiny.yaml"), json.dumps(overrides)],
                       cwd=REPO, text=True, capture_output=True)
    print(f"--- {name} (rc={r.returncode}, {time.time() - t:.0f} s)")
    print("\n".join(l for l in r.stdout.splitlines() if not l.startswith("RESULT ")))
    if r.returncode != 0:
        print(r.stderr[-3000:])
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"rc={r.returncode}"}
    res = json.loads(next(l for l in r.stdout.splitlines() if l.startswith("RESULT "))[7:])
    p = res["profile"]
    res["gen_tok_s"] = p["gen_tokens"] / max(p["gen_s"], 1e-9)
    res["train_tok_s"] = p["train_tokens"] / max(p["train_s"], 1e-9)
    print(f"  outer step: generation {res['gen_tok_s']:,.0f} tok/s, training {res['train_tok_s']:,.0f} tok/s")
    return res


def extrapolate(res: dict, n_params: int) -> dict:
    """The cost model for each params file, at the measured throughput scaled to the params file's model size."""
    from soar_lite.config import load_config, shipped_params
    from soar_lite.cost import MODEL_PARAMETERS, Throughput, cost_report

    thr = Throughput(gen=res["gen_tok_s"], train=res["train_tok_s"], score=res["train_tok_s"] * 3)
    table = {}
    for name in ("paper-math", "paper-harp", "colab-small"):
        cfg = load_config(shipped_params()[name])
        rows, _ = cost_report(cfg, throughput=thr.scaled(n_params / MODEL_PARAMETERS[cfg.model.path]))
        est = table[name] = rows[0]  # the given (scaled, measured) throughput comes first
        print(f"  {name}: {est['h_per_outer_step'][0]:.2f}-{est['h_per_outer_step'][1]:.2f} h per outer step, "
              f"{est['h_per_meta_run'][0]:,.0f}-{est['h_per_meta_run'][1]:,.0f} h per meta-training run "
              f"(paper: 1,500-1,900 GPU-h on 32 GPUs)")
    return table


def main(argv=None):
    ap = argparse.ArgumentParser(description="GPU smoke test: probe -> one outer step -> short evaluation")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "gpu_smoke")
    ap.add_argument("--models", default="tiny,big", help="comma list of tiny, big")
    ap.add_argument("--allow-cpu", action="store_true", help="run without CUDA (hf backend only; for the test suite)")
    ap.add_argument("--big", default=None, help="hidden,layers,heads,steps of the larger model (default 768,12,12,400)")
    a = ap.parse_args(argv)
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not a.allow_cpu:
        sys.exit("gpu_smoke: no CUDA device; this script is for a GPU machine (--allow-cpu for a CPU check)")
    size = dict(BIG)
    if a.big:
        size.update(zip(("hidden", "layers", "heads", "steps"), map(int, a.big.split(","))))
    backends = ["hf"] + (["unsloth"] if cuda and importlib.util.find_spec("unsloth") else [])
    print(f"CUDA: {torch.cuda.get_device_name(0) if cuda else 'none'}; backends: {', '.join(backends)}")
    a.out.mkdir(parents=True, exist_ok=True)
    summary = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__, "models": {}}
    for model in a.models.split(","):
        path, n_params = "tiny", None
        if model == "big":
            path = str(a.out / "llama-big")
            t = time.time()
            n_params = build_big(Path(path), "cuda" if cuda else "cpu", size)
            print(f"built and pretrained {n_params / 1e6:.1f}M-parameter model in {time.time() - t:.0f} s")
        dtype = "bfloat16" if cuda else "float32"
        runs = {b: run_one(path, b, dtype, a.out) for b in backends}
        if "unsloth" in runs and "error" not in runs["unsloth"] and "error" not in runs["hf"]:
            ratios = {s: runs["hf"]["times"][s] / max(runs["unsloth"]["times"][s], 1e-9) for s in runs["hf"]["times"]}
            print(f"{model}: unsloth speed-up over peft (hf s / unsloth s): "
                  + ", ".join(f"{s} {r:.2f}x" for s, r in ratios.items()))
            runs["speedup_unsloth_over_hf"] = ratios
        if n_params and "error" not in runs["hf"]:
            best = max((r for b, r in runs.items() if b in backends and "error" not in r), key=lambda r: r["gen_tok_s"])
            print(f"cost model from the {n_params / 1e6:.1f}M model's outer step on this device "
                  "(EXTRAPOLATED by parameter ratio; device-hours):")
            runs["extrapolated_cost"] = extrapolate(best, n_params)
            runs["parameters"] = n_params
        summary["models"][model] = runs
    (a.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {a.out / 'summary.json'}")
    failed = [f"{m}/{b}" for m, runs in summary["models"].items() for b, r in runs.items() if isinstance(r, dict) and "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
