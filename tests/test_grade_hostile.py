"""Hostile submissions against the grader's own pipes (issue 22).

A submission once opened the pipes of the sandbox's server through `/proc/<pid>/fd`: it wrote a
forged reply (8/8 for itself), read the next classmate's request and notebook and answered it
(0/8 for them), and the server's real replies then shifted onto the classmates after. Here the
same attack, a scan of every descriptor of every process it can see, and a forger that writes
frames then junk are graded with `--jobs 1` and `--jobs 2` under bubblewrap, each followed by
honest classmates: the attackers score 0, open nothing, steal nothing, finish within the
time-out, and every classmate keeps full marks. The grader's check of the reply's nonce is
tested on its own against a fake server that forges.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_lib.grading.isolation import (
    FORGED, Sandbox, SandboxError, Settings, choose_isolation,
)
from course_lib.grading import exercises_of, solved_source
from course_lib.grading.sandbox import read_frame
from grade_helpers import grade_args, notebook, read_gradebooks, run_grader

SOLVED = solved_source("activations")
STEPS = len(exercises_of("activations"))
NAMES = [e.name for e in exercises_of("activations")]
HAS_BWRAP = choose_isolation("auto")[0] == "bubblewrap"
TIMEOUT = 30

# Finds the pipes of the other processes it can see, writes a forged full-marks reply on the
# first it can open for writing, reads the next requests from the first it can open for reading
# and answers each with 0 marks, then (JUNK) writes more forged replies and a frame of junk.
ATTACK = r'''
import io, json, os, select, struct, time
import torch
from course_lib.grading import exercises_of
from course_lib.grading.checker import reference_outcomes
from course_lib.grading.sandbox import _plain_value

STEAL, JUNK = {steal}, {junk}
LOG, STOLEN = [], []

def frame(b):
    return struct.pack('<Q', len(b)) + b

def reply(full):
    entries = []
    for e in exercises_of('activations'):
        outs = reference_outcomes(e)[1] if full else []
        entry = {{'missing': not full, 'outcomes': [
            {{'status': o.status, 'value': _plain_value(o.value, [2**30]), 'error': o.error,
              'mutated': None}} for o in outs]}}
        buf = io.BytesIO()
        torch.save(entry, buf)
        entries.append(buf.getvalue())
    meta = {{'cell_errors': [] if full else ['set by the attacker'], 'default_dtype': 'float32'}}
    data = frame(json.dumps(meta).encode()) + b''.join(frame(x) for x in entries)
    return frame(json.dumps({{'outcome': 'finished', 'code': 0}}).encode()) + frame(data)

me = os.readlink('/proc/self')
writers, readers = {{}}, {{}}
for pid in os.listdir('/proc'):
    if not pid.isdigit() or pid == me:
        continue
    try:
        fds = os.listdir(f'/proc/{{pid}}/fd')
    except OSError as exc:
        LOG.append(f'{{pid}}: {{type(exc).__name__}}')
        continue
    for fd in fds:
        try:
            link = os.readlink(f'/proc/{{pid}}/fd/{{fd}}')
            info = open(f'/proc/{{pid}}/fdinfo/{{fd}}').read()
        except OSError:
            continue
        if link.startswith('pipe:') and fd not in ('0', '1', '2'):
            writing = int(info.split('flags:')[1].split()[0], 8) & 3
            (writers if writing else readers).setdefault(link, f'/proc/{{pid}}/fd/{{fd}}')
out = inp = None
for path in writers.values():
    try:
        out = os.open(path, os.O_WRONLY)
        break
    except OSError as exc:
        LOG.append(f'{{path}}: {{type(exc).__name__}}')
for path in readers.values():
    try:
        inp = os.open(path, os.O_RDONLY)
        break
    except OSError as exc:
        LOG.append(f'{{path}}: {{type(exc).__name__}}')

def read_exact(fd, n, deadline):
    got = b''
    while len(got) < n:
        if not select.select([fd], [], [], max(0, deadline - time.monotonic()))[0]:
            raise TimeoutError
        chunk = os.read(fd, n - len(got))
        if not chunk:
            raise EOFError
        got += chunk
    return got

if out is not None:
    LOG.append('wrote')
    os.write(out, reply(True))
    for _ in range(STEAL if inp is not None else 0):
        try:
            deadline = time.monotonic() + 15
            (n,) = struct.unpack('<Q', read_exact(inp, 8, deadline))
            request = json.loads(read_exact(inp, n, deadline))
            (n,) = struct.unpack('<Q', read_exact(inp, 8, deadline))
            STOLEN.append([request.get('name'), len(read_exact(inp, n, deadline))])
            os.write(out, reply(False))
        except Exception as exc:
            LOG.append(f'steal: {{type(exc).__name__}}')
            break
    for _ in range(JUNK):
        os.write(out, reply(True))
    if JUNK:
        os.write(out, struct.pack('<Q', 60000) + b'junk')
'''

# Tries to open every descriptor of every other process and thread it can see, before and after
# trying to unmount its /proc and /tmp; if anything opened, it deletes its own (correct) answers.
SCAN = r'''
import ctypes, json, os
me = os.readlink('/proc/self')
seen, opened = set(), []

def scan():
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or pid == me:
            continue
        seen.add(pid)
        try:
            tasks = os.listdir(f'/proc/{pid}/task')
        except OSError:
            tasks = []
        for base in [f'/proc/{pid}/fd'] + [f'/proc/{pid}/task/{t}/fd' for t in tasks]:
            try:
                fds = os.listdir(base)
            except OSError:
                continue
            for fd in fds:
                for mode in (os.O_RDONLY, os.O_WRONLY):
                    try:
                        os.close(os.open(f'{base}/{fd}', mode | os.O_NONBLOCK))
                        opened.append(f'{base}/{fd}')
                    except OSError:
                        pass

scan()
libc = ctypes.CDLL(None, use_errno=True)
unmounted = [p for p in ('/proc', '/tmp') if libc.umount2(p.encode(), 2) == 0]
scan()
if opened or unmounted:
    for name in NAMES:
        globals().pop(name, None)
raise ValueError(json.dumps({'seen': len(seen), 'opened': opened[:3], 'unmounted': unmounted}))
'''


def _class(folder: Path) -> None:
    notebook(folder / "a_attacker.ipynb", ATTACK.format(steal=2, junk=0),
             "def step(x):\n"
             "    raise ValueError(f'wrote={\"wrote\" in LOG} stolen={len(STOLEN)}')\n")
    notebook(folder / "b_scanner.ipynb", SOLVED, f"NAMES = {NAMES!r}\n" + SCAN)
    notebook(folder / "c_junk_forger.ipynb", ATTACK.format(steal=0, junk=3))
    for i in range(5):
        notebook(folder / f"d_classmate{i}.ipynb", SOLVED)


@pytest.fixture(scope="module", params=[1, 2], ids=["jobs1", "jobs2"])
def graded(request, tmp_path_factory):
    if not HAS_BWRAP:
        pytest.skip("bubblewrap is not installed (.ci/run installs it): hostile class not run")
    base = tmp_path_factory.mktemp(f"hostile{request.param}")
    _class(base / "class")
    csv_path, json_path = base / "g.csv", base / "g.json"
    started = time.monotonic()
    result = run_grader(*grade_args(base / "class", csv_path, json_path, jobs=request.param,
                                    isolation="bubblewrap", timeout=TIMEOUT))
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows, records = read_gradebooks(csv_path, json_path)
    return {
        "rows": {Path(r["submission"]).name: r for r in rows},
        "records": {Path(r["submission"]).name: r for r in records},
        "stdout": result.stdout,
        "seconds": seconds,
    }


def _message(graded, name):
    return graded["records"][name]["exercises"]["activations.step"]["message"]


def test_the_attacker_opens_no_pipe_steals_nothing_and_scores_zero(graded):
    row = graded["rows"]["a_attacker.ipynb"]
    assert row["score"] == "0", graded["records"]["a_attacker.ipynb"]
    message = " ".join(_message(graded, "a_attacker.ipynb").split())
    assert "ValueError: wrote=False stolen=0" in message, message


def test_honest_classmates_after_the_attackers_keep_full_marks(graded):
    for i in range(5):
        record = graded["records"][f"d_classmate{i}.ipynb"]
        assert record["score"] == STEPS and record["error"] == "", record
        assert record["cell_errors"] == []


def test_a_scan_of_every_descriptor_in_proc_opens_nothing(graded):
    record = graded["records"]["b_scanner.ipynb"]
    assert record["score"] == STEPS, record  # it deletes its answers if anything opened
    report = json.loads(record["cell_errors"][0].split("ValueError: ", 1)[1])
    assert report["opened"] == [] and report["unmounted"] == []
    assert report["seen"] >= 1  # its namespace's first process, at least: the scan ran


def test_a_forger_writing_frames_then_junk_finishes_within_the_timeout(graded):
    record = graded["records"]["c_junk_forger.ipynb"]
    assert record["score"] == 0 and record["seconds"] < TIMEOUT, record
    assert max(r["seconds"] for r in graded["records"].values()) < TIMEOUT


def test_every_row_names_the_per_submission_proc(graded):
    isolation = graded["records"]["d_classmate0.ipynb"]["isolation"]  # the JSON's whole text
    assert "/proc" in isolation and "namespaces" in isolation, isolation


FAKE_SERVER = r'''
import json, os, struct, sys, time
def frame(b):
    return struct.pack('<Q', len(b)) + b
os.write(1, frame(json.dumps({'ready': True, 'namespaces': True}).encode()))
def read(n):
    got = b''
    while len(got) < n:
        got += os.read(0, n - len(got))
    return got
for _ in range(3):  # request, notebook, nonce
    read(struct.unpack('<Q', read(8))[0])
mode = sys.argv[1]
if mode == 'forged':  # a well-formed reply without the nonce
    os.write(1, frame(json.dumps({'outcome': 'finished', 'code': 0}).encode()) + frame(b''))
elif mode == 'junk':  # a frame announced, never sent
    os.write(1, struct.pack('<Q', 60000) + b'junk')
time.sleep(60)
'''


@pytest.mark.parametrize("mode", ["forged", "junk"])
def test_the_grader_rejects_a_reply_without_its_nonce_within_the_deadline(tmp_path, mode):
    """The grader's own check, whatever the layers below let through."""
    sandbox = Sandbox.__new__(Sandbox)
    sandbox.settings, sandbox.mode = Settings(timeout=1), ""
    sandbox.cgroup, sandbox.tmp = None, None
    sandbox.slack = 2.0
    sandbox.process = subprocess.Popen([sys.executable, "-c", FAKE_SERVER, mode],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       start_new_session=True)
    try:
        read_frame(sandbox.process.stdout.fileno(), 2**16, time.monotonic() + 60)  # the hello
        os.set_blocking(sandbox.process.stdin.fileno(), False)
        started = time.monotonic()
        with pytest.raises(SandboxError) as error:
            sandbox.run("x.ipynb", b"{}", ["activations.step"])
        assert time.monotonic() - started < 1 + 2 + 1
        assert (str(error.value) == FORGED) == (mode == "forged"), error.value
    finally:
        sandbox.close()
