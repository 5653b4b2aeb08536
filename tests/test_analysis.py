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
        raise TimeoutError("slow")

    labels, _ = judge_pairs([("q", "a")], "x:y", ask, JudgeCache(tmp_path / "c.jsonl"))
    assert labels[0]["error_type"] == "malformed"
    assert label_summary("s", labels)["malformed_share"] == 1.0
    _, calls = judge_pairs([("q", "a")], "x:y", lambda p: GOOD, JudgeCache(tmp_path / "c.jsonl"))
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
