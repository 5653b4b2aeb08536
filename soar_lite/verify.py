"""Answer extraction and equivalence for math benchmarks (paper: Math-Verify, App. B.3/B.5).

- `last_boxed(text)`: contents of the last `\\boxed{...}` (or `\\fbox{...}`), nested braces handled.
- `answers_match(completion, reference)`: math-verify equivalence of the last boxed answer against the
  reference, run in a separate worker process with a hard timeout. math-verify uses `signal.alarm`,
  which does not work in threads, and it is known to hang on some inputs (measured here): a call that
  outlives `timeout_s` kills the worker, counts as "not equal", and a new worker serves the next call; a timed-out
  pair is remembered and the string that caused it found by a probe, and a worker that dies is replaced
  (`Verifier`).

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
    import logging
    import signal

    # a Ctrl-C (or the kernel's shutdown) reaches the whole process group: the parent ends this worker itself, so the
    # worker does not print a KeyboardInterrupt traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from math_verify import parse, verify

    # math-verify logs the whole input on its own timeouts (a 2 MB answer: 2 MB of log); ours are counted instead
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    conn.send("ready")
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
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
    """A math-verify worker process with a hard per-call timeout.

    - a call that outlives `timeout_s` kills the worker and counts as unequal; the pair is remembered, and each of
      its two strings not probed before is probed once against a plain number (`PROBE_PARTNER`): a string whose
      probe also times out is the culprit, unequal to everything later without a call, on either side. So only the
      string that hangs pays: a teacher answer such as 9^{9^{9^{9}}} costs two timeouts (its pair and its probe),
      not one per student check, and a reference such as `1` that a pathological student answer timed out against
      stays comparable (`1.0` still equals it). A string that hangs only with particular partners costs one
      timeout per such pair;
    - a worker that dies mid-call (the OOM killer) is replaced and the call retried once on the new worker;
    - the worker starts with the caller's main module hidden, so a script without an `if __name__ == "__main__":`
      guard works (spawn would re-import it).
    `stats` counts calls, timeouts, calls answered from the memo and worker restarts."""

    PROBE_PARTNER = "2"

    def __init__(self, timeout_s: float = 5.0, startup_timeout_s: float = 60.0):
        self.timeout_s = timeout_s
        self.startup_timeout_s = startup_timeout_s
        self._proc = None
        self._conn = None
        self._timed_out: set[tuple[str, str]] = set()  # pairs that timed out
        self._probed: set[str] = set()  # strings probed after a timeout
        self._slow: set[str] = set()  # strings whose probe timed out: the culprits
        self.stats = {"calls": 0, "timeouts": 0, "memo": 0, "restarts": 0, "probes": 0}

    def _start(self) -> None:
        from .executor import main_hidden

        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_worker, args=(child,), daemon=True)
        with main_hidden():
            self._proc.start()
        child.close()  # the parent keeps one end: a dead worker then reads as EOF, not as a hang
        self._conn = parent
        # start-up (spawn + importing math-verify) is not charged to the first call's timeout
        try:
            ready = parent.poll(self.startup_timeout_s) and parent.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self._kill()
            raise RuntimeError("math-verify worker did not start (is math-verify installed?)")

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(timeout=5)
        self._proc, self._conn = None, None

    def _ask(self, reference: str, answer: str) -> bool | None:
        """One call on a live worker: the verdict, None on a timeout; EOFError/OSError when the worker died."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._conn.send((reference, answer))
        if self._conn.poll(self.timeout_s):
            return bool(self._conn.recv())
        return None

    def _call(self, reference: str, answer: str) -> bool | None:
        """One verdict, None on a timeout (the worker then killed; a fresh one serves the next call)."""
        verdict = None
        for _ in (0, 1):
            try:
                verdict = self._ask(reference, answer)
                break
            except (EOFError, OSError):  # the worker died mid-call: a new one gets the call once more; an input
                self._kill()               # that kills two workers counts as a timeout
                self.stats["restarts"] += 1
        if verdict is None:
            self._kill()
            self.stats["timeouts"] += 1
        return verdict

    def equal(self, reference: str, answer: str) -> bool:
        """math-verify equivalence of two answer strings; False after `timeout_s`, or at once for a pair that timed
        out or a string found to hang (class docstring)."""
        if (reference, answer) in self._timed_out or reference in self._slow or answer in self._slow:
            self.stats["memo"] += 1
            return False
        self.stats["calls"] += 1
        verdict = self._call(reference, answer)
        if verdict is None:  # hung (or killed twice): remember the pair, then find which string hangs
            self._timed_out.add((reference, answer))
            for s in (reference, answer):
                if s not in self._probed and s != self.PROBE_PARTNER:
                    self._probed.add(s)
                    self.stats["probes"] += 1
                    if self._call(s, self.PROBE_PARTNER) is None:
                        self._slow.add(s)
            return False
        return verdict

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
