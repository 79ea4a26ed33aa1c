"""Root conftest: nbval's comparison made tolerant where a cell declares it
(tests/nbval_tolerance.py). The kernels nbval starts compute as the machine does (no pinned
numerics; `make test-portable` runs them again as on a baseline x86-64 CPU). The maintainer's
scripts in tools/ (never installed with course_lib) are importable by name in the tests."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tools"))

pytest_plugins = ["nbval_tolerance", "site_fixtures"]  # the browser tests' site, browser, server
