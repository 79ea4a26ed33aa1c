"""The instructor's grader: `python -m course_lib.grade PATH... [--csv F] [--json F] [options]`.

Grades exercise notebooks, or folders of them, on one chapter's exercises (`--chapter`, else the
chapter most notebooks name). Each submission runs in its own sandbox (`course_lib.grading.sandbox`)
under bubblewrap where it can run: no network, a read-only view of the system and the course
environment, a private copy of the notebook in a private temporary folder, its own PID namespace,
a clean environment, limits on memory and processes (a cgroup, else per-process rlimits), file size,
time and output. The score is computed here, from the values the learner's functions returned,
never from what the notebook printed. A broken or hostile submission scores 0 with the reason in
the `error` column and does not stop the others. Both gradebooks are rewritten after every row, by
this process alone, so a killed grader keeps every row it had; a rerun keeps the rows of unchanged
notebooks (`--force` grades all again). `--self-test` proves the exercises are not vacuous.
Exit status 0 when grading completed, whatever the scores.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import io
import json
import os
import queue
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_lib.grading.sandbox import read_frame, split_frames, write_frame

__all__ = ["Settings", "Submission", "grade_paths", "main", "write_gradebooks"]

MAX_NOTEBOOK_MB = 64
ENV_KEEP = {
    "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "COURSE_LIB_GRADING": "1",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    "PATH": "/usr/bin:/bin",
}
# Numerics settings (not secrets) passed on, so the sandbox computes as the grader judges: the
# CPU profile of `make test-portable` (README, "CPU profiles") and MKL's reproducibility mode.
ENV_PASSED = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "DNNL_MAX_CPU_ISA",
              "NPY_DISABLE_CPU_FEATURES")


def _sandbox_environment() -> dict[str, str]:
    return {**ENV_KEEP, **{k: os.environ[k] for k in ENV_PASSED if k in os.environ}}


@dataclass
class Settings:
    """How submissions are run: isolation, limits and time."""

    isolation: str = "auto"  # "auto", "bubblewrap" or "process"
    timeout: float = 120
    memory_mb: int = 6144  # the whole sandbox (cgroup), and each process (address space)
    processes: int = 256  # tasks (processes and threads) per sandbox, where a cgroup exists
    file_mb: int = 256  # largest file a submission may write
    tmp_mb: int = 512  # its private temporary folder
    output_mb: int = 256  # most the grader reads back from one submission


@dataclass
class Submission:
    """One graded submission: a row of the gradebook.

    `scores` holds the points earned per exercise id (partial credit), `points` what each is
    worth, `statuses` its status (`course_lib.grading.points`); `status` is the row's own:
    "graded", "unreadable", "ignored" (not a notebook) or "missing" (a roster student without a
    submission)."""

    submission: str
    chapter: str = ""  # the chapter the notebook itself names ("" if none)
    flag: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    error: str = ""
    cell_errors: list[str] = field(default_factory=list)
    isolation: str = ""
    seconds: float = 0.0
    peak_memory_mb: float | None = None
    points: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    fractions: dict[str, float] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)
    mistakes: dict[str, str] = field(default_factory=dict)
    status: str = "graded"
    student: dict[str, str] = field(default_factory=dict)  # id, name, email (with a roster)
    sha256: str = ""
    mtime: float = 0.0  # the file's modification time (the newest of a student's counts)
    fingerprint: str = ""  # a hash of the learner's own code (`course_lib.grading.roster`)
    similar: list[str] = field(default_factory=list)  # identical submissions (with a roster)

    @property
    def score(self) -> float:
        return round(sum(self.scores.values()), 4)

    @property
    def max_score(self) -> float:
        return round(sum(self.points.get(i, 1.0) for i in self.scores), 4)

    def set_exercises(self, exercises: list) -> None:
        """Every exercise at 0 points, not attempted (what judging then fills in)."""
        from course_lib.grading.points import points_of

        self.scores = {e.id: 0 for e in exercises}
        self.points = {e.id: points_of(e) for e in exercises}
        self.statuses = {e.id: "not attempted" for e in exercises}
        self.fractions = {e.id: 0.0 for e in exercises}


# ---- the class folder ----------------------------------------------------------------------


def display_name(path: Path | str) -> str:
    """A path as one line of plain text, whatever its name holds: undecodable bytes, control
    characters (newlines, ANSI escape codes) and invisible format characters (bidirectional
    overrides) shown as escapes, so that no name can print a line of its own or recolour one."""
    text = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def _submissions(paths: list[str], ignored: list[Path] | None = None) -> list[Path]:
    """The files to grade under `paths`; hidden files and folders (a leading dot) are skipped,
    and the topmost of each is added to `ignored`."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not path.is_symlink():
            for child in sorted(path.rglob("*"), key=lambda p: os.fsencode(str(p))):
                parts = child.relative_to(path).parts
                hidden = [i for i, p in enumerate(parts) if p.startswith(".")]
                if hidden and hidden[0] == len(parts) - 1 and ignored is not None:
                    ignored.append(child)
                if hidden or any(
                    parent.is_symlink()
                    for parent in child.relative_to(path).parents
                    if str(parent) != "."
                ):
                    continue
                if child.is_symlink() or child.is_file():
                    found.append(child)
        else:
            found.append(path)  # a missing file is reported in its row
    return found


def _read_submission(path: Path) -> tuple[bytes | None, str]:
    """The file's bytes, or None and why it cannot be graded."""
    try:
        if path.is_symlink():
            return None, "a symbolic link, not a notebook file: not graded"
        if not path.is_file():
            return None, "not a readable notebook: no such file"
        if path.stat().st_size > MAX_NOTEBOOK_MB * 2**20:
            return None, f"not a readable notebook: larger than {MAX_NOTEBOOK_MB} MB"
        return path.read_bytes(), ""
    except OSError as exc:
        return None, f"not a readable notebook: {exc.strerror or type(exc).__name__}"


def _upgraded(raw: bytes) -> tuple[bytes | None, str]:
    """An nbformat 1-3 notebook converted to nbformat 4 by nbformat; other bytes unchanged;
    (None, why) when the conversion fails."""
    try:
        nb = json.loads(raw)
    except (ValueError, RecursionError):
        return raw, ""
    if not isinstance(nb, dict) or nb.get("nbformat") not in (1, 2, 3):
        return raw, ""
    try:
        import nbformat

        return nbformat.writes(nbformat.reads(raw.decode("utf-8"), as_version=4)).encode(), ""
    except Exception as exc:
        return None, (
            f"not a readable notebook: nbformat {nb['nbformat']} that could not be converted "
            f"({type(exc).__name__}): open it and save it in Jupyter"
        )


def _notebook(raw: bytes) -> tuple[dict | None, str]:
    try:
        nb = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        return None, f"not a readable notebook: {type(exc).__name__}: {first}"[:300]
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None, "not a readable notebook: it has no list of cells"
    return nb, ""


def notebook_chapter(nb: dict) -> str:
    """The chapter a notebook names: its metadata `course_lib.chapter`, else its check() calls."""
    from course_lib.grading import chapters

    meta = nb.get("metadata")
    meta = meta.get("course_lib") if isinstance(meta, dict) else None
    if (
        isinstance(meta, dict)
        and isinstance(meta.get("chapter"), str)
        and meta["chapter"] in chapters()
    ):
        return meta["chapter"]
    texts = []
    for cell in nb.get("cells", []):
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if isinstance(source, str):
            texts.append(source)
    seen = set(re.findall(r"""check\(\s*["']([A-Za-z_]\w*)\.""", "\n".join(texts))) & set(
        chapters()
    )
    return seen.pop() if len(seen) == 1 else ""


# ---- cgroups: memory and processes of a whole sandbox ---------------------------------------


class Cgroup:
    """A cgroup (v2, else v1 memory + pids) that holds one sandbox; None where none can be made."""

    counter = 0
    lock = threading.Lock()

    def __init__(self, dirs: dict[str, Path], version: int) -> None:
        self.dirs, self.version = dirs, version

    @classmethod
    def create(cls, memory_mb: int, processes: int) -> tuple["Cgroup | None", str]:
        if not sys.platform.startswith("linux"):
            return None, "no cgroups on this system"
        group = None
        with cls.lock:  # one at a time: creating may move this grader into a leaf (v2)
            cls.counter += 1
            name = f"course-grade-{os.getpid()}-{cls.counter}"
            limits = f"memory {memory_mb} MB, {processes} tasks per sandbox"
            try:
                root = Path("/sys/fs/cgroup")
                cls._remove_stale(root)
                if (root / "cgroup.controllers").exists():  # cgroup v2 mounted there
                    group = cls._create_v2(root, name, memory_mb, processes)
                    return group, f"cgroup v2 ({limits})"
                group = cls({}, 1)
                for line in Path("/proc/self/cgroup").read_text().splitlines():
                    _, controllers, own = line.split(":", 2)
                    for controller in ("memory", "pids"):
                        if controller in controllers.split(","):
                            group.dirs[controller] = root / controller / own.lstrip("/") / name
                if set(group.dirs) != {"memory", "pids"}:
                    return None, "no memory and pids cgroup controllers"
                for path in group.dirs.values():
                    path.mkdir()
                memory = group.dirs["memory"]
                (memory / "memory.limit_in_bytes").write_text(str(memory_mb * 2**20))
                with contextlib.suppress(OSError):
                    (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_mb * 2**20))
                (group.dirs["pids"] / "pids.max").write_text(str(processes))
                return group, f"cgroup v1 ({limits})"
            except Exception as exc:  # whatever the system: fall back to rlimits, and say so
                if group is not None:
                    with contextlib.suppress(Exception):
                        group.remove()
                return None, f"no cgroup could be created ({type(exc).__name__}: {exc})"[:200]

    @classmethod
    def _create_v2(cls, root: Path, name: str, memory_mb: int, processes: int) -> "Cgroup":
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        own = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
        parent = root / own.lstrip("/")
        if parent.name == f"course-grade-{os.getpid()}-0":  # our own leaf, made below
            parent = parent.parent
        control = parent / "cgroup.subtree_control"
        if not {"memory", "pids"} <= set(control.read_text().split()):
            try:
                control.write_text("+memory +pids")
            except OSError:  # "no internal processes": move this grader into a leaf, then retry
                leaf = parent / f"course-grade-{os.getpid()}-0"
                leaf.mkdir(exist_ok=True)
                (leaf / "cgroup.procs").write_text(str(os.getpid()))
                control.write_text("+memory +pids")
        path = parent / name
        path.mkdir()
        group = cls({"unified": path}, 2)
        try:
            (path / "memory.max").write_text(str(memory_mb * 2**20))
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")
            (path / "pids.max").write_text(str(processes))
        except BaseException:
            group.remove()
            raise
        return group

    @staticmethod
    def _remove_stale(root: Path) -> None:
        """Remove the empty cgroups a killed grader left behind."""
        for path in root.glob("*/**/course-grade-*-*") if root.is_dir() else []:
            pid = path.name.split("-")[2]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                with contextlib.suppress(OSError):
                    path.rmdir()

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def reset_peak(self) -> None:
        if self.version == 1:
            with contextlib.suppress(OSError):
                (self.dirs["memory"] / "memory.max_usage_in_bytes").write_text("0")

    def peak_mb(self) -> float | None:
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        folder = self.dirs.get("memory" if self.version == 1 else "unified")
        try:
            return round(int((folder / name).read_text()) / 2**20, 1)
        except (OSError, ValueError, TypeError):
            return None

    def kill_all(self) -> None:
        for _ in range(50):
            pids = set()
            for procs in self.procs_files():
                with contextlib.suppress(OSError, ValueError):
                    pids |= {int(p) for p in Path(procs).read_text().split()}
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill_all()
        for path in self.dirs.values():
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


# ---- one sandbox: a server that grades submissions one at a time ---------------------------


class SandboxError(Exception):
    """The sandbox could not start or stopped answering."""


FORGED = (
    "the sandbox's reply did not match this submission's request (forged, or out of step): "
    "not graded; the sandbox was restarted"
)


NOBODY = ["--reuid", "65534", "--regid", "65534", "--clear-groups"]  # setpriv's options


def _bwrap_binds() -> list[Path]:
    """The folders the sandbox sees read-only: /usr, the Python installation, the virtual
    environment and course_lib."""
    import course_lib

    package = Path(course_lib.__file__).resolve().parent
    binds = {Path("/usr"), Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), package}
    binds |= {Path(sys.executable).resolve().parent.parent}
    return sorted(binds)


def _bwrap_command(python_command: list[str], fds: dict[Path, int] | None = None) -> list[str]:
    """bubblewrap around the sandbox server: what it sees, read-only, and nothing else. With
    `fds` (folder: descriptor opened here), the folders are bound from the descriptors, so that a
    bubblewrap started as `nobody` binds folders it could not reach by their path."""
    command = [
        "bwrap",
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--uid",
        "65534",
        "--gid",
        "65534",
        # The fresh /tmp first: binds made after it show through it (a checkout or a virtual
        # environment under /tmp, a CI clone say, stays visible; mounted before, it was hidden).
        "--tmpfs",
        "/tmp",
    ]
    for path in _bwrap_binds():
        if fds:
            command += ["--ro-bind-fd", str(fds[path]), str(path)]
        else:
            command += ["--ro-bind", str(path), str(path)]
    for name in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / name
        if target.is_symlink():
            command += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            command += ["--ro-bind", str(target), str(target)]
    for path in ("/etc/ld.so.cache", "/etc/localtime", "/etc/fonts", "/etc/alternatives"):
        command += ["--ro-bind-try", path, path]
    command += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--chdir",
        "/tmp",
        "--clearenv",
    ]
    for key, value in _sandbox_environment().items():
        command += ["--setenv", key, value]
    return command + ["--"] + python_command


class Sandbox:
    """One sandbox (a bwrap container, or a plain process) running the grading server."""

    nobody = True  # bubblewrap may be started as `nobody` (False once that failed to start)
    slack = 60.0  # seconds the server may take beyond --timeout to answer (start-up, reading)

    def __init__(
        self, settings: Settings, mode: str, ids: list[str], use_cgroup: bool = True
    ) -> None:
        self.settings, self.mode = settings, mode
        self.cgroup, limits = (
            Cgroup.create(settings.memory_mb, settings.processes) if use_cgroup else (None, "")
        )
        config = {
            "memory_mb": settings.memory_mb,
            "file_mb": settings.file_mb,
            "tmp_mb": settings.tmp_mb,
            "output_mb": settings.output_mb,
            "notebook_mb": MAX_NOTEBOOK_MB,
            "address_space": self.cgroup is None,
            "ids": ids,
        }
        python = [sys.executable, "-I", "-m", "course_lib.grading.sandbox", json.dumps(config)]
        self.tmp = None if mode == "bubblewrap" else tempfile.mkdtemp(prefix="course-grade-")
        env = dict(
            _sandbox_environment(),
            HOME=self.tmp or "/tmp",
            TMPDIR=self.tmp or "/tmp",
            MPLCONFIGDIR=os.path.join(self.tmp or "/tmp", "matplotlib"),
        )
        env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") if mode == "process" else env["PATH"]
        self.stderr: collections.deque = collections.deque(maxlen=20)
        # bubblewrap started by root covers parts of its /proc, and the kernel then refuses each
        # submission a /proc of its own; started as `nobody` it does not (and no process of the
        # sandbox is root outside it). Where that fails to start, bubblewrap runs as root.
        setpriv = shutil.which("setpriv")
        as_nobody = bool(mode == "bubblewrap" and os.geteuid() == 0 and setpriv and Sandbox.nobody)
        while True:
            fds: dict[Path, int] = {}
            try:
                if mode == "bubblewrap":
                    if as_nobody:
                        fds = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in _bwrap_binds()}
                    command, cwd = _bwrap_command(python, fds), "/"
                    if as_nobody:
                        command = [str(setpriv), *NOBODY, "--", *command]
                else:
                    command, cwd = python, str(self.tmp)
                if self.cgroup:
                    script = (
                        "".join(f'echo $$ > "{p}" && ' for p in self.cgroup.procs_files())
                        + 'exec "$@"'
                    )
                    command = ["/bin/sh", "-c", script, "sh", *command]
                hello = self._start(command, cwd, env, list(fds.values()))
                break
            except SandboxError:
                if not as_nobody:
                    self.close()
                    raise
                Sandbox.nobody, as_nobody = False, False
            finally:
                for fd in fds.values():
                    os.close(fd)
        self.namespaces = bool(hello.get("namespaces"))
        parts = [
            "bubblewrap (read-only system, no network, clean environment)"
            if mode == "bubblewrap"
            else "process only (NOT isolated by bubblewrap)"
        ]
        parts.append(
            ("own PID/mount/network namespaces and /proc per submission" if hello.get("proc")
             else "own PID/mount/network namespaces per submission (the sandbox's /proc)")
            if self.namespaces
            else "no namespaces per submission"
        )
        parts.append(
            limits
            if self.cgroup
            else "memory limited per process by rlimit only"
            + (f": {limits}" if limits else "")
            + f" (address space {settings.memory_mb} MB)"
        )
        parts.append(f"file size {settings.file_mb} MB, private /tmp {settings.tmp_mb} MB")
        self.description = "; ".join(parts)
        self.fresh = True

    def _start(self, command: list[str], cwd: str, env: dict, fds: list[int]) -> dict:
        """Start the server; its hello (SandboxError, and nothing left running, if none)."""
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=fds,
        )
        threading.Thread(target=self._drain, daemon=True).start()
        os.set_blocking(self.process.stdin.fileno(), False)  # writes keep their deadline
        try:
            hello = json.loads(
                read_frame(self.process.stdout.fileno(), 2**16, time.monotonic() + 600)
            )
            if not isinstance(hello, dict):
                raise ValueError("not a hello")
            return hello
        except (EOFError, TimeoutError, ValueError) as exc:
            self._kill()
            raise SandboxError(
                f"the {self.mode} sandbox did not start: {' '.join(self.stderr)[-400:] or exc}"
            ) from None

    def _drain(self) -> None:
        for line in iter(self.process.stderr.readline, b""):
            self.stderr.append(line.decode(errors="replace").strip()[:300])

    def run(self, name: str, raw: bytes, ids: list[str]) -> tuple[dict, list[bytes], float | None]:
        """Send one notebook; return (status, response messages, peak memory in MB).

        The request ends with a fresh nonce that the server reads only once the submission's
        process exists; the reply must carry it and the SHA-256 of its data, else SandboxError
        (a reply forged, or shifted from another request): the caller restarts the sandbox.
        Every write and read has the deadline `--timeout` + `slack`, whatever the pipe holds."""
        if self.cgroup:
            self.cgroup.reset_peak()
        request = {"name": name, "ids": ids, "timeout": self.settings.timeout}
        nonce = secrets.token_hex(16)
        self.fresh = False
        try:
            deadline = time.monotonic() + self.settings.timeout + self.slack
            for message in (json.dumps(request).encode(), raw, nonce.encode()):
                write_frame(self.process.stdin.fileno(), message, deadline)
            out = self.process.stdout.fileno()
            status = json.loads(read_frame(out, 2**16, deadline))
            if not isinstance(status, dict) or status.get("nonce") != nonce:
                raise SandboxError(FORGED)
            data = read_frame(out, self.settings.output_mb * 2**20 + 2**16, deadline)
            if hashlib.sha256(data).hexdigest() != status.get("sha256"):
                raise SandboxError(FORGED)
        except (OSError, EOFError, TimeoutError, ValueError) as exc:
            raise SandboxError(f"the sandbox stopped answering ({type(exc).__name__})") from None
        return status, split_frames(data), self.cgroup.peak_mb() if self.cgroup else None

    def alive(self) -> bool:
        return self.process.poll() is None

    def _kill(self) -> None:
        """End the sandbox's whole process group and reap it."""
        with contextlib.suppress(Exception):
            self.process.stdin.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.process.wait(timeout=10)

    def close(self) -> None:
        self._kill()
        if self.cgroup:
            self.cgroup.remove()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def choose_isolation(requested: str) -> tuple[str, str]:
    """("bubblewrap" or "process", why) for `--isolation` auto/bubblewrap/process."""
    if requested == "process":
        return "process", "--isolation process was asked for"
    if not sys.platform.startswith("linux"):
        why = f"bubblewrap needs Linux (this is {sys.platform})"
    elif not shutil.which("bwrap"):
        why = "bubblewrap is not installed (Debian: apt-get install bubblewrap)"
    else:
        probe = subprocess.run(
            ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        if probe.returncode == 0:
            return "bubblewrap", ""
        why = f"bubblewrap cannot run here: {probe.stderr.strip()[:200]}"
    if requested == "bubblewrap":
        raise SystemExit(f"error: --isolation bubblewrap: {why}")
    return "process", why


# ---- judging, in this process only ---------------------------------------------------------

_JUDGE_LOCK = threading.Lock()


def _changed_argument(case: Any, after: Any) -> int | None:
    """The index of the first argument of `case` that `after` (the arguments as they were after
    the learner's call, returned by the sandbox) shows changed in place; None if none did or
    they did not come back (an argument too large for the output limit is not judged)."""
    from course_lib.grading.compare import difference, plain

    if not isinstance(after, (list, tuple)) or len(after) != len(case.args):
        return None
    for index, (before, now) in enumerate(zip(case.args, after)):
        before = plain(before)
        if isinstance(now, dict) and set(now) == {"unsupported"} and not (
            isinstance(before, dict) and "unsupported" in before
        ):
            continue
        if difference(before, now, 0.0, 0.0) is not None:
            return index
    return None


def _judge(
    row: Submission,
    exercises: list,
    meta: dict,
    entries: list[bytes],
    raw: bytes | None = None,
    ran_out: bool = False,
) -> None:
    """Judge the outcomes the sandbox sent back; an exercise with no entry (the notebook's time
    ran out first, `ran_out`) scores 0, timed out."""
    import torch

    from course_lib.grading.points import missing_status, record_result

    import importlib

    from course_lib.grading.check import Outcome, judge

    check = importlib.import_module("course_lib.grading.check")  # the module, not the function

    dtype = getattr(torch, str(meta.get("default_dtype", "float32")), torch.float32)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        dtype = torch.float32
    for index, exercise in enumerate(exercises):
        row.points[exercise.id] = float(exercise.points)
        row.scores.setdefault(exercise.id, 0)
        if index >= len(entries) and ran_out:
            row.statuses[exercise.id] = "timed out"
            row.messages[exercise.id] = (
                f"✘ {exercise.id}: not graded: the notebook's time ran out before it was run"
            )
            continue
        try:
            entry = (
                torch.load(io.BytesIO(entries[index]), weights_only=True)
                if index < len(entries)
                else None
            )
        except Exception as exc:
            row.messages[exercise.id] = (
                f"✘ {exercise.id}: its results could not be read ({type(exc).__name__})"
            )
            continue
        if not isinstance(entry, dict) or entry.get("missing", True) is not False:
            missing = f"✘ {exercise.id}: no function named {exercise.name!r} is defined"
            row.messages[exercise.id] = missing + (
                f" ({row.cell_errors[0]})" if row.cell_errors else ""
            )
            row.statuses[exercise.id] = missing_status(
                exercise.name, raw, row.cell_errors, ran_out
            )
            continue
        if entry.get("problem"):
            row.messages[exercise.id] = f"✘ {exercise.id}: {str(entry['problem'])[:300]}"
            row.statuses[exercise.id] = "crashed"
            continue
        try:
            returned = list(entry.get("outcomes", []))

            def outcomes(returned: list = returned, exercise: Any = exercise) -> list:
                """Outcome per case; whether it changed its input is judged here, on this
                process's own copy of the case (under the dtype the notebook left)."""
                cases = check.reference_outcomes(exercise)[0]
                return [
                    Outcome(
                        str(o["status"]),
                        o.get("value"),
                        str(o.get("error", "")),
                        _changed_argument(cases[i], o.get("after")) if i < len(cases) else None,
                    )
                    for i, o in enumerate(returned)
                ]

            with _JUDGE_LOCK:
                if dtype == torch.float32:
                    result = judge(exercise, outcomes())
                else:  # the notebook changed the default dtype: so did the cases cl.check built
                    saved = check._reference_cache.pop(exercise.id, None)
                    mutants = {
                        k: check._mutant_cache.pop(k)
                        for k in list(check._mutant_cache)
                        if k[0] == exercise.id
                    }
                    previous = torch.get_default_dtype()
                    torch.set_default_dtype(dtype)
                    try:
                        result = judge(exercise, outcomes())
                    finally:
                        torch.set_default_dtype(previous)
                        check._reference_cache.pop(exercise.id, None)
                        for key in [k for k in check._mutant_cache if k[0] == exercise.id]:
                            del check._mutant_cache[key]
                        if saved is not None:
                            check._reference_cache[exercise.id] = saved
                        check._mutant_cache.update(mutants)
        except Exception as exc:
            row.messages[exercise.id] = (
                f"✘ {exercise.id}: its results could not be judged ({type(exc).__name__})"
            )
            row.statuses[exercise.id] = "crashed"
            continue
        record_result(row, exercise, result)


def _describe_end(status: dict, timeout: float) -> str:
    outcome, code = status.get("outcome"), status.get("code")
    if outcome == "timeout":
        return f"did not finish within the time limit of {timeout:g} s (an endless loop?)"
    if outcome == "too_large":
        return "its results were larger than the output limit; not read"
    if code in (None, 0):
        return ""
    if code > 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = str(code - 128)
        extra = " (out of memory, or a process limit)" if name == "SIGKILL" else ""
        return f"the notebook's process was killed by signal {name}{extra}"
    return f"the notebook's process exited with status {code}"


def grade_one(sandbox: Sandbox, row: Submission, raw: bytes, exercises: list) -> None:
    """Run one notebook in `sandbox` and fill `row` (never raises for a bad submission)."""
    started = time.monotonic()
    name = display_name(Path(row.submission).name)
    status, frames, peak = sandbox.run(name, raw, [e.id for e in exercises])
    row.seconds, row.peak_memory_mb = round(time.monotonic() - started, 2), peak
    end = _describe_end(status, sandbox.settings.timeout)
    meta: dict = {}
    if frames:
        try:
            meta = json.loads(frames[0])
            meta = meta if isinstance(meta, dict) else {}
        except ValueError:
            meta = {}
    errors = meta.get("cell_errors", [])
    row.cell_errors = [str(e)[:300] for e in errors[:10]] if isinstance(errors, list) else []
    unreadable = next((e for e in row.cell_errors if e.startswith("not a readable notebook")), "")
    if unreadable:
        row.error, row.status = unreadable, "unreadable"
        return
    if end and not frames:
        row.error = end
        row.statuses = {e.id: "timed out" if "time limit" in end else "crashed" for e in exercises}
        return
    # judged as far as it got: a notebook stopped halfway keeps the marks of what it returned
    ran_out = len(frames) < len(exercises) + 1
    _judge(row, exercises, meta, frames[1:], raw, ran_out and "time limit" in end)
    if ran_out and "time limit" not in end:
        for exercise in exercises[len(frames) - 1 :]:
            row.statuses[exercise.id] = "crashed"
    stopped = next((e for e in row.cell_errors if "time limit" in e), "")
    row.error = end or stopped


# ---- gradebooks ------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r", "\n"):
        return "'" + value
    return value


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_gradebooks(
    rows: list[Submission],
    csv_path: Path | None,
    json_path: Path | None,
    ids: list[str] | None = None,
) -> None:
    """CSV and JSON gradebooks (`course_lib.grading.lms`: columns, records); each file is
    replaced whole (written aside, then renamed)."""
    from course_lib.grading import lms

    ids = ids if ids is not None else list(dict.fromkeys(i for r in rows for i in r.scores))
    if csv_path:
        _write_atomically(csv_path, lms.csv_text(rows, ids))
    if json_path:
        _write_atomically(json_path, lms.json_text(rows))


# ---- the whole run ---------------------------------------------------------------------------


def _expected_chapter(
    notebooks: list[tuple[Submission, bytes | None, dict | None]], chapter: str | None
) -> str:
    if chapter:
        return chapter
    named = collections.Counter(row.chapter for row, _, nb in notebooks if row.chapter)
    if not named:
        return ""
    best = max(named.values())
    return sorted(c for c, n in named.items() if n == best)[0]


def _resumed_gradebook(csv_path: Path | None, json_path: Path | None) -> Path | None:
    """The `json_path` gradebook a rerun resumes from (`--previous` by default), if it exists;
    refuses a file that is not one, and a CSV gradebook that would be overwritten with nothing
    to resume from."""
    if json_path and json_path.exists():
        try:
            records = json.loads(json_path.read_text(encoding="utf-8"))
            assert isinstance(records, list)
        except (OSError, ValueError, AssertionError):
            raise SystemExit(
                f"error: --json {display_name(json_path)} is not a gradebook of this grader: "
                "move it away, or pass --force to overwrite it"
            ) from None
        return json_path
    if csv_path and csv_path.exists():
        raise SystemExit(
            f"error: --csv {display_name(csv_path)} exists and there is no --json gradebook to "
            "resume from: pass the previous run's --json too, or --force to overwrite it"
        )
    return None


def grade_paths(
    paths: list[str],
    settings: Settings,
    chapter: str | None = None,
    jobs: int = 1,
    csv_path: Path | None = None,
    json_path: Path | None = None,
    echo: Any = print,
    force: bool = False,
    roster: list[dict] | None = None,
    match: str | None = None,
    shard: tuple[int, int] | None = None,
    previous: Path | None = None,
) -> list[Submission]:
    """Grade every notebook under `paths`; write the gradebooks after each row; return the rows.

    A rerun resumes: a notebook whose row is in the `json_path` gradebook already, unchanged
    (same SHA-256) and graded on the same exercises, keeps that row without running again;
    `force` grades every notebook again. Hidden files and folders are listed as ignored.

    Each notebook is graded on `chapter` if given, else on the chapter it names (else the class's:
    the one most notebooks name); a row whose chapter is not the class's (or `chapter`) is
    flagged. With a `roster` (`course_lib.grading.roster`) the rows follow it, one per student;
    `shard` (K, N) grades one slice, `previous` reuses unchanged rows
    (`course_lib.grading.shards`)."""
    from course_lib.grading import chapters, exercises_of
    from course_lib.grading.points import number

    if chapter and chapter not in chapters():
        raise SystemExit(f"error: --chapter {chapter!r}: chapters with exercises: {chapters()}")
    mode, why = choose_isolation(settings.isolation)
    if mode != "bubblewrap":
        banner = "!" * 78
        echo(
            f"{banner}\nWARNING: submissions are NOT isolated by bubblewrap: {why}.\n"
            "They run as plain processes: they can read and write what you can.\n"
            "Grade untrusted notebooks on Linux with bubblewrap installed.\n{banner}".replace(
                "{banner}", banner
            )
        )

    from course_lib.grading.points import exercise_order

    from course_lib.grading import roster as identity
    from course_lib.grading import shards

    loaded = []  # (row, raw bytes or None, notebook or None)
    ignored: list[Submission] = []
    hidden: list[Path] = []
    named = {Path(p) for p in paths}
    folders = [Path(p) for p in paths if Path(p).is_dir()]
    for path in _submissions(paths, hidden):
        relative = next(
            (display_name(path.relative_to(f)) for f in folders if path.is_relative_to(f)),
            display_name(Path(path.name)),
        )
        if not shards.in_shard(relative, shard):
            continue
        row = Submission(display_name(path))
        with contextlib.suppress(OSError):
            row.mtime = path.lstat().st_mtime
        if path not in named and path.suffix.lower() != ".ipynb":  # found in a folder
            row.status, row.error = "ignored", "not a notebook (.ipynb): not graded"
            ignored.append(row)
            continue
        raw, problem = _read_submission(path)
        nb = None
        if raw is not None:
            row.sha256 = hashlib.sha256(raw).hexdigest()
            raw, problem = _upgraded(raw)
        if raw is not None:
            nb, problem = _notebook(raw)
        row.error = problem
        if problem:
            row.status = "unreadable"
        if nb is not None:
            row.chapter = notebook_chapter(nb)
        if roster is not None:
            found = identity.match(relative, nb, roster, match)
            identity.attribute(row, found)
        loaded.append((row, raw, nb))
    for path in hidden:
        echo(f"ignored (hidden; rename it without the leading dot to grade it): "
             f"{display_name(path)}")
    for row in ignored:
        echo(f"{row.submission}: ignored ({row.error})")
    if previous is None and not force:
        previous = _resumed_gradebook(csv_path, json_path)
    expected = _expected_chapter(loaded, chapter)
    graded_on = [chapter or row.chapter or expected for row, _, _ in loaded]
    by_chapter = {c: exercise_order(exercises_of(c)) for c in sorted(set(graded_on)) if c}
    ids = [e.id for exercises in by_chapter.values() for e in exercises]
    templates = {c: identity.template_cells(c) for c in by_chapter}
    for (row, _, nb), target in zip(loaded, graded_on, strict=True):
        row.fingerprint = identity.fingerprint(nb, templates.get(target, set()))
    groups = identity.flag_identical([row for row, _, _ in loaded])
    if groups:
        echo(f"identical submissions: {groups} group(s), flagged in the gradebook")
    reused = shards.previous_rows(previous)
    from course_lib.grading.check import reference_outcomes

    for exercises in by_chapter.values():  # once, before the sandboxes compete for the cores
        for exercise in exercises:
            reference_outcomes(exercise)
    rows = [row for row, _, _ in loaded]
    done: dict[int, Submission] = {}
    lock = threading.Lock()

    def finish(index: int, row: Submission) -> None:
        with lock:
            done[index] = row
            status = f"{number(row.score)}/{number(row.max_score)}" + (
                f"  error: {row.error}" if row.error else ""
            )
            echo(f"{row.submission}: {status}" + (f"  [{row.flag}]" if row.flag else ""))
            write_gradebooks([done[i] for i in sorted(done)] + ignored, csv_path, json_path, ids)

    work: queue.Queue = queue.Queue()
    for index, ((row, raw, _), target) in enumerate(zip(loaded, graded_on, strict=True)):
        exercises = by_chapter.get(target, [])
        row.set_exercises(exercises)
        if row.chapter and expected and row.chapter != expected:
            note = f"chapter {row.chapter}, the class's is {expected}: graded on {target}"
            row.flag = f"{note}; {row.flag}" if row.flag else note
        if not target and not row.error:
            row.error = "cannot tell which chapter's exercises this notebook holds: pass --chapter"
        if row.error:
            finish(index, row)
        elif reused and shards.reuse(row, reused, ids):
            finish(index, row)
        else:
            work.put((index, row, raw, exercises))
    write_gradebooks([done[i] for i in sorted(done)] + ignored, csv_path, json_path, ids)
    descriptions: list[str] = []

    def worker() -> None:
        sandbox: Sandbox | None = None
        use_cgroup = True
        try:
            while True:
                try:
                    index, row, raw, exercises = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    # without namespaces per submission, a used container goes: leftovers with it
                    stale = sandbox is not None and mode == "bubblewrap" and not sandbox.namespaces
                    if sandbox is None or not sandbox.alive() or (stale and not sandbox.fresh):
                        if sandbox is not None:
                            sandbox.close()
                        sandbox = None
                        try:
                            sandbox = Sandbox(settings, mode, ids, use_cgroup)
                        except SandboxError:
                            if not use_cgroup:
                                raise
                            use_cgroup = False  # a cgroup that cannot hold the sandbox: rlimits
                            sandbox = Sandbox(settings, mode, ids, use_cgroup)
                        with lock:
                            if sandbox.description not in descriptions:
                                descriptions.append(sandbox.description)
                                echo(f"isolation: {sandbox.description}")
                    row.isolation = sandbox.description
                    grade_one(sandbox, row, raw, exercises)
                except SandboxError as exc:
                    row.error = str(exc)
                    if sandbox is not None:
                        sandbox.close()
                        sandbox = None
                except Exception as exc:  # a bug of ours must not lose the other rows
                    row.error = f"could not be graded ({type(exc).__name__}: {str(exc)[:200]})"
                finish(index, row)
        finally:
            if sandbox is not None:
                sandbox.close()

    threads = [
        threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(jobs, work.qsize())))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
    graded = [done.get(i, row) for i, row in enumerate(rows)] + ignored
    if roster is None:
        return graded
    class_exercises = by_chapter.get(expected, [])
    ordered = identity.roster_rows(
        graded, roster, lambda student: missing_row(student, class_exercises), shard is None
    )
    write_gradebooks(ordered, csv_path, json_path, ids)
    return ordered


def missing_row(student: dict, exercises: list) -> Submission:
    """The gradebook row of a roster student who handed nothing in."""
    row = Submission("", status="missing", student=dict(student), error="no submission")
    row.set_exercises(exercises)
    for exercise in exercises:
        row.messages[exercise.id] = f"✘ {exercise.id}: no submission"
    return row


def main(argv: list[str] | None = None) -> int:
    from course_lib.grading import outputs

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["merge"]:
        return outputs.merge_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.grade",
        description="Grade exercise notebooks.",
        epilog="Example: python -m course_lib.grade submissions/ --csv gradebook.csv "
        "--json gradebook.json --jobs 2 --roster roster.csv --format canvas --output canvas.csv "
        "--feedback feedback/ --report report.html. "
        "Shards: python -m course_lib.grade merge shard1.json shard2.json --json all.json",
    )
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="notebooks, or folders of notebooks"
    )
    parser.add_argument("--csv", type=Path, help="write the gradebook as CSV")
    parser.add_argument("--json", type=Path, help="write the gradebook, with feedback, as JSON")
    parser.add_argument(
        "--chapter",
        help="the chapter expected, e.g. activations (default: the one most notebooks name)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds per submission (default 120)"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="submissions graded at the same time (default 1)"
    )
    parser.add_argument(
        "--isolation",
        choices=["auto", "bubblewrap", "process"],
        default="auto",
        help="auto: bubblewrap where it runs, else (loudly) plain processes",
    )
    parser.add_argument(
        "--memory-mb", type=int, default=6144, help="memory per sandbox (default 6144)"
    )
    parser.add_argument(
        "--file-mb", type=int, default=256, help="largest file a submission may write"
    )
    parser.add_argument(
        "--processes", type=int, default=256, help="processes and threads per sandbox (default 256)"
    )
    parser.add_argument(
        "--output-mb", type=int, default=256, help="most read back from one submission"
    )
    parser.add_argument(
        "--self-test", action="store_true", help="check that every exercise is not vacuous"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="grade every notebook again and overwrite the gradebooks (default: resume from "
        "the --json gradebook, keeping the rows of unchanged notebooks)",
    )
    outputs.add_options(parser)
    args = parser.parse_args(argv)

    if args.self_test:
        from course_lib.grading import all_exercises, self_test

        problems = self_test()
        for problem in problems:
            print(f"✘ {problem}")
        count = len(all_exercises())
        print(f"self-test: {count} exercises, {len(problems)} problems")
        return 1 if problems else 0
    if not args.paths:
        parser.error("give at least one notebook or folder (or --self-test)")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    for name in ("memory_mb", "file_mb", "output_mb", "processes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    settings = Settings(
        isolation=args.isolation,
        timeout=args.timeout,
        memory_mb=args.memory_mb,
        file_mb=args.file_mb,
        output_mb=args.output_mb,
        processes=args.processes,
    )

    def echo(text: str) -> None:
        print(text.encode("utf-8", "replace").decode("utf-8"), flush=True)

    options = outputs.class_options(parser, args)
    started = time.monotonic()
    rows = grade_paths(
        args.paths, settings, args.chapter, args.jobs, args.csv, args.json, echo,
        force=args.force, **options,
    )
    outputs.write_outputs(args, rows, echo)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    written = "".join(f"; wrote {display_name(p)}" for p in (args.csv, args.json) if p)
    print(
        f"graded {len(rows)} submissions in {time.monotonic() - started:.1f} s{written}; "
        f"grader peak memory {peak:.0f} MB",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
