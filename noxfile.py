"""The versions course_lib claims, tested (issue 23): `make test-matrix`, or `nox -s lowest newest`.

- `lowest`: the oldest Python the project accepts with every runtime dependency of
  pyproject.toml pinned at its lower bound (`>=X` becomes X exactly, or its post-release; read
  from pyproject.toml, so the pins follow the claims).
- `newest`: the newest release of everything that installs here (pip's `--upgrade` on all of it).

Each builds its own virtual environment under `.nox/`, installs course_lib with its `dev` extras
(the test tools at their newest) and a Jupyter kernel in it, then runs the library tests and every
notebook under nbval with the course's tolerant comparison. The runs install large wheels (a
PyTorch each), so CI does not run them; the README's matrix says what was run and when.

Interpreters: `COURSE_PYTHON_LOWEST` and `COURSE_PYTHON_NEWEST` (a version such as `3.10` or a
path to a `python` executable; defaults 3.10 and 3.11).
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
nox.options.sessions = ["lowest", "newest"]
nox.options.reuse_existing_virtualenvs = True

# The library tests, the grader's and the workers' (their subprocesses, Optuna and the database
# driver change with the versions too) and the notebooks; not the site, the browser or the static
# checks. `make test-portable` runs the part of it whose outcome depends on the CPU.
TEST_SELECTION = [
    "tests", "chapters", "exercises",
    "--ignore=tests/test_browser.py", "--ignore=tests/test_site.py",
    "--ignore=tests/test_lint.py", "--ignore=tests/test_line_length.py",
    "--ignore=tests/test_docstrings.py",
]


def lower_bounds() -> list[str]:
    """Each runtime dependency `name>=X` of pyproject.toml pinned at X, or at X's post-release
    where only that was published (mnist1d 0.0.2 exists as 0.0.2.post1)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = []
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][^,;\s]*)\s*", requirement)
        if not match:
            raise ValueError(f"pyproject.toml: expected `name>=version`, got {requirement!r}")
        name, version = match.groups()
        pins.append(f"{name}=={version}" if ".post" in version
                    else f"{name}>={version},<={version}.post9999")
    return pins


def _test(session: nox.Session, *options: str) -> None:
    session.run("python", "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3",
                "--display-name", "Python 3 (course)")
    session.run("python", "-c", "import sys, torch, numpy; print('python', sys.version.split()[0],"
                " 'torch', torch.__version__, 'numpy', numpy.__version__)")
    jobs = os.environ.get("TEST_JOBS", "auto")
    session.run("python", "-m", "pytest", "-n", jobs, "--dist", "loadfile", "-q",
                "-p", "no:cacheprovider", *options, *TEST_SELECTION, *session.posargs)


@nox.session(python=os.environ.get("COURSE_PYTHON_LOWEST", "3.10"))
def lowest(session: nox.Session) -> None:
    """The oldest Python and every dependency at its lower bound."""
    constraints = Path(session.create_tmp()) / "lowest.txt"
    constraints.write_text("\n".join(lower_bounds()) + "\n")
    session.install("-c", str(constraints), *lower_bounds())
    session.install("-c", str(constraints), "-e", ".[dev]")
    # Other draws, not float noise: torch 2.6 draws dropout masks from other random numbers and
    # optuna 4.5's TPE proposes other trials, so chapters 6 and 7 print another draw's numbers.
    # The notebooks run to the end with every claim (assert) checked; their outputs are compared
    # (tolerantly) in `newest` and on the pinned versions, not here.
    _test(session, "--nbval-lax")


@nox.session(python=os.environ.get("COURSE_PYTHON_NEWEST", "3.11"))
def newest(session: nox.Session) -> None:
    """The newest release of everything that installs."""
    session.install("--upgrade", "--upgrade-strategy", "eager", "torch", "-e", ".[dev]")
    _test(session)
