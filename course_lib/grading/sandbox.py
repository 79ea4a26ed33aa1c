"""The grading sandbox: a server that runs submitted notebooks, one fresh process each.

Started by the instructor's grader (`course_lib.grading`), under bubblewrap where it can run, as
`python -I -m course_lib.grading.sandbox CONFIG_JSON`. It imports PyTorch, `course_lib` and every
exercise once and builds the test cases before any submission runs, then serves requests on its
standard input: for each notebook it forks a child that first closes every descriptor but its
result pipe, then enters new user, mount, PID, IPC, UTS and network namespaces (where the kernel
allows), so that every process the submission starts dies with it and nothing of one submission
survives into the next; its helper processes are non-dumpable, the submission sees a /proc of its
own namespace only and runs without capabilities. The child mounts a private
size-limited /tmp holding a copy of the notebook, sets its limits, executes the code cells (an
error in a cell does not stop the rest), runs each learner function on the cases and writes what
came out, as plain tensors and numbers, to a pipe. The server relays at most `output_mb` of it,
with the nonce that ended the request (read only after the fork) and the data's SHA-256.

It judges nothing: the grader compares in its own process, which no submission reaches, so a
notebook that patches `check`, the comparison or this module cannot raise its score. Reference
solutions are public (`cl.solution` shows them): a notebook can import them, as a learner can
copy a revealed solution; grading measures what the functions return.

The notebook is read as JSON here (no nbformat, no IPython: they cost seconds to import); the
IPython syntax an exercise notebook may hold is handled: `%%time`, `%%timeit`, `%%capture` cells
run their body, other cell magics (`%%bash`, `%%html`, ...) are skipped, line magics and `!`
commands do nothing except `%time`/`%timeit` that run their statement, and `display()` and
`get_ipython()` exist. Used by the instructor's grader of every chapter's exercises.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import os
import re
import select
import signal
import struct
import sys
import time
from typing import Any

__all__ = ["code_cells", "python_source", "read_frame", "write_frame"]

# ---- the notebook, read without nbformat or IPython ---------------------------------------

RUN_BODY = {"time", "timeit", "capture", "prun"}  # cell magics whose body is Python to run
RUN_STATEMENT = {"time", "timeit", "prun"}  # line magics whose argument is a statement to run
_ASSIGNED_MAGIC = re.compile(r"^(\s*[A-Za-z_][\w.,\s\[\]()]*=\s*)([%!].*)$")
_TIMEIT_FLAGS = re.compile(r"^(?:-[nrp]\s*\d+\s+|-[tcqo]\s+)*")


def _line_magic(text: str) -> str:
    """The Python a line magic or shell command stands for while grading (a statement)."""
    if text.startswith("%") and not text.startswith("%%"):
        name, _, rest = text[1:].partition(" ")
        if name in RUN_STATEMENT and rest.strip():
            return _TIMEIT_FLAGS.sub("", rest.strip())
    return "pass"


def python_source(source: str) -> str:
    """A code cell's source as plain Python: magics handled as the module docstring says."""
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].strip()[2:].split(" ", 1)[0]
        if magic not in RUN_BODY:
            return ""  # %%bash, %%html, %%writefile...: not Python
        lines = lines[first + 1 :]
    out = []
    for line in lines:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith(("%", "!")):
            out.append(indent + _line_magic(stripped))
            continue
        assigned = _ASSIGNED_MAGIC.match(line)
        if assigned and "==" not in assigned.group(1):
            value = _line_magic(assigned.group(2))
            value = (
                "[]" if assigned.group(2).startswith("!") else "None" if value == "pass" else value
            )
            out.append(assigned.group(1) + value)
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def code_cells(raw: bytes) -> tuple[list[tuple[int, str]], list[str]]:
    """(number, Python source) of each code cell, and the problems met reading the notebook.

    Raises ValueError when `raw` is not a notebook at all (not JSON, no list of cells)."""
    try:
        nb = json.loads(raw)
    except (RecursionError, UnicodeDecodeError) as exc:
        raise ValueError(f"{type(exc).__name__}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("it has no list of cells")
    cells, problems, number = [], [], 0
    for cell in nb["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        number += 1
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if not isinstance(source, str):
            problems.append(f"code cell {number}: its source is not text; skipped")
            continue
        if source.strip():
            cells.append((number, python_source(source)))
    return cells, problems


# ---- framing: length-prefixed messages on pipes --------------------------------------------


def write_frame(fd: int, data: bytes, deadline: float | None = None) -> None:
    """Write one message: 8-byte little-endian length, then the bytes (TimeoutError at
    `deadline`, which holds only for a non-blocking `fd`)."""
    view = memoryview(struct.pack("<Q", len(data)) + data)
    while view:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([], [fd], [], wait)[1]:
                raise TimeoutError
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            continue


def read_exact(fd: int, size: int, deadline: float | None = None) -> bytes:
    """Read exactly `size` bytes (EOFError when the pipe closes first, TimeoutError at deadline)."""
    chunks, left = [], size
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, limit: int, deadline: float | None = None) -> bytes:
    """Read one message of at most `limit` bytes (ValueError when it announces more)."""
    (size,) = struct.unpack("<Q", read_exact(fd, 8, deadline))
    if size > limit:
        raise ValueError(f"a message of {size} bytes, more than the limit of {limit}")
    return read_exact(fd, size, deadline)


def split_frames(data: bytes) -> list[bytes]:
    """The messages in `data` (a truncated last one is dropped)."""
    frames, at = [], 0
    while at + 8 <= len(data):
        (size,) = struct.unpack("<Q", data[at : at + 8])
        if at + 8 + size > len(data):
            break
        frames.append(data[at + 8 : at + 8 + size])
        at += 8 + size
    return frames


# ---- Linux namespaces, through the C library ---------------------------------------------

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 16384, 1 << 18
MS_RDONLY, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 8, 32, 4096
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _enter_namespaces() -> None:
    """Enter new user, mount, PID (for children), IPC, UTS and network namespaces."""
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    _check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl")  # our own /proc files, to map ids
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET
    _check(libc.unshare(flags), "unshare")
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1"),
        ("gid_map", f"{gid} {gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    # From here on no process of the same user, in this namespace or below (the submission's),
    # may open this process's /proc files, descriptors included, or trace it.
    _check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl")


def _keep_only(fd: int) -> None:
    """Close every descriptor inherited from the server except `fd` (the result pipe), and make
    0, 1 and 2 /dev/null: the server's request and reply pipes never reach a submission."""
    os.closerange(3, fd)
    os.closerange(fd + 1, 1 << 20)
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        if null != target:
            os.dup2(null, target)
    if null > 2:
        os.close(null)


def _drop_capabilities() -> None:
    """No capability left, none to regain by exec: the submission cannot unmount its /proc or
    /tmp, mount anything, or trace a process (it holds every capability of its own user
    namespace until here)."""
    libc = _libc()
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break  # EINVAL: past the last capability this kernel knows
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    _check(libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl")


def _installed_under_tmp() -> list[str]:
    """The folders directly under /tmp that hold this Python, its packages or course_lib (a
    checkout or a virtual environment in /tmp): they stay visible under the fresh /tmp."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = set()
    for path in {sys.prefix, sys.base_prefix, here, *sys.path}:
        parts = os.path.realpath(path).split(os.sep) if path else []
        if len(parts) > 2 and parts[1] == "tmp":
            found.add(os.sep.join(parts[:3]))
    return sorted(found)


def _hide_other_processes() -> None:
    """Where the kernel refuses a fresh /proc: an empty read-only folder over /proc/N of every
    process and thread of the sandbox, this one included (its children, the submission, are
    not), so that the submission sees none of them."""
    libc = _libc()
    flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    ids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            ids |= {pid, *filter(str.isdigit, os.listdir(f"/proc/{pid}/task"))}
    for number in sorted(ids, key=int):
        target = f"/proc/{number}"
        hidden = libc.mount(b"none", target.encode(), b"tmpfs", flags, b"size=4k,mode=0") == 0
        if not hidden and os.path.isdir(target):  # else it has ended meanwhile
            _check(-1, f"hide {target}")


def _private_mounts(tmp_mb: int, proc: bool) -> None:
    """In the new mount namespace: a fresh size-limited /tmp and /dev/shm of this submission, and
    a /proc that shows only the processes of its PID namespace: a fresh one (`proc`), else the
    sandbox's with every process there hidden.

    Folders of the installation that live in /tmp are bound back into the fresh /tmp read-only
    (where the kernel allows it), so that imports made while grading still find their files.
    """
    libc = _libc()
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    if proc:
        flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
        _check(libc.mount(b"proc", b"/proc", b"proc", flags, None), "mount /proc")
    kept = [(folder, os.open(folder, os.O_PATH)) for folder in _installed_under_tmp()]
    options = f"size={tmp_mb}m,mode=1777".encode()
    _check(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, options), "mount /tmp")
    for folder, fd in kept:
        os.makedirs(folder, exist_ok=True)
        target = folder.encode()
        source = f"/proc/self/fd/{fd}".encode()
        _check(libc.mount(source, target, None, MS_BIND | MS_REC, None), f"bind {folder}")
        os.close(fd)
        locked = os.statvfs(folder).f_flag & (MS_NOSUID | MS_NODEV | 8)  # 8: noexec
        libc.mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | locked, None)
    if os.path.isdir("/dev/shm"):
        libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, options)
    if not proc:
        _hide_other_processes()


def probe_namespaces() -> tuple[bool, bool]:
    """(whether a child can enter its own namespaces here, whether its PID namespace's first
    process can mount a fresh /proc there), tried in throwaway processes. The kernel refuses the
    /proc where the one above is partly covered: bubblewrap covers /proc/sys and others of its
    /proc when it runs as root, which is why the grader starts it as `nobody`."""
    if not sys.platform.startswith("linux"):
        return False, False
    pid = os.fork()
    if pid == 0:
        try:
            _enter_namespaces()
            init = os.fork()
            if init == 0:
                try:
                    libc = _libc()
                    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount")
                    _check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID, None), "mount")
                    os._exit(0)
                except BaseException:
                    os._exit(1)
            os._exit(0 if os.waitpid(init, 0)[1] == 0 else 2)
        except BaseException:
            os._exit(1)
    code = _exit_code(os.waitpid(pid, 0)[1])
    return code in (0, 2), code == 0


def namespaces_available() -> bool:
    """Whether a child can enter its own namespaces here (tried in a throwaway process)."""
    return probe_namespaces()[0]


# ---- one submission ------------------------------------------------------------------------


class _Discard(io.TextIOBase):
    """Where the notebook's printed output goes: nowhere (it is never graded)."""

    def write(self, text: str) -> int:
        return len(text)

    def writable(self) -> bool:
        return True


class _Shell:
    """Stands in for get_ipython(): magics and shell commands do nothing while grading."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _display(*args: Any, **kwargs: Any) -> None:
    """IPython's display(), which a notebook may call without importing it: nothing to show."""


def _exit_code(status: int) -> int:
    """A wait status as one exit code: the code, or 128 + the signal number."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 255


def _set_limits(config: dict) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    file_limit = config["file_mb"] * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
    if config.get("address_space"):  # no cgroup limits the whole sandbox: limit each process
        memory = config["memory_mb"] * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    with contextlib.suppress(OSError):  # the submission, not the server, is what runs out of memory
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")


def _plain_value(value: Any, budget: list[int], depth: int = 0) -> Any:
    """A value made of exact built-in types and plain CPU tensors (loadable with weights_only)."""
    import torch

    if depth > 8:
        return {"unsupported": "nested too deeply"}
    if value is None or type(value) is bool:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)  # a NumPy float64 is a float subclass: made a float
    if isinstance(value, str):
        text = str(value)
        return text if len(text) <= 10_000 else text[:10_000] + "..."
    if isinstance(value, torch.Tensor):
        size = value.numel() * value.element_size()
        budget[0] -= size
        if budget[0] < 0:
            return {"unsupported": f"a tensor of {size / 2**20:.0f} MB, more than the grader reads"}
        try:
            tensor = value.detach().as_subclass(torch.Tensor)
            if tensor.is_meta:
                return {"unsupported": "a meta tensor (it has no values)"}
            if tensor.layout != torch.strided:
                tensor = tensor.to_dense()
            tensor = tensor.cpu().contiguous().clone()
        except Exception as exc:
            return {"unsupported": f"a tensor that cannot be read ({type(exc).__name__})"}
        return tensor
    if isinstance(value, (list, tuple)):
        items = [_plain_value(v, budget, depth + 1) for v in list(value)[:10_000]]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {
            str(k)[:200]: _plain_value(v, budget, depth + 1)
            for k, v in list(value.items())[:10_000]
        }
    return {"unsupported": type(value).__name__}


class _NoInput:
    """input() while grading: nobody types, so it returns "" and the cell goes on; the cells
    that asked are noted in the row."""

    def __init__(self) -> None:
        self.cell, self.cells = 0, list[int]()

    def __call__(self, prompt: Any = "") -> str:
        if self.cell not in self.cells:
            self.cells.append(self.cell)
        return ""

    def notes(self) -> list[str]:
        return [f'code cell {n}: input() returned "" (nobody types while grading)'
                for n in self.cells]


def _run_notebook(
    raw: bytes, namespace: dict, budget: float = float("inf"), no_input: _NoInput | None = None
) -> list[str]:
    """Execute the code cells in `namespace`, within `budget` seconds between them (a cell past
    it is stopped, the next ones run: `course_lib.grading.cells`); return the problems."""
    from course_lib.grading.cells import CellClock, CellTimeout, describe

    try:
        cells, problems = code_cells(raw)
    except ValueError as exc:
        return [f"not a readable notebook: {exc}"]
    sink = _Discard()
    clock = CellClock(budget)
    for number, source in cells:
        if no_input is not None:
            no_input.cell = number
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), clock.cell():
                exec(compile(source, f"<code cell {number}>", "exec"), namespace)
        except CellTimeout as exc:
            problems.append(f"code cell {number}: {describe(exc.args[0])}")
        except BaseException as exc:  # a failing cell, SystemExit and KeyboardInterrupt too
            try:
                text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            except Exception:
                text = ""
            problems.append(
                f"code cell {number}: {type(exc).__name__}" + (f": {text}" if text else "")
            )
    return problems


def _work(config: dict, plan: dict, request: dict, raw: bytes, out: int) -> None:
    """The submission's process: run the notebook, then the learner's functions on the cases."""
    import builtins

    import torch

    from course_lib.grading.checker import collect
    from course_lib.grading.compare import plain

    _set_limits(config)
    _keep_only(out)
    if config.get("drop_capabilities", True):
        _drop_capabilities()
    sys.stdout = sys.stderr = _Discard()

    no_input = _NoInput()
    builtins.input = no_input
    namespace: dict[str, Any] = {"__name__": "__main__", "get_ipython": _Shell, "display": _display}
    from course_lib.grading.cells import CELL_SHARE

    problems = _run_notebook(raw, namespace, CELL_SHARE * float(request["timeout"]), no_input)
    default_dtype = torch.get_default_dtype()
    meta = {
        "cell_errors": (problems[:10] + no_input.notes())[:10],
        "default_dtype": str(default_dtype).replace("torch.", ""),
    }
    write_frame(out, json.dumps(meta).encode())
    budget = [config["output_mb"] * 2**20 // 2]
    for exercise_id in request["ids"]:
        exercise, name, run, cases = plan[exercise_id]
        candidate = namespace.get(name)
        if candidate is None:
            entry: dict[str, Any] = {"missing": True, "outcomes": []}
        else:
            if default_dtype != torch.float32:  # the cases cl.check would build in this notebook
                try:
                    cases = list(exercise.cases())
                except Exception:
                    pass
            afters: list[Any] = []  # each case's arguments after the call: the grader judges them

            def run_keeping_arguments(
                solution: Any, case: Any, run: Any = run, afters: list[Any] = afters
            ) -> Any:
                afters.append(None)
                slot = len(afters) - 1
                try:
                    return run(solution, case)
                finally:
                    with contextlib.suppress(Exception):
                        afters[slot] = plain(case.args)

            exercise.run = run_keeping_arguments
            with contextlib.redirect_stdout(sys.stdout), contextlib.redirect_stderr(sys.stderr):
                outcomes = collect(exercise, candidate, cases)
            entry = {
                "missing": False,
                "outcomes": [
                    {
                        "status": str(o.status),
                        "value": _plain_value(o.value, budget),
                        "error": str(o.error)[:2000],
                        "after": _plain_value(afters[i], budget) if i < len(afters) else None,
                    }
                    for i, o in enumerate(outcomes)
                ],
            }
        buffer = io.BytesIO()
        try:
            torch.save(entry, buffer)
        except Exception as exc:
            buffer = io.BytesIO()
            torch.save(
                {
                    "missing": False,
                    "outcomes": [],
                    "problem": f"its result could not be returned ({type(exc).__name__})",
                },
                buffer,
            )
        write_frame(out, buffer.getvalue())
    os._exit(0)  # threads the notebook left running do not keep it alive


def _submission_folder(request: dict, raw: bytes, base: str) -> str:
    folder = os.path.join(base, "submission")
    os.makedirs(folder, exist_ok=True)
    name = (
        re.sub(r"[^\w.-]", "_", str(request.get("name", "submission.ipynb")))[:100]
        or "submission.ipynb"
    )
    with open(os.path.join(folder, name), "wb") as f:
        f.write(raw)
    os.chdir(folder)
    return folder


def _child(config: dict, plan: dict, request: dict, raw: bytes, out: int, namespaces: bool) -> None:
    """Between server and submission: enter the namespaces, become PID 1 of the new one's parent."""
    libc = _libc()
    server = os.getppid()
    if namespaces:
        _enter_namespaces()
    # the server killed (with the grader), this process follows, and the submission with it
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != server:
        os._exit(70)
    if namespaces:
        init = os.fork()
        if init:  # still in the server's PID namespace: report how the submission ended
            os.close(out)
            os._exit(_exit_code(os.waitpid(init, 0)[1]))
        # PID 1 of the submission's namespace: when it exits, the kernel kills every process in it
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _private_mounts(config["tmp_mb"], config.get("fresh_proc", False))
        _submission_folder(request, raw, "/tmp")
    else:
        os.setsid()  # the server kills this process group afterwards
        _submission_folder(request, raw, request["tmp"])
    worker = os.fork()
    if worker == 0:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _work(config, plan, request, raw, out)
    os.close(out)
    while True:  # reap orphans until the submission's own process ends
        pid, status = os.wait()
        if pid == worker:
            os._exit(_exit_code(status))


def _grade_one(
    config: dict, plan: dict, request: dict, raw: bytes, namespaces: bool, inp: int
) -> tuple[dict, bytes]:
    """Run one submission; (status, what it wrote). The status carries the request's nonce, read
    from `inp` only once the submission's process exists (so no copy of it is in its memory),
    and the SHA-256 of what follows: the grader rejects a reply that is not this request's."""
    import shutil
    import tempfile

    limit = config["output_mb"] * 2**20
    tmp = None if namespaces else tempfile.mkdtemp(prefix="submission-")
    request = {**request, "tmp": tmp}
    read_end, write_end = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            _keep_only(write_end)  # first: the server's pipes are gone before anything else runs
            _child(config, plan, request, raw, write_end, namespaces)
        finally:
            os._exit(70)
    os.close(write_end)
    nonce = read_frame(inp, 256).decode("ascii", "replace")
    deadline = started + float(request["timeout"])
    chunks: list[bytes] = []
    size, code = 0, None
    status: dict[str, Any] = {"outcome": "finished"}
    try:
        while True:
            wait = deadline - time.monotonic()
            if wait <= 0:
                status = {"outcome": "timeout"}
                break
            if not select.select([read_end], [], [], min(wait, 0.5))[0]:
                if not namespaces and code is None:  # a namespace's processes die with its PID 1
                    done, wait_status = os.waitpid(pid, os.WNOHANG)
                    if done:  # the submission has ended: what still holds the pipe is left over
                        code = _exit_code(wait_status)
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.killpg(pid, signal.SIGKILL)
                continue
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                status = {"outcome": "too_large"}
                break
        while code is None and status["outcome"] == "finished":
            if time.monotonic() >= deadline:
                status = {"outcome": "timeout"}
                break
            done, wait_status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = _exit_code(wait_status)
                break
            time.sleep(0.01)
        if code is None:
            # its PID 1 follows (parent-death signal), and with it every process it holds
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        status["code"] = code
    finally:
        os.close(read_end)
        if tmp is not None:  # no namespaces: a plain process group, a folder of its own
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            shutil.rmtree(tmp, ignore_errors=True)
    status["seconds"] = round(time.monotonic() - started, 3)
    data = b"".join(chunks)
    status.update(nonce=nonce, sha256=hashlib.sha256(data).hexdigest())
    return status, data


def _prepare(exercise_ids: list[str]) -> dict:
    """Import everything once, build the cases of the exercises to grade before any submission
    runs, and run each reference once: what PyTorch initialises lazily (kernels, autograd) is
    then ready in every forked child instead of costing each submission seconds."""
    import torch

    torch.set_num_threads(1)  # one core per sandbox; and no OpenMP pool that a fork would break
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)

    import course_lib  # noqa: F401  the notebooks import it: already done
    import course_lib.grading as grading

    from course_lib.grading import checker as check

    original = check.solution

    def solution(*args: Any, **kwargs: Any) -> Any:  # public: works while grading as in Jupyter
        saved = os.environ.pop(check.GRADING_ENV, None)
        try:
            return original(*args, **kwargs)
        finally:
            if saved is not None:
                os.environ[check.GRADING_ENV] = saved

    for module in (check, grading, course_lib):
        setattr(module, "solution", solution)  # noqa: B010 (course_lib's own name, replaced)
    plan = {}
    for exercise_id in exercise_ids:
        exercise = grading.get(exercise_id)
        plan[exercise_id] = (exercise, exercise.name, exercise.run, list(exercise.cases()))
        with contextlib.redirect_stdout(_Discard()), contextlib.redirect_stderr(_Discard()):
            check.collect(exercise, exercise.reference, plan[exercise_id][3])
    return plan


def serve(config: dict) -> None:
    """The server's loop: a hello message, then one answer per request, until end of input."""
    with contextlib.suppress(Exception):  # the grader gone, the server goes too
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    inp, out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # nothing but the protocol reaches the grader
    plan = _prepare(config["ids"])
    namespaces, fresh_proc = (
        probe_namespaces() if config.get("namespaces", True) else (False, False)
    )
    config = {**config, "fresh_proc": fresh_proc}
    with contextlib.suppress(Exception):  # no other process of the same user may read our memory
        _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    hello = {"ready": True, "namespaces": namespaces, "proc": fresh_proc, "pid": os.getpid()}
    write_frame(out, json.dumps(hello).encode())
    while True:
        try:
            request = json.loads(read_frame(inp, 2**20))
            raw = read_frame(inp, config["notebook_mb"] * 2**20)
        except EOFError:
            return
        status, data = _grade_one(config, plan, request, raw, namespaces, inp)
        write_frame(out, json.dumps(status).encode())
        write_frame(out, data)


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))
