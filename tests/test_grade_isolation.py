"""The grader against a class folder of hostile, broken and awkward submissions (issue 14).

One grading run (`--jobs 2`, bubblewrap where it runs) grades the whole folder; each test asserts
one outcome: forged rows stay at their real score, classmates keep their grades and files, the
grader survives, no process of a submission outlives grading, nothing is written outside the
sandbox, no network, no instructor variable, limits hold, malformed notebooks get a row each, and
what `cl.check` passes the grader passes.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from course_lib.grading.lms import write_gradebooks
from course_lib.grading.isolation import choose_isolation
from course_lib.grading.submissions import Submission
from course_lib.grading import exercises_of, grade_solution
from course_lib.grading import solved_source
from grade_helpers import grade_args, notebook, processes_with, read_gradebooks, run_grader

MARK = f"gt{uuid.uuid4().hex[:10]}"  # a process name (15 characters at most) and a file suffix
CANARY = f"canary-{uuid.uuid4().hex}"
SOLVED = solved_source("activations")
STEPS = len(exercises_of("activations"))
HAS_BWRAP = choose_isolation("auto")[0] == "bubblewrap"  # installed, and able to run here
NAME = "import ctypes\nctypes.CDLL(None).prctl(15, b'{mark}', 0, 0, 0)\n"  # PR_SET_NAME


def _hostile(folder: Path, csv_path: Path, cwd: Path, port: int) -> None:
    name = NAME.format(mark=MARK)
    notebook(
        folder / "a_planter.ipynb",
        f"import os\nCLASS = {str(folder)!r}\n"
        "for where in (CLASS, os.path.dirname(CLASS), os.getcwd(), '/tmp'):\n"
        "    for module in ('nbformat', 'random', 'torch', 'json', 'IPython', 'course_lib'):\n"
        "        try:\n"
        "            with open(os.path.join(where, module + '.py'), 'w') as f:\n"
        "                f.write('raise SystemExit(\"planted\")')\n"
        "        except OSError:\n"
        "            pass\n",
    )
    notebook(
        folder / "b_tamperer.ipynb",
        f"import glob, os\nCLASS = {str(folder)!r}\nhits = []\n"
        "for root in (CLASS, os.path.dirname(CLASS), os.getcwd(), '..', '/tmp'):\n"
        "    for path in glob.glob(os.path.join(root, '**', '*.ipynb'), recursive=True):\n"
        "        if not path.endswith('b_tamperer.ipynb'):\n"
        "            try:\n"
        "                open(path, 'w').close()\n"
        "                hits.append(path)\n"
        "            except OSError:\n"
        "                pass\n",
    )
    notebook(
        folder / "c_forger.ipynb",
        f"import os, time\nCSV = {str(csv_path)!r}\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        + "".join("        " + line + "\n" for line in name.splitlines())
        + "        for _ in range(120):\n"
        "            time.sleep(0.25)\n"
        "            for target in (CSV, CSV[:-4] + '.json'):\n"
        "                try:\n"
        "                    with open(target, 'a') as f:\n"
        "                        f.write('forged,activations,,5,5,1,1,1,1,1,,\\n')\n"
        "                except OSError:\n"
        "                    pass\n"
        "    os._exit(0)\n",
        "def step(x):\n    return x\n",
    )
    notebook(
        folder / "d_pipe_holder.ipynb",
        "import os, subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', '{MARK}'])\n"
        "if os.fork() == 0:\n"
        + "".join("    " + line + "\n" for line in name.splitlines())
        + "    time.sleep(600)\n    os._exit(0)\n",
        SOLVED,
    )
    notebook(
        folder / "e_killer.ipynb",
        "import os, signal\n"
        "for pid in (os.getppid(), 1, -1):\n"
        "    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass\n"
        "for entry in os.listdir('/proc'):\n"
        "    if entry.isdigit() and int(entry) != os.getpid():\n"
        "        try:\n            os.kill(int(entry), signal.SIGKILL)\n        except OSError:\n  "
        "          pass\n",
    )
    targets = [
        str(cwd / "escaped.txt"),
        str(folder / "escaped.txt"),
        f"/tmp/escaped-{MARK}",
        f"/root/escaped-{MARK}",
        str(Path.home() / f"escaped-{MARK}"),
        str(Path(__file__).parent / MARK),
    ]
    notebook(
        folder / "f_escapee.ipynb",
        f"import os\nwrote = []\nfor target in {targets!r}:\n"
        "    try:\n        open(target, 'w').write('x')\n        wrote.append(target)\n"
        "    except OSError:\n        pass\n",
    )
    notebook(
        folder / "g_network.ipynb",
        "import socket\nresults = []\n"
        f"for address in (('127.0.0.1', {port}), ('localhost', {port})):\n"
        "    s = socket.socket()\n    s.settimeout(3)\n"
        "    try:\n        s.connect(address)\n        s.sendall(b'leak')\n        "
        "results.append('connected')\n"
        "    except OSError as exc:\n        results.append(type(exc).__name__)\n"
        "def step(x):\n    raise ValueError(repr(results))\n",
    )
    notebook(
        folder / "h_environment.ipynb",
        "import json, os\ndef step(x):\n    raise ValueError(json.dumps(dict(os.environ)))\n",
    )
    notebook(
        folder / "i_memory_hog_processes.ipynb",
        "import os, time\n"
        "for _ in range(4):\n"
        "    if os.fork() == 0:\n"
        "        try:\n            block = bytearray(600 * 2**20)\n            time.sleep(30)\n"
        "        finally:\n            os._exit(0)\n"
        "time.sleep(6)\n",
        SOLVED,
    )
    notebook(
        folder / "j_disk_filler.ipynb",
        "problems = []\nfor target in ('big.bin', '/tmp/big2.bin'):\n"
        "    try:\n        with open(target, 'wb') as f:\n"
        "            for _ in range(100):\n                f.write(bytes(2**20))\n"
        "    except OSError as exc:\n        problems.append(exc.strerror)\n"
        "def step(x):\n    raise ValueError(repr(problems))\n",
    )
    notebook(
        folder / "k_big_output.ipynb",
        "print('x' * 2**29)\nimport os\nos.write(1, bytes(2**28))\n",
        SOLVED,
    )
    notebook(
        folder / "l_huge_tensor.ipynb",
        "import torch\ndef step(x):\n    return torch.zeros(2**24)\n",
    )
    notebook(
        folder / "m_raw_writer.ipynb",
        "import os\nfor fd in range(3, 64):\n"
        "    try:\n        for _ in range(64):\n            os.write(fd, bytes(2**20))\n"
        "    except OSError:\n        pass\n",
    )
    notebook(
        folder / "n_recursion.ipynb",
        "import sys\nsys.setrecursionlimit(10**7)\ndef f(n):\n    return f(n + 1) + 1\nf(0)\n",
        SOLVED,
    )
    notebook(
        folder / "o_patches_checker.ipynb",
        "import course_lib as cl, importlib\nc = "
        "importlib.import_module('course_lib.grading.checker')\n"
        "c.judge = lambda *a, **k: c.Result('x', True, 1, 0, 'pass')\ncl.check = lambda *a: "
        "print('passed')\n"
        "cmp = importlib.import_module('course_lib.grading.compare')\ncmp.difference = lambda *a, "
        "**k: None\n"
        "def step(x):\n    return x\n",
    )
    notebook(
        folder / "l_fork_bomb.ipynb",
        "import os, time\nchildren, error = 0, 'none'\n"
        "try:\n"
        "    for _ in range(2000):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        children += 1\n"
        "except OSError as exc:\n"
        "    error = type(exc).__name__\n"
        "def step(x):\n"
        "    raise ValueError(f'{children} children, then {error}')\n",
    )
    # the broken submissions of any class
    stub = "def step(x):\n    raise NotImplementedError\n"
    notebook(
        folder / "p_untouched.ipynb",
        "import course_lib as cl",
        stub,
        'cl.check("activations.step", step)',
    )
    notebook(folder / "p_syntax_error.ipynb", "def step(x) return x")
    notebook(folder / "p_exits.ipynb", stub, "import sys\nsys.exit(0)")
    notebook(folder / "p_endless.ipynb", "while True:\n    pass")
    notebook(
        folder / "p_kills_itself.ipynb", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    )
    notebook(folder / "p_hogs_memory.ipynb", stub, "hog = bytearray(10**13)")
    (folder / "notes.txt").write_text("not a notebook")


def _awkward(folder: Path) -> None:
    """Honest submissions that used to break grading (items 6-8 of the issue)."""
    (folder / "random.py").write_text("# a learner's stray helper\nRandom = None\n")
    notebook(
        folder / "q_magics.ipynb",
        "%matplotlib inline\n!ls\nfiles = !ls\n%load_ext autoreload",
        "%%time\n" + SOLVED,
        "%%capture captured\nprint('hidden')",
        "display(step)\nx = %time 1 + 1\n",
        "%%bash\nrm -rf /\n",
    )
    notebook(
        folder / "q_float64.ipynb", "import torch\ntorch.set_default_dtype(torch.float64)", SOLVED
    )
    notebook(
        folder / "q_thread.ipynb",
        "import threading, time\nthreading.Thread(target=time.sleep, args=(600,)).start()",
        SOLVED,
    )
    # every `return math.sqrt(...)` of the reference returns a NumPy scalar instead
    gradients = re.sub(
        r"return math\.sqrt\((.*?)\)(\s*#.*)?$",
        r"return numpy.float64(math.sqrt(\1))\2",
        solved_source("gradients"),
        flags=re.MULTILINE,
    )
    assert gradients.count("numpy.float64(") >= 3
    notebook(folder / "q_numpy_scalar.ipynb", "import numpy", gradients, chapter="gradients")
    notebook(
        folder / "q_batchnorm_last_week.ipynb", solved_source("batchnorm"), chapter="batchnorm"
    )
    # malformed notebooks: a row each, never a crash
    notebook(folder / "r_metadata_list.ipynb", SOLVED, metadata=[])
    notebook(folder / "r_source_not_text.ipynb", SOLVED)
    path = folder / "r_source_not_text.ipynb"
    path.write_text(
        path.read_text().replace('"cells": [', '"cells": [{"cell_type": "code", "source": 42}, ')
    )
    notebook(folder / "r_cells_not_list.ipynb", SOLVED, cells={"a": 1})
    (folder / "r_empty.ipynb").write_bytes(b"")
    (folder / "r_binary.ipynb").write_bytes(bytes(range(256)) * 4)
    (folder / "r_deep.ipynb").write_text("[" * 100_000 + "]" * 100_000)
    notebook(Path(os.fsdecode(os.fsencode(str(folder)) + b"/s_caf\xe9.ipynb")), SOLVED)
    notebook(
        folder / "z_classmate.ipynb",
        "import course_lib as cl",
        SOLVED,
        'cl.check("activations.step", step)',
        'cl.solution("activations.step")',
        'cl.solution("activations.step", reveal=True)',
    )
    notebook(folder / "z_classmate_too.ipynb", SOLVED)


def _snapshot(folder: Path) -> dict[bytes, str]:
    return {
        os.fsencode(str(p)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*")
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not HAS_BWRAP:  # several of these notebooks would harm an unisolated machine
        pytest.skip(
            "bubblewrap is not installed (.ci/run installs it): the hostile class is not run"
        )
    base = tmp_path_factory.mktemp("isolation")
    folder, cwd = base / "class", base / "cwd"
    cwd.mkdir()
    csv_path, json_path = base / "gradebook.csv", base / "gradebook.json"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    connections: list = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connections.append(listener.accept())
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    _hostile(folder, csv_path, cwd, listener.getsockname()[1])
    _awkward(folder)
    before = _snapshot(folder)
    env = {**os.environ, "COURSE_CANARY": CANARY}
    started = time.monotonic()
    options = dict(jobs=2, isolation="bubblewrap", timeout=20, memory_mb=1536, file_mb=64,
                   output_mb=32, processes=48)
    result = run_grader(*grade_args(folder, csv_path, json_path, **options), cwd=cwd, env=env)
    seconds = time.monotonic() - started
    at_exit = (csv_path.read_bytes(), json_path.read_bytes()) if csv_path.exists() else (b"", b"")
    time.sleep(3)  # what a leftover process would do, it would have done by now
    stop.set()
    rows, records = read_gradebooks(csv_path, json_path)
    yield {
        "result": result,
        "rows": {Path(r["submission"]).name: r for r in rows},
        "records": {Path(r["submission"]).name: r for r in records},
        "folder": folder,
        "cwd": cwd,
        "before": before,
        "at_exit": at_exit,
        "csv": csv_path,
        "json": json_path,
        "seconds": seconds,
        "connections": connections,
        "alive": processes_with(MARK),
    }
    listener.close()


def test_grading_completes_with_a_row_for_every_file(graded):
    result = graded["result"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    names = set(graded["rows"])
    expected = {p.name for p in graded["folder"].iterdir()} - {"s_caf\udce9.ipynb"} | {
        "s_caf\\xe9.ipynb"
    }
    assert names == expected
    print(f"graded {len(names)} submissions in {graded['seconds']:.0f} s")


@pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap is not installed")
def test_every_row_says_it_ran_under_bubblewrap(graded):
    graded_rows = [r for r in graded["rows"].values() if r["isolation"]]
    assert graded_rows and all(r["isolation"].startswith("bubblewrap") for r in graded_rows)
    assert all("own PID" in r["isolation"] for r in graded_rows)


def test_a_forged_row_stays_at_its_real_score(graded):
    assert graded["rows"]["c_forger.ipynb"]["score"] == "0"
    assert (graded["csv"].read_bytes(), graded["json"].read_bytes()) == graded["at_exit"]
    assert b"forged" not in graded["csv"].read_bytes()


def test_no_process_of_a_submission_outlives_grading(graded):
    assert graded["alive"] == []


def test_a_grandchild_holding_the_output_does_not_hold_the_grader(graded):
    row, record = graded["rows"]["d_pipe_holder.ipynb"], graded["records"]["d_pipe_holder.ipynb"]
    assert row["score"] == str(STEPS) and row["error"] == ""
    assert record["seconds"] < 20


def test_classmates_keep_their_files_and_their_grades(graded):
    assert _snapshot(graded["folder"]) == graded["before"]  # nothing planted, emptied or added
    for name in ("z_classmate.ipynb", "z_classmate_too.ipynb", "q_thread.ipynb"):
        assert graded["rows"][name]["score"] == str(STEPS), graded["records"][name]


def test_killing_its_parent_does_not_kill_the_grader(graded):
    assert graded["result"].returncode == 0
    assert "e_killer.ipynb" in graded["rows"]
    assert graded["rows"]["z_classmate.ipynb"]["score"] == str(STEPS)


def test_nothing_is_written_outside_the_private_folder(graded):
    assert not (graded["cwd"] / "escaped.txt").exists()
    assert not (graded["folder"] / "escaped.txt").exists()
    for path in (
        Path(f"/tmp/escaped-{MARK}"),
        Path.home() / f"escaped-{MARK}",
        Path(__file__).parent / MARK,
    ):
        assert not path.exists(), path


@pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap is not installed")
def test_no_network(graded):
    assert graded["connections"] == []
    message = graded["records"]["g_network.ipynb"]["exercises"]["activations.step"]["message"]
    assert "connected" not in message and "Error" in message


def test_no_instructor_variable_is_visible(graded):
    message = graded["records"]["h_environment.ipynb"]["exercises"]["activations.step"]["message"]
    assert "COURSE_LIB_GRADING" in message  # the environment was read...
    assert "COURSE_CANARY" not in message  # ...and held none of the instructor's variables
    assert CANARY not in graded["json"].read_text() + graded["csv"].read_text()


@pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap is not installed")
def test_memory_is_limited_for_the_whole_sandbox(graded):
    record = graded["records"]["i_memory_hog_processes.ipynb"]
    if "cgroup" not in record["isolation"]:
        pytest.skip("no cgroup could be created here: memory is limited per process only")
    assert record["peak_memory_mb"] is not None and record["peak_memory_mb"] <= 1536 + 1, record


@pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap is not installed")
def test_processes_are_limited_for_the_whole_sandbox(graded):
    record = graded["records"]["l_fork_bomb.ipynb"]
    if "cgroup" not in record["isolation"]:
        pytest.skip("no cgroup could be created here: the number of processes is not limited")
    message = record["exercises"]["activations.step"]["message"]
    children = int(message.split("ValueError: ")[1].split()[0])
    assert children < 48 and "then BlockingIOError" in message, message


def test_file_size_is_limited(graded):
    message = graded["records"]["j_disk_filler.ipynb"]["exercises"]["activations.step"]["message"]
    assert "['File too large', 'File too large']" in message, message


def _import_peak_mb() -> float:
    """The peak memory (MB) of a fresh Python that imports the grader and does nothing else."""
    code = "import resource, course_lib.grading.cli; print(resource.getrusage(0).ru_maxrss / 1024)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout)


def test_the_graders_memory_stays_small_whatever_the_output(graded):
    assert graded["rows"]["k_big_output.ipynb"]["score"] == str(STEPS)
    peak = float(graded["result"].stdout.rsplit("grader peak memory ", 1)[1].split()[0])
    # Beyond what importing the grader costs (PyTorch's libraries: about 335 MB with the CPU
    # build, more with a CUDA build), less than one submission's 512 MB print: outputs are read
    # up to `output_mb` (32 MB), never whole.
    assert peak - _import_peak_mb() < 512, graded["result"].stdout[-500:]
    huge = graded["records"]["l_huge_tensor.ipynb"]["exercises"]["activations.step"]["message"]
    assert "more than the grader reads" in huge
    assert "output limit" in graded["rows"]["m_raw_writer.ipynb"]["error"]


def test_broken_submissions_score_zero_with_the_reason(graded):
    rows, records = graded["rows"], graded["records"]
    for name in (
        "p_untouched.ipynb",
        "p_syntax_error.ipynb",
        "p_exits.ipynb",
        "p_endless.ipynb",
        "p_kills_itself.ipynb",
        "p_hogs_memory.ipynb",
        "o_patches_checker.ipynb",
        "e_killer.ipynb",
        "a_planter.ipynb",
        "b_tamperer.ipynb",
    ):
        assert rows[name]["score"] == "0" and rows[name]["max_score"] == str(STEPS), rows[name]
    assert "time limit" in rows["p_endless.ipynb"]["error"]
    assert "SIGKILL" in rows["p_kills_itself.ipynb"]["error"]
    assert rows["notes.txt"]["status"] == "ignored" and rows["notes.txt"]["score"] == ""
    assert "MemoryError" in " ".join(records["p_hogs_memory.ipynb"]["cell_errors"])
    assert (
        "SyntaxError" in records["p_syntax_error.ipynb"]["exercises"]["activations.step"]["message"]
    )
    assert (
        "not implemented yet"
        in records["p_untouched.ipynb"]["exercises"]["activations.step"]["message"]
    )
    assert rows["n_recursion.ipynb"]["error"] or rows["n_recursion.ipynb"]["score"] == str(STEPS)


def test_awkward_but_correct_notebooks_pass_as_cl_check_passes_them(graded):
    rows, records = graded["rows"], graded["records"]
    for name in ("q_magics.ipynb", "q_float64.ipynb", "q_thread.ipynb", "random.py"):
        if name == "random.py":  # not a notebook: listed, not graded
            assert rows[name]["status"] == "ignored" and rows[name]["max_score"] == ""
            continue
        assert rows[name]["score"] == str(STEPS) and rows[name]["error"] == "", records[name]
    assert records["q_numpy_scalar.ipynb"]["exercises"]["gradients.init_std"]["score"] == 1
    assert rows["q_numpy_scalar.ipynb"]["score"] == rows["q_numpy_scalar.ipynb"]["max_score"]
    assert records["q_thread.ipynb"]["seconds"] < 20


def test_float64_default_passes_cl_check_too():
    import torch

    namespace: dict = {}
    exec(SOLVED, namespace)
    torch.set_default_dtype(torch.float64)
    try:
        from course_lib.grading.checker import _reference_cache

        saved = dict(_reference_cache)
        _reference_cache.clear()
        assert all(
            grade_solution(e.id, namespace[e.name]).passed for e in exercises_of("activations")
        )
    finally:
        torch.set_default_dtype(torch.float32)
        _reference_cache.clear()
        _reference_cache.update(saved)


def test_malformed_notebooks_get_a_row_each(graded):
    rows, records = graded["rows"], graded["records"]
    for name in ("r_cells_not_list.ipynb", "r_empty.ipynb", "r_binary.ipynb", "r_deep.ipynb"):
        assert rows[name]["score"] == "0" and "not a readable notebook" in rows[name]["error"], (
            rows[name]
        )
    assert rows["r_metadata_list.ipynb"]["score"] == str(STEPS)
    assert rows["r_source_not_text.ipynb"]["score"] == str(STEPS)
    assert any("not text" in e for e in records["r_source_not_text.ipynb"]["cell_errors"])
    assert rows["s_caf\\xe9.ipynb"]["score"] == str(STEPS)


def test_a_notebook_of_another_chapter_is_flagged(graded):
    row = graded["rows"]["q_batchnorm_last_week.ipynb"]
    assert row["chapter"] == "batchnorm" and "the class's is activations" in row["flag"]
    assert graded["rows"]["z_classmate.ipynb"]["flag"] == ""


def test_the_notebooks_own_solution_cells_are_not_errors(graded):
    assert graded["records"]["z_classmate.ipynb"]["cell_errors"] == []


def test_cells_a_spreadsheet_would_run_are_neutralised(tmp_path):
    row = Submission(
        '=HYPERLINK("http://x")', error="+1", flag="@SUM(A1)", scores={"activations.step": 1}
    )
    write_gradebooks([row], tmp_path / "g.csv", tmp_path / "g.json")
    text = (tmp_path / "g.csv").read_text()
    assert "'=HYPERLINK" in text and "'+1" in text and "'@SUM" in text
