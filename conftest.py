"""Root conftest: nbval's comparison made tolerant where a cell declares it
(tests/nbval_tolerance.py), and every kernel that nbval starts inherits the portable-numerics
environment (`course_lib.reproducibility.PORTABLE_NUMERICS`), as `make execute` does."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))

from course_lib.reproducibility import PORTABLE_NUMERICS  # noqa: E402

pytest_plugins = ["nbval_tolerance"]

os.environ.update(PORTABLE_NUMERICS)
