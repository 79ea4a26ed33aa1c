"""Submissions that could score above 0 and must: the sandbox and the grader (issue 16).

A solved notebook that ends with `sys.exit(0)` (or raises `KeyboardInterrupt`) keeps its marks;
a solved notebook that leaves a long-sleeping grandchild holding the output pipe keeps its marks
and does not hold grading past `--timeout`. The sandbox's server is driven directly, with and
without per-submission namespaces (the fallback where the kernel forbids them), and the grader
end to end with `--isolation process`. These faults live in processes mutmut cannot reach
(benchmarks/mutation.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import time
import uuid

import pytest
import torch

from course_lib.grading import exercises_of, solved_source
from course_lib.grading.sandbox import (
    namespaces_available, read_frame, split_frames, write_frame,
)
from grade_helpers import grade_args, notebook, processes_with, read_gradebooks, run_grader

SOLVED = solved_source("activations")
IDS = [e.id for e in exercises_of("activations")]
MARK = f"gf{uuid.uuid4().hex[:10]}"
TIMEOUT = 12  # seconds per submission: the grandchild below sleeps 600
# a grandchild in the submission's process group, holding every inherited descriptor
GRANDCHILD = (
    "import os, subprocess, sys\n"
    f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', '{MARK}'],\n"
    "                 close_fds=False)\n"
    "if os.fork() == 0:\n"
    "    import time\n"
    "    time.sleep(600)\n"
    "    os._exit(0)\n"
)
ENDINGS = {
    "exit0": "import sys\nsys.exit(0)",
    "exit1": "raise SystemExit(1)",
    "interrupt": "raise KeyboardInterrupt",
    "grandchild": GRANDCHILD,
}


def _raw(*cells: str) -> bytes:
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"course_lib": {"chapter": "activations"}},
          "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                     "source": c} for c in cells]}
    return json.dumps(nb).encode()


class Server:
    """One sandbox server, spoken to with the grader's protocol."""

    def __init__(self, namespaces: bool) -> None:
        config = {"memory_mb": 4096, "file_mb": 64, "tmp_mb": 64, "output_mb": 32,
                  "notebook_mb": 16, "address_space": True, "ids": IDS, "namespaces": namespaces}
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-m", "course_lib.grading.sandbox", json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )
        self.hello = json.loads(read_frame(self.process.stdout.fileno(), 2**16,
                                           time.monotonic() + 300))

    def grade(self, raw: bytes) -> tuple[dict, dict, list[dict]]:
        """(status, meta, one entry per exercise) for one notebook."""
        write_frame(self.process.stdin.fileno(),
                    json.dumps({"name": "s.ipynb", "ids": IDS, "timeout": TIMEOUT}).encode())
        write_frame(self.process.stdin.fileno(), raw)
        nonce = uuid.uuid4().hex
        write_frame(self.process.stdin.fileno(), nonce.encode())
        deadline = time.monotonic() + TIMEOUT + 60
        status = json.loads(read_frame(self.process.stdout.fileno(), 2**16, deadline))
        assert status.pop("nonce") == nonce
        data = read_frame(self.process.stdout.fileno(), 2**26, deadline)
        assert status.pop("sha256") == hashlib.sha256(data).hexdigest()
        frames = split_frames(data)
        meta = json.loads(frames[0]) if frames else {}
        entries = [torch.load(io.BytesIO(f), weights_only=True) for f in frames[1:]]
        return status, meta, entries

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


MODES = [False] + ([True] if namespaces_available() else [])


@pytest.fixture(scope="module", params=MODES, ids=lambda n: "namespaces" if n else "process-group")
def server(request):
    server = Server(request.param)
    assert server.hello["namespaces"] == request.param
    yield server
    server.close()


CASES = [len(list(e.cases())) for e in exercises_of("activations")]


def _all_passed(entries: list[dict]) -> bool:
    """Every function found and run on every case without raising (the grader judges values)."""
    return [len(e["outcomes"]) for e in entries] == CASES and all(
        not e["missing"] and all(o["status"] == "ok" for o in e["outcomes"]) for e in entries
    )


@pytest.mark.parametrize("ending", ["exit0", "exit1", "interrupt"])
def test_a_solved_notebook_that_exits_keeps_its_answers(server, ending):
    status, meta, entries = server.grade(_raw(SOLVED, ENDINGS[ending]))
    assert status["outcome"] == "finished", status
    assert _all_passed(entries)
    assert any(("SystemExit" if ending != "interrupt" else "KeyboardInterrupt") in p
               for p in meta["cell_errors"])


def test_a_grandchild_holding_the_pipe_neither_stalls_nor_loses_the_answers(server):
    started = time.monotonic()
    status, _, entries = server.grade(_raw(SOLVED, GRANDCHILD))
    seconds = time.monotonic() - started
    assert status["outcome"] == "finished", status
    assert _all_passed(entries)
    assert seconds < TIMEOUT
    time.sleep(0.5)
    assert processes_with(MARK) == []


def test_the_grader_scores_them_in_full_within_the_timeout(tmp_path):
    folder = tmp_path / "class"
    for name, ending in ENDINGS.items():
        notebook(folder / f"{name}.ipynb", SOLVED, ending)
    csv_path, json_path = tmp_path / "g.csv", tmp_path / "g.json"
    started = time.monotonic()
    result = run_grader(*grade_args(folder, csv_path, json_path, jobs=1, isolation="process",
                                    timeout=TIMEOUT))
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    rows, records = read_gradebooks(csv_path, json_path)
    scores = {row["submission"].rsplit("/", 1)[-1]: row["score"] for row in rows}
    assert scores == {f"{name}.ipynb": str(len(IDS)) for name in ENDINGS}
    # each submission within its --timeout; the whole run: one sandbox start and four notebooks
    assert all(record["seconds"] < TIMEOUT for record in records), records
    assert seconds < 120 + TIMEOUT
    time.sleep(0.5)
    assert processes_with(MARK) == []


def test_an_installation_under_tmp_stays_visible_in_the_private_tmp(monkeypatch):
    """A checkout or virtual environment in /tmp (a CI clone, say) is bound back into the
    submission's fresh /tmp; without it, every import made while grading failed (code 70)."""
    from course_lib.grading import sandbox

    monkeypatch.setattr(sys, "path", ["/tmp/clone/.venv/lib/site-packages", "/usr/lib/python3"])
    kept = sandbox._installed_under_tmp()
    assert "/tmp/clone" in kept and all(k.count("/") == 2 for k in kept)


def test_a_submission_sees_only_the_processes_of_its_namespace(server):
    """With namespaces, a fresh /proc (issue 22): its first process (1) and itself (2); the
    server, its pipes and the instructor's processes are not there to open."""
    source = (
        "import os\nPIDS = sorted(p for p in os.listdir('/proc') if p.isdigit())\n"
        "def step(x):\n    raise ValueError(' '.join(PIDS))\n"
    )
    _, _, entries = server.grade(_raw(source))
    error = entries[IDS.index("activations.step")]["outcomes"][0]["error"]
    listed = error.split("ValueError: ", 1)[1].split(" (", 1)[0].split()
    if server.hello["namespaces"]:
        assert server.hello["proc"] and listed == ["1", "2"], error
    else:
        assert str(server.hello["pid"]) in listed  # no namespace: the machine's /proc
