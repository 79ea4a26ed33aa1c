"""The instructor's grader: `python -m course_lib.grading PATH... [--csv F] [--json F] [options]`.

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
import queue
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from course_lib.grading.gradebook import resumed_gradebook
from course_lib.grading.lms import write_gradebooks
from course_lib.grading.isolation import Sandbox, SandboxError, Settings, choose_isolation
from course_lib.grading.judging import grade_one
from course_lib.grading.submissions import (
    Submission, display_name, find_submissions, missing_row, notebook_chapter, parsed_notebook,
    read_submission, upgraded,
)

__all__ = [
    "grade_paths", "main",
]


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
    for path in find_submissions(paths, hidden):
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
        raw, problem = read_submission(path)
        nb = None
        if raw is not None:
            row.sha256 = hashlib.sha256(raw).hexdigest()
            raw, problem = upgraded(raw)
        if raw is not None:
            nb, problem = parsed_notebook(raw)
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
        previous = resumed_gradebook(csv_path, json_path)
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
    from course_lib.grading.checker import reference_outcomes

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


def main(argv: list[str] | None = None) -> int:
    from course_lib.grading import outputs

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["merge"]:
        return outputs.merge_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.grading",
        description="Grade exercise notebooks.",
        epilog="Example: python -m course_lib.grading submissions/ --csv gradebook.csv "
        "--json gradebook.json --jobs 2 --roster roster.csv --format canvas --output canvas.csv "
        "--feedback feedback/ --report report.html. "
        "Shards: python -m course_lib.grading merge shard1.json shard2.json --json all.json",
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
