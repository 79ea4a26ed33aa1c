"""`make mutate`: fault injection (mutmut 3) into course_lib, scoped, with a per-module report.

    python tools/mutate.py run [--max-children N] [MUTANT_NAME_GLOB ...]
    python tools/mutate.py report [--markdown PATH]

`run` starts mutmut with its configuration from pyproject.toml (`[tool.mutmut]`: the modules,
the fast tests, the lines left alone) and one more scope, the operators: string literals are not
mutated (error messages, regular expressions of the text corpora and format strings are not
behaviour a learner relies on; they made a third of the faults). Every other mutmut operator is
kept: numbers, comparisons, arithmetic and boolean operators, `and`/`or`, `True`/`False`,
assignments to None, removed call arguments, ternaries, augmented assignments.

Scope: see LEFT_OUT and SAMPLE below (the functions left out, and a fixed sample of one fault
in SAMPLE per function).

`report` prints, per module, the faults caught (a test failed or timed out), missed (every test
passed) and the missed ones known to be equivalent (tools/mutation_equivalents.txt: the mutant's
name, then a one-line reason), and exits 1 if a module catches fewer than 90% of the others.
A fault no test covers ("no tests") counts as missed. Report: benchmarks/mutation.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "tools" / "mutation_equivalents.txt"
TARGET = 0.90
CAUGHT = {1: "killed", 3: "killed", 36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout",
          255: "timeout", -11: "crashed", -9: "crashed"}


# Functions left out: what only words the feedback (tests/test_feedback.py checks its text),
# the maintainers' self-test of the exercises, the revealed solutions, and chapter 12's text
# corpora (tests/test_words.py). A mangled name is module.x_function or module.xǁClassǁmethod.
LEFT_OUT = re.compile(
    r"course_lib\.grading\.checker\.x(_(_describe_error|_field|_wrap|_telling|_part_names"
    r"|_gradient_note|_where_sizes|shape_hint|_hint|_show_expected|solution_source|solution"
    r"|_stub|self_test|_mutant_outcomes)|ǁ(Solution|HiddenSolution)ǁ.*)__mutmut_"
    r"|course_lib\.grading\.compare\.x_(show|_round|_where|_shape_detail|_first_values|_status"
    r"|table)__mutmut_"
    r"|course_lib\.data\.x(_(_gensim_test_data|_tokens|_wiki_plain_text|_text_corpus"
    r"|load_text_corpus|load_word_similarity)|ǁSplitǁ__repr__)__mutmut_"
)
# A fixed sample: the mutants numbered 1, 1 + SAMPLE, 1 + 2 SAMPLE, ... of every function (mutmut
# numbers each function's mutants in source order), so that every function is sampled and the
# same faults are drawn on every run. MUTATE_SAMPLE=1 runs them all.
SAMPLE = int(os.environ.get("MUTATE_SAMPLE", "4"))


def in_scope(name: str) -> bool:
    """Whether `make mutate` runs the mutant `name` (module.function__mutmut_N)."""
    number = int(name.rsplit("__mutmut_", 1)[1])
    return not LEFT_OUT.match(name) and (number - 1) % SAMPLE == 0


def _scope() -> None:
    """Drop mutmut's string-literal operator and run only the mutants `in_scope`."""
    import mutmut.__main__ as main
    from mutmut.mutation import file_mutation, mutators

    kept = [(kind, op) for kind, op in mutators.mutation_operators
            if op is not mutators.operator_string]
    file_mutation.mutation_operators = kept
    collect = main.collect_source_file_mutation_data

    def collect_in_scope(*, mutant_names):
        mutants, by_path = collect(mutant_names=mutant_names)
        return [m for m in mutants if in_scope(m[1])], by_path

    main.collect_source_file_mutation_data = collect_in_scope


def run(args: list[str]) -> int:
    # mutmut forks every test run from a warm server: one thread each, or a forked child waits
    # forever on the OpenMP pool of its parent (and would count as a timeout, a false catch)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    _scope()
    from mutmut.__main__ import cli

    return cli.main(["run", *args], prog_name="mutmut", standalone_mode=False) or 0


def equivalents() -> dict[str, str]:
    """Mutant name -> why it cannot change behaviour."""
    found = {}
    for line in EQUIVALENTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            found[name] = reason.strip()
    return found


def results() -> dict[str, dict[str, int | None]]:
    """Module path -> mutant name -> exit code of its test run."""
    found = {}
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        module = str(meta.relative_to(ROOT / "mutants"))[: -len(".meta")]
        found[module] = codes
    return found


def report(markdown: Path | None) -> int:
    known = equivalents()
    lines = ["| module | faults | caught | missed | equivalent | caught of non-equivalent |",
             "|---|---:|---:|---:|---:|---:|"]
    missed_lines, ok = [], True
    totals = Counter()
    for module, codes in results().items():
        count = Counter()
        for name, code in sorted(codes.items()):
            if not in_scope(name):
                continue
            if code in CAUGHT:
                count["caught"] += 1
            elif code is None:
                count["not run"] += 1
            elif name in known:
                count["equivalent"] += 1
            else:
                count["missed"] += 1
                missed_lines.append(f"- `{name}` ({'no tests' if code in (5, 33) else code})")
        real = count["caught"] + count["missed"]
        share = count["caught"] / real if real else 1.0
        ok = ok and share >= TARGET and not count["not run"]
        totals.update(count)
        lines.append(f"| `{module}` | {sum(count.values())} | {count['caught']} | "
                     f"{count['missed']} | {count['equivalent']} | {100 * share:.1f}% |")
    real = totals["caught"] + totals["missed"]
    lines.append(f"| all | {sum(totals.values())} | {totals['caught']} | {totals['missed']} | "
                 f"{totals['equivalent']} | {100 * totals['caught'] / max(real, 1):.1f}% |")
    stale = sorted(set(known) - {n for codes in results().values() for n in codes})
    text = "\n".join(lines)
    if missed_lines:
        text += "\n\nMissed (`mutmut show NAME` shows the fault):\n" + "\n".join(missed_lines)
    if stale:
        text += ("\n\nListed as equivalent but no longer generated (the code changed; "
                 "re-check tools/mutation_equivalents.txt):\n"
                 + "\n".join(f"- `{n}`" for n in stale))
    print(text)
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(text + "\n", encoding="utf-8")
    if not ok:
        print(f"\nFAIL: a module catches fewer than {TARGET:.0%} of its non-equivalent faults",
              file=sys.stderr)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="mutmut run's own options and arguments follow")
    rep = sub.add_parser("report")
    rep.add_argument("--markdown", type=Path)
    args, rest = parser.parse_known_args()
    if args.command == "run":
        return run(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return report(args.markdown)


if __name__ == "__main__":
    sys.exit(main())
