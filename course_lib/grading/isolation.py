"""Isolation of a submission: the limits it runs under, its cgroup, and its sandbox server.

`choose_isolation` picks bubblewrap where it runs (else, loudly, plain processes); `Sandbox` starts
the server of `course_lib.grading.sandbox` under it and sends it one notebook at a time; `Cgroup`
bounds the memory and processes of a whole sandbox where the kernel delegates one. For instructors.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from course_lib.grading.sandbox import read_frame, split_frames, write_frame
from course_lib.grading.submissions import MAX_NOTEBOOK_MB

__all__ = [
    "Cgroup", "FORGED", "Sandbox", "SandboxError", "Settings", "choose_isolation",
]


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


def sandbox_environment() -> dict[str, str]:
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
        if folder is None:
            return None
        try:
            return round(int((folder / name).read_text()) / 2**20, 1)
        except (OSError, ValueError):
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
    for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/fonts", "/etc/alternatives"):
        command += ["--ro-bind-try", etc, etc]
    command += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--chdir",
        "/tmp",
        "--clearenv",
    ]
    for key, value in sandbox_environment().items():
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
            sandbox_environment(),
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
        os.set_blocking(self.pipe_in.fileno(), False)  # writes keep their deadline
        try:
            hello = json.loads(
                read_frame(self.pipe_out.fileno(), 2**16, time.monotonic() + 600)
            )
            if not isinstance(hello, dict):
                raise ValueError("not a hello")
            return hello
        except (EOFError, TimeoutError, ValueError) as exc:
            self._kill()
            raise SandboxError(
                f"the {self.mode} sandbox did not start: {' '.join(self.stderr)[-400:] or exc}"
            ) from None

    @property
    def pipe_in(self) -> IO[bytes]:
        """The server's standard input (the process was started with three pipes)."""
        assert self.process.stdin is not None
        return self.process.stdin

    @property
    def pipe_out(self) -> IO[bytes]:
        assert self.process.stdout is not None
        return self.process.stdout

    @property
    def pipe_err(self) -> IO[bytes]:
        assert self.process.stderr is not None
        return self.process.stderr

    def _drain(self) -> None:
        for line in iter(self.pipe_err.readline, b""):
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
                write_frame(self.pipe_in.fileno(), message, deadline)
            out = self.pipe_out.fileno()
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
            self.pipe_in.close()
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
