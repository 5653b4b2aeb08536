"""Judge-reply parsing, the judge cache, the OpenAI-compatible endpoint (real loopback server), Vendi."""
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from soar_lite.analysis import (JudgeCache, judge_pairs, label_summary, make_judge, mean_pairwise_cosine_distance,
                                parse_judge_reply, vendi_score, char_ngram_embed, bootstrap_vendi)

GOOD = '<think>2x = 8</think>\n```json\n{"is_correct": true, "is_well_posed": true, "error_type": "None", "verified_answer": "4"}\n```'


@pytest.mark.parametrize("reply,expected", [
    (GOOD, (True, True, "None")),
    ('```json\n{"is_correct": true, "is_well_posed": false, "error_type": "Ambiguous", "verified_answer": "N/A"}\n```',
     (False, False, "Ambiguous")),  # correctness only counts when well posed
    ('```json\n{"is_correct": false, "is_well_posed": true, "error_type": "Arithmetic"}\n```', (True, False, "Arithmetic")),
    ("no json at all", (None, None, "malformed")),
    ('```json\n{"is_correct": true, "is_well_posed": tr', (None, None, "malformed")),           # truncated
    ('```json\n{"is_correct": "yes", "is_well_posed": true, "error_type": "None"}\n```', (None, None, "malformed")),
    ('```json\n{"is_correct": true, "is_well_posed": true, "error_type": "Typo"}\n```', (None, None, "malformed")),
    ('```json\n[1, 2]\n```', (None, None, "malformed")),
    ("", (None, None, "malformed")),
])
def test_parse_judge_reply(reply, expected):
    lab = parse_judge_reply(reply)
    assert (lab["is_well_posed"], lab["is_correct"], lab["error_type"]) == expected


def test_cache_makes_a_second_run_issue_no_calls(tmp_path):
    calls = []

    def ask(prompt):
        calls.append(prompt)
        return GOOD

    pairs = [("Solve 2x+5=13.", "4"), ("What is 1+1?", "2")]
    labels, n = judge_pairs(pairs, "fake:judge", ask, JudgeCache(tmp_path / "c.jsonl"))
    assert n == 2 and len(calls) == 2
    labels2, n2 = judge_pairs(pairs, "fake:judge", ask, JudgeCache(tmp_path / "c.jsonl"))  # a new process reads the file
    assert n2 == 0 and len(calls) == 2 and labels2 == labels
    _, n3 = judge_pairs(pairs, "other:judge", ask, JudgeCache(tmp_path / "c.jsonl"))       # the judge is part of the key
    assert n3 == 2


def test_judge_failure_is_recorded_not_raised_and_not_cached(tmp_path):
    def ask(prompt):
        if "q1" in prompt:
            raise TimeoutError("slow")
        return GOOD

    said = []
    labels, _ = judge_pairs([("q0", "a"), ("q1", "a")], "x:y", ask, JudgeCache(tmp_path / "c.jsonl"), log=said.append)
    assert [lab["error_type"] for lab in labels] == ["None", "malformed"]
    assert label_summary("s", labels)["malformed_share"] == 0.5
    assert said and "1 of 2 calls failed" in said[0]
    _, calls = judge_pairs([("q0", "a"), ("q1", "a")], "x:y", lambda p: GOOD, JudgeCache(tmp_path / "c.jsonl"))
    assert calls == 1  # the failure was not cached: the next run asks again


def test_unusable_judge_stops_with_a_clear_error_and_keeps_what_was_judged(tmp_path):
    """401 (no key), 404 (wrong URL/model) and a refused connection stop the stage instead of labelling
    everything malformed; the labels judged before stay in the cache."""
    from soar_lite.analysis import JudgeUnavailable

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            self.send_response(401 if "v1" in self.path else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cache = JudgeCache(tmp_path / "c.jsonl")
    judge_pairs([("q0", "a0")], "openai:m", lambda p: GOOD, cache)
    try:
        with pytest.raises(JudgeUnavailable, match="401.*OPENAI_API_KEY"):
            judge_pairs([("q0", "a0"), ("q1", "a1")], "openai:m",
                        make_judge("openai:m", f"http://127.0.0.1:{server.server_port}/v1"), cache)
        with pytest.raises(JudgeUnavailable, match="404.*judge_base_url"):
            judge_pairs([("q1", "a1")], "openai:m", make_judge("openai:m", f"http://127.0.0.1:{server.server_port}/x"), cache)
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(JudgeUnavailable, match="no judge listening"):
        judge_pairs([("q1", "a1")], "openai:m", make_judge("openai:m", f"http://127.0.0.1:{server.server_port}/v1"), cache)
    assert JudgeCache(tmp_path / "c.jsonl").get("openai:m", "q0", "a0") is not None


class _Handler(BaseHTTPRequestHandler):
    replies = []
    received = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.received.append((self.path, body))
        out = json.dumps({"choices": [{"message": {"role": "assistant", "content": _Handler.replies.pop(0)}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def test_openai_endpoint_against_a_real_loopback_server(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _Handler.replies[:] = [GOOD, "garbled reply"]
        ask = make_judge("openai:judge-model", f"http://127.0.0.1:{server.server_port}/v1")
        labels, calls = judge_pairs([("Solve 2x+5=13.", "4"), ("???", "1")], "openai:judge-model", ask,
                                    JudgeCache(tmp_path / "c.jsonl"))
    finally:
        server.shutdown()
    assert calls == 2
    assert [l["error_type"] for l in labels] == ["None", "malformed"]
    path, body = _Handler.received[0]
    assert path == "/v1/chat/completions" and body["model"] == "judge-model"
    assert "Solve 2x+5=13." in body["messages"][0]["content"] and "CRITICAL INSTRUCTION" in body["messages"][0]["content"]


@pytest.mark.parametrize("n", [1, 5, 32])
def test_vendi_identical_items_is_one(n):
    assert vendi_score(np.tile([[0.3, 0.4, 0.5]], (n, 1))) == pytest.approx(1.0)


@pytest.mark.parametrize("n", [2, 7, 64])
def test_vendi_orthogonal_items_is_n(n):
    assert vendi_score(np.eye(n)) == pytest.approx(n)


def test_vendi_two_clusters_is_two():
    x = np.array([[1, 0]] * 10 + [[0, 1]] * 10, dtype=float)
    assert vendi_score(x) == pytest.approx(2.0)
    m, sd = bootstrap_vendi(x, size=20, iterations=10)
    assert 1.0 <= m <= 2.0 and sd >= 0


def test_mean_pairwise_cosine_distance():
    assert mean_pairwise_cosine_distance(np.eye(3)) == pytest.approx(1.0)
    assert mean_pairwise_cosine_distance(np.ones((4, 2))) == pytest.approx(0.0)


def test_char_ngram_embedding_separates_different_questions():
    e = char_ngram_embed(["f^3(012)", "f^3(012)", "f^7(199)"])
    assert e[0] @ e[1] == pytest.approx(1.0) and e[0] @ e[2] < 0.9


# ---- issue 14 point 10: a judge that cannot stop the stage with a TypeError, hang it, or fill memory ---------
def _serve(handler):
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/v1"


def _reply_handler(content):
    class H(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            self.rfile.read(int(self.headers["Content-Length"]))
            out = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass
    return H


@pytest.mark.parametrize("content, expected", [
    ([{"type": "text", "text": GOOD}], "None"),  # the list form of content: its text parts
    (42, "malformed"),
    (None, "malformed"),
    ({"text": GOOD}, "malformed"),
])
def test_a_reply_whose_content_is_not_text_is_a_failed_call_not_a_typeerror(tmp_path, content, expected):
    server, url = _serve(_reply_handler(content))
    try:
        ask = make_judge("openai:m", url)
        pairs = [("q0", "a0"), ("q1", "a1")]
        good_first = lambda p: GOOD if "q0" in p else ask(p)  # noqa: E731 - one success, so the stage goes on
        labels, _ = judge_pairs(pairs, "openai:m", good_first, JudgeCache(tmp_path / "c.jsonl"), log=lambda m: None)
    finally:
        server.shutdown()
        server.server_close()
    assert labels[1]["error_type"] == expected


def test_a_judge_that_fails_every_call_stops_the_stage(tmp_path):
    """Before: a judge answering 500 to everything gave exit 0 and an all-malformed table."""
    from soar_lite.analysis import JudgeUnavailable

    class Fail(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args):
            pass

    server, url = _serve(Fail)
    try:
        with pytest.raises(JudgeUnavailable, match="the first 5 calls all failed.*500"):
            judge_pairs([(f"q{i}", "a") for i in range(20)], "openai:m", make_judge("openai:m", url),
                        JudgeCache(tmp_path / "c.jsonl"))
        with pytest.raises(JudgeUnavailable, match="all 2 calls failed"):
            judge_pairs([("q0", "a"), ("q1", "a")], "openai:m", make_judge("openai:m", url), JudgeCache(tmp_path / "c.jsonl"))
    finally:
        server.shutdown()
        server.server_close()


def test_the_judge_timeout_bounds_the_whole_call_and_the_body_is_capped():
    """Before: the timeout was per read (a trickling server took 12 s against 2 s) and a 200 MB body was read whole."""
    import time

    from soar_lite.analysis import JudgeReplyError, openai_chat

    class Trickle(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "40")
            self.end_headers()
            try:
                for _ in range(40):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)  # each read well inside the timeout, the whole reply 4 s
            except OSError:
                pass

        def log_message(self, *args):
            pass

    class Huge(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(200 << 20))
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"x" * (1 << 20))
            except OSError:
                pass

        def log_message(self, *args):
            pass

    for handler, match, bound in ((Trickle, "no complete reply within 1 s", 2.5), (Huge, "over 4,194,304 bytes", 20.0)):
        server, url = _serve(handler)
        try:
            t = time.time()
            with pytest.raises(JudgeReplyError, match=match):
                openai_chat(url, "m", "prompt", timeout_s=1.0 if handler is Trickle else 30.0)
            assert time.time() - t < bound
        finally:
            server.shutdown()
            server.server_close()


def test_a_bad_line_in_the_judge_cache_is_skipped_not_a_stop(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = JudgeCache(path)
    cache.put("j", "q", "a", {"is_well_posed": True})
    with open(path, "ab") as f:
        f.write(b'[1, 2]\n{"key": 1, "labels": {}}\n\xff\xfe garbage\n{"key": "k", "labels": []}\n{"torn": \n')
    again = JudgeCache(path)
    assert again.get("j", "q", "a") == {"is_well_posed": True} and again.skipped_lines == 5


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_the_judge_key_goes_only_to_the_named_host(code):
    """Before: urllib followed a redirect and re-sent `Authorization` to the host it named. Now the redirect is
    refused in one line and the second server never sees a request, let alone the key."""
    from soar_lite.analysis import JudgeUnavailable, openai_chat

    seen = []

    class Second(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            seen.append(dict(self.headers))
            self.send_response(500)
            self.end_headers()

        do_GET = do_POST  # noqa: N815

        def log_message(self, *args):
            pass

    second, second_url = _serve(Second)

    class First(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(code)
            self.send_header("Location", second_url + "/chat/completions")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    first, first_url = _serve(First)
    try:
        with pytest.raises(JudgeUnavailable, match="redirects are refused") as e:
            openai_chat(first_url, "m", "prompt", timeout_s=10.0, api_key="sk-secret")
        assert "\n" not in str(e.value) and "sk-secret" not in str(e.value)
        assert seen == []
    finally:
        for s in (first, second):
            s.shutdown()
            s.server_close()


def test_diversity_within_strata_and_at_a_reference_mix():
    """A set of short, identical questions and long, distinct ones: within each stratum the Vendi score is 1 and 4;
    pooled it mixes both; at a reference mix of 3 to 1 the within-stratum score is 1.75; unique share per stratum."""
    from soar_lite.analysis import reweighted, strata_diversity

    questions = ["a", "a", "a", "a", "w", "x", "y", "z"]
    strata = ["depth 1"] * 4 + ["depth 5"] * 4
    emb = np.vstack([np.tile([1.0, 0, 0, 0, 0], (4, 1)), np.eye(5)[1:]])
    t = strata_diversity(questions, strata, emb, size=8).set_index("stratum")
    assert t.loc["depth 1", "vendi"] == pytest.approx(1.0) and t.loc["depth 5", "vendi"] == pytest.approx(4.0)
    assert list(t.n) == [4, 4] and list(t.share) == [0.5, 0.5] and list(t.unique_share) == [0.25, 1.0]
    assert reweighted(t.reset_index(), {"depth 1": 0.75, "depth 5": 0.25}) == pytest.approx(1.75)
    assert reweighted(t.reset_index(), {"depth 1": 3, "depth 9": 1}) == pytest.approx(1.0)  # shared strata only
    assert np.isnan(reweighted(t.reset_index(), {"depth 9": 1.0}))
    one = strata_diversity(["q"], ["s"], np.ones((1, 3)))
    assert one.n.tolist() == [1] and np.isnan(one.vendi[0])


@pytest.mark.parametrize("question,stratum", [("f^3(017)", "depth 3"), ("f^(017)", "unparsed"), ("hello", "unparsed")])
def test_tiny_question_stratum_is_the_depth(question, stratum):
    from soar_lite.config import load_config
    from soar_lite.tasks import make_task

    task = make_task(load_config("ci").task)
    assert task.question_stratum(question) == stratum


def test_tiny_coverage_counts_hard_test_facts_on_correct_chains_only():
    from soar_lite.config import load_config
    from soar_lite.tasks import make_task
    from soar_lite.tasks.base import QAPair
    from soar_lite.tasks.tiny.world import UNCERTAIN

    task = make_task(load_config("ci").task)
    w = task.world
    hard = task.problems("hard-candidates")[:5]
    wanted = {v for p in hard for v in w.path(p.meta["x"], p.meta["depth"]) if w.kind[v] in UNCERTAIN}
    p = hard[0]
    right = QAPair(question=p.question, answer=p.answer, text="")
    wrong = QAPair(question=p.question, answer="f(000)=001", text="")
    assert task.coverage([wrong], hard)["hard_test_facts_taught"] == 0
    c = task.coverage([right], hard)
    mine = {v for v in w.path(p.meta["x"], p.meta["depth"]) if w.kind[v] in UNCERTAIN}
    assert c["hard_test_facts"] == len(wanted) and c["hard_test_facts_taught"] == len(mine) > 0
    assert c["hard_test_fact_coverage"] == pytest.approx(len(mine) / len(wanted))


def test_diversity_is_compared_across_teacher_seeds_with_its_own_words():
    """Grounded-T vs Base-T paired by teacher seed on every diversity column: a consistent drop over 4 seeds reads
    'lower in grounded-t' (not 'contradicted'), a column that does not move reads 'not established'."""
    import pandas as pd

    from soar_lite.stages.analyze import AnalyzeResult

    rows = []
    for i in range(4):
        rows.append({"set": "base-t", "teacher_seed": i, "vendi_pooled": 15.0 + 0.1 * i, "vendi_within": 14.0 + 0.3 * i,
                     "unique_share": 0.9, "coverage:hard_test_fact_coverage": 0.2 + 0.01 * i})
        rows.append({"set": "grounded-t", "teacher_seed": i, "vendi_pooled": 10.0 + 0.2 * i,
                     "vendi_within": 14.0 + 0.3 * i + (0.05 if i % 2 else -0.05), "unique_share": 0.9,
                     "coverage:hard_test_fact_coverage": 0.45 + 0.02 * i})
    res = AnalyzeResult(labels=pd.DataFrame(), vendi=pd.DataFrame(), diversity=pd.DataFrame(),
                        ablation=pd.DataFrame(), judge_calls=0, embedder="char-ngram", ablation_source="pq",
                        per_teacher=pd.DataFrame(rows))
    c = res.diversity_comparison().set_index("measure")
    assert c.loc["vendi_pooled", "verdict"] == "lower in grounded-t" and c.loc["vendi_pooled", "n_a"] == 4
    assert c.loc["vendi_within", "verdict"] == "not established"
    assert c.loc["unique_share", "verdict"] == "untestable"  # no variance: never p = 0
    assert c.loc["coverage:hard_test_fact_coverage", "verdict"] == "higher in grounded-t"
    text = res.diversity_findings()[0]
    assert "across 4 teacher seeds" in text and "Moved (p < 0.05, >= 3 seeds): pooled Vendi, hard_test_fact_coverage" in text
    assert "unique share 0.9 vs 0.9 (+0: untestable)" in text and "nan" not in text
