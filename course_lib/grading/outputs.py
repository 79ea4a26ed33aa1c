"""What a grading run hands out besides its gradebook, and the `merge` command.

The options of `python -m course_lib.grading` for a class: `--roster`, `--roster-columns`,
`--match` (`course_lib.grading.roster`), `--format` with `--output` and `--assignment`
(`course_lib.grading.lms`), `--feedback DIR` (`course_lib.grading.feedback`), `--report FILE`
(`course_lib.grading.report`), `--shard K/N` and `--previous` (`course_lib.grading.shards`); and
`python -m course_lib.grading merge GRADEBOOK.json... [--json F] [--csv F] [the same outputs]`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_options", "class_options", "merge_main", "write_outputs"]


def add_options(parser: argparse.ArgumentParser, grading: bool = True) -> None:
    """The class options (all but the grading ones for `merge`)."""
    from course_lib.grading.lms import FORMATS

    group = parser.add_argument_group("a class")
    group.add_argument("--roster", type=Path, help="the class list (CSV: id, name, email)")
    group.add_argument(
        "--roster-columns",
        metavar="FIELD=COLUMN,...",
        help="the roster's column names, e.g. 'id=SIS User ID,name=Student,email=Email'",
    )
    group.add_argument(
        "--format", choices=FORMATS, help="also write the gradebook for an LMS (with --output)"
    )
    group.add_argument("--output", type=Path, help="where --format writes (gradescope: a folder)")
    group.add_argument(
        "--assignment", default="", help="the gradebook column's name in Canvas or Moodle"
    )
    group.add_argument("--feedback", type=Path, metavar="DIR", help="one HTML page per student")
    group.add_argument(
        "--report", type=Path, metavar="FILE.html", help="what the class got wrong (+ .json)"
    )
    if grading:
        group.add_argument(
            "--match", metavar="REGEX", help="the student id in a file's path: a group (?P<id>...)"
        )
        group.add_argument("--shard", metavar="K/N", help="grade the K-th of N slices of the class")
        group.add_argument(
            "--previous",
            type=Path,
            metavar="GRADEBOOK.json",
            help="keep its grades for submissions whose content is unchanged",
        )


def class_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of `grade_paths` for the class options (errors via the parser)."""
    from course_lib.grading import roster, shards

    options: dict[str, Any] = {}
    try:
        if args.roster:
            options["roster"] = roster.load_roster(
                args.roster, roster.parse_columns(args.roster_columns)
            )
        if getattr(args, "match", None):
            import re

            if "id" not in re.compile(args.match).groupindex:
                raise ValueError("--match needs a named group (?P<id>...) for the student id")
            options["match"] = args.match
        if getattr(args, "shard", None):
            options["shard"] = shards.parse_shard(args.shard)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    except Exception as exc:  # re.error
        parser.error(f"--match: {exc}")
    if args.format in ("canvas", "moodle") and not args.roster and hasattr(args, "shard"):
        parser.error(f"--format {args.format} needs --roster: the LMS matches rows by student")
    if args.format and not args.output:
        parser.error("--format needs --output (a file; for gradescope a folder or a .json)")
    if options.get("shard") and options.get("roster") and args.format in ("canvas", "moodle"):
        parser.error("a shard lacks the other shards' students: --format after `merge`")
    if getattr(args, "previous", None) and not args.previous.exists():
        parser.error(f"--previous {args.previous}: no such gradebook")
    if getattr(args, "previous", None):
        options["previous"] = args.previous
    return options


def _assignment(args: argparse.Namespace, rows: list) -> str:
    if args.assignment:
        return args.assignment
    chapters = sorted({r.chapter for r in rows if r.chapter})
    return f"Exercises: {chapters[0]}" if len(chapters) == 1 else "Exercises"


def write_outputs(args: argparse.Namespace, rows: list, echo: Any = print) -> list[Path]:
    """Write the LMS file, the feedback pages and the report that `args` asks for."""
    from course_lib.grading import lms

    ids = list(dict.fromkeys(i for r in rows if r.status != "ignored" for i in r.scores))
    written: list[Path] = []
    if args.format:
        try:
            written += lms.write(args.format, rows, ids, args.output, _assignment(args, rows))
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
        echo(f"wrote {args.format} gradebook: {args.output}")
    if args.feedback:
        from course_lib.grading import feedback

        pages = feedback.write_all(rows, args.feedback)
        echo(f"wrote {len(pages)} feedback pages in {args.feedback}")
        written += pages
    if args.report:
        from course_lib.grading import report

        written += report.write(rows, ids, args.report)
        echo(f"wrote the class report: {args.report} (and {args.report.with_suffix('.json')})")
    return written


def merge_main(argv: list[str]) -> int:
    """`python -m course_lib.grading merge A.json B.json ... --json all.json [...]`."""
    from course_lib.grading import lms
    from course_lib.grading.submissions import Submission
    from course_lib.grading import roster, shards

    parser = argparse.ArgumentParser(
        prog="python -m course_lib.grading merge",
        description="Join the JSON gradebooks of shards (--shard K/N) into one.",
    )
    parser.add_argument("gradebooks", nargs="+", type=Path, metavar="GRADEBOOK.json")
    parser.add_argument("--csv", type=Path, help="write the merged gradebook as CSV")
    parser.add_argument("--json", type=Path, help="write the merged gradebook as JSON")
    add_options(parser, grading=False)
    args = parser.parse_args(argv)
    options = class_options(parser, args)
    rows, seen = [], dict[str, Path]()
    for path in args.gradebooks:
        try:
            loaded = shards.load_gradebook(path)
        except ValueError as exc:
            parser.error(str(exc))
        for row in loaded:
            if row.submission and seen.get(row.submission, path) != path:
                parser.error(f"{row.submission} is in both {seen[row.submission]} and {path}")
            seen[row.submission] = path
        rows += loaded
    roster.flag_identical(rows)  # across the shards
    main = [r for r in rows if r.status != "ignored"]
    ignored = [r for r in rows if r.status == "ignored"]
    merged = sorted(main, key=shards.order_key) + sorted(ignored, key=shards.order_key)
    if options.get("roster"):
        template = next((r for r in merged if r.status == "graded"), None)

        def new_row(student: dict) -> Any:
            row = Submission("", status="missing", student=dict(student),
                                   error="no submission")
            if template is not None:
                row.scores = {i: 0 for i in template.scores}
                row.points = dict(template.points)
                row.statuses = {i: "not attempted" for i in template.scores}
                row.fractions = {i: 0.0 for i in template.scores}
                row.messages = {i: f"✘ {i}: no submission" for i in template.scores}
            return row

        merged = roster.roster_rows(
            [r for r in merged if r.status != "missing"], options["roster"], new_row
        )
    ids = list(dict.fromkeys(i for r in merged if r.status != "ignored" for i in r.scores))
    lms.write_gradebooks(merged, args.csv, args.json, ids)
    write_outputs(args, merged)
    print(f"merged {len(args.gradebooks)} gradebooks: {len(merged)} rows")
    return 0
