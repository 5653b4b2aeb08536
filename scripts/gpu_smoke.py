"""GPU smoke test (paper world plumbing), for a CUDA machine without internet. NOT run yet: no GPU was
available in the session that wrote it (see the issue "Paper world on GPU").

    python scripts/gpu_smoke.py [--out results/gpu_smoke]

For the shipped tiny model and a ~100M-parameter Llama built from a config (random weights, saved
locally), on each available backend (hf = peft; unsloth when it imports): probe on a slice, one
meta-training outer step, a short fresh-student evaluation. Prints per-stage seconds and the
unsloth/peft speed ratio.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STAGE_OVERRIDES = ["probe.limit=32", "probe.samples=16", "probe.confirm_samples=16", "probe.level_pool=''",
                   "meta.outer_steps=1", "meta.g=2", "meta.n=8", "meta.r=1", "meta.M=8", "meta.inner_steps=2",
                   "evaluate.seeds=1", "evaluate.steps=4", "evaluate.eval_every=2", "evaluate.methods=[hard-only]"]


def build_100m(path: Path) -> None:
    """A ~100M-parameter Llama with the tiny world's tokenizer (random weights: plumbing and speed only)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from soar_lite.tiny.pretrain import build_tokenizer

    tok = build_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                      num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=256,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)


def run(model: str, backend: str, out: Path) -> float:
    """One subprocess per backend (unsloth must be imported before transformers)."""
    code = f"""
import time
from soar_lite.config import load_config
from soar_lite import pipeline, evaluate_stage
ov = {STAGE_OVERRIDES!r} + ["model.path={model}", "model.backend={backend}", "model.dtype=bfloat16",
      "results_dir={out}", "name={Path(model).name}-{backend}"]
cfg = load_config("{REPO / 'params' / 'tiny.yaml'}", ov)
for name, fn in [("probe", pipeline.run_probe), ("meta_train", pipeline.run_meta_train), ("evaluate", evaluate_stage.run_evaluate)]:
    t = time.time(); fn(cfg, log=lambda m: None); print(f"{{name}}: {{time.time() - t:.1f}} s", flush=True)
"""
    t = time.time()
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, text=True, capture_output=True)
    print(f"--- {model} / {backend} (rc={r.returncode})\n{r.stdout}{r.stderr[-1500:] if r.returncode else ''}")
    return time.time() - t if r.returncode == 0 else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "results" / "gpu_smoke")
    a = ap.parse_args()
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu_smoke: no CUDA device; this script is for a GPU machine")
    big = a.out / "llama-100m"
    if not big.exists():
        build_100m(big)
    backends = ["hf"] + (["unsloth"] if importlib.util.find_spec("unsloth") else [])
    for model in ["tiny", str(big)]:
        times = {b: run(model, b, a.out) for b in backends}
        if "unsloth" in times:
            print(f"{Path(model).name}: unsloth/peft wall-time ratio {times['hf'] / times['unsloth']:.2f}x")
        print(f"{Path(model).name}: {times}")


if __name__ == "__main__":
    main()
