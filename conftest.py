"""Root conftest: nbval's comparison made tolerant where a cell declares it
(tests/nbval_tolerance.py). The kernels nbval starts compute as the machine does (no pinned
numerics; `make test-portable` runs them again as on a baseline x86-64 CPU)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))

pytest_plugins = ["nbval_tolerance"]
