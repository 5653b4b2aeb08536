"""Answer extraction and equivalence for math benchmarks (paper: Math-Verify, App. B.3/B.5).

- `last_boxed(text)`: contents of the last `\\boxed{...}` (or `\\fbox{...}`), nested braces handled.
- `answers_match(completion, reference)`: math-verify equivalence of the last boxed answer against the
  reference, run in a separate worker process with a hard timeout. math-verify uses `signal.alarm`,
  which does not work in threads, and it is known to hang on some inputs (measured here): a call that
  outlives `timeout_s` kills the worker, counts as "not equal", and a new worker serves the next call.

Model text never reaches eval/exec/sympify in this process; math-verify parses it in the worker.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import re

_BOX_TAGS = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """The contents of the last \\boxed{...} (or \\fbox{...}) in `text`, or None. Handles nested
    braces, '\\boxed {x}' and the brace-less '\\boxed 2' found in MATH; an unclosed box returns None."""
    best = None  # (position of the tag, index after the tag)
    for tag in _BOX_TAGS:
        pos = text.rfind(tag)
        if pos != -1 and (best is None or pos > best[0]):
            best = (pos, pos + len(tag))
    if best is None:
        return None
    j = best[1]
    while j < len(text) and text[j] == " ":
        j += 1
    if j >= len(text):
        return None
    if text[j] != "{":
        if j == best[1]:
            return None  # '\\boxedx' is another command, not a box
        m = re.match(r"[^\s$]+", text[j:])
        return m.group(0) if m else None
    depth = 0
    for i in range(j, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[j + 1 : i]
    return None


def _worker(conn) -> None:  # runs in the child process
    from math_verify import parse, verify

    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg is None:
            return
        gold, pred = msg
        try:
            g = parse(f"${gold}$" if "$" not in gold and "\\boxed" not in gold else gold)
            p = parse(f"\\boxed{{{pred}}}")
            ok = bool(g) and bool(p) and bool(verify(g, p))
        except Exception:  # a parse failure is an unequal answer, never a crash
            ok = False
        conn.send(ok)


class Verifier:
    """A math-verify worker process with a hard per-call timeout."""

    def __init__(self, timeout_s: float = 5.0, startup_timeout_s: float = 60.0):
        self.timeout_s = timeout_s
        self.startup_timeout_s = startup_timeout_s
        self._proc = None
        self._conn = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_worker, args=(child,), daemon=True)
        self._proc.start()
        self._conn = parent
        # start-up (spawn + importing math-verify) is not charged to the first call's timeout
        if not parent.poll(self.startup_timeout_s) or parent.recv() != "ready":
            self._kill()
            raise RuntimeError("math-verify worker did not start (is math-verify installed?)")

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(timeout=5)
        self._proc, self._conn = None, None

    def equal(self, reference: str, answer: str) -> bool:
        """math-verify equivalence of two answer strings; False after `timeout_s`."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._conn.send((reference, answer))
        if self._conn.poll(self.timeout_s):
            return bool(self._conn.recv())
        self._kill()  # hung: kill, and start a fresh worker next time
        return False

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
        self._kill()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


_DEFAULT: dict[float, Verifier] = {}


def _verifier(timeout_s: float) -> Verifier:
    key = (os.getpid(), timeout_s)
    if key not in _DEFAULT:
        _DEFAULT[key] = Verifier(timeout_s)
    return _DEFAULT[key]


def strip_dollars(s: str) -> str:
    s = s.strip()
    while len(s) >= 2 and s[0] == "$" and s[-1] == "$":
        s = s[1:-1].strip()
    return s


def answers_match(completion: str, reference: str, timeout_s: float = 5.0) -> bool:
    """True when the last \\boxed{} of `completion` equals `reference` under math-verify."""
    pred = last_boxed(completion)
    if pred is None:
        return False
    ref = strip_dollars(reference)
    if pred.strip() == ref:
        return True  # identical strings need no parser
    return _verifier(timeout_s).equal(ref, pred)
