"""The CPU profiles of the Makefile (issue 23) reach the libraries they name.

`make test-portable` runs the library tests and the notebooks with BASELINE_CPU, as on an x86-64
CPU without AVX. Each variable is read by one library when it starts, so each is checked in a
fresh interpreter: PyTorch's own kernels (ATen), oneDNN (convolutions) and NumPy's SIMD dispatch
take the profile's code paths. MKL_ENABLE_INSTRUCTIONS is in the profile for CPUs whose MKL
honours it, but the MKL linked into PyTorch 2.13 ignores it here: a float32 matrix product gives
the same bits, at the same speed, with SSE4_2, AVX2 or no value at all (only MKL_CBWR=COMPATIBLE
changes them), so no test claims it does.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "DNNL_MAX_CPU_ISA",
             "NPY_DISABLE_CPU_FEATURES")

PROBE = """
import json, os, torch
try:
    from numpy._core._multiarray_umath import __cpu_features__ as features
except ImportError:  # NumPy 1
    from numpy.core._multiarray_umath import __cpu_features__ as features
x = torch.randn(2, 4, 8, 8)
torch.ops.aten.mkldnn_convolution(x, torch.randn(4, 4, 3, 3), None, [1, 1], [1, 1], [1, 1], 1)
print(json.dumps({"aten": torch.backends.cpu.get_cpu_capability(),
                  "numpy": {k: v for k, v in features.items() if k.startswith("X86_V")}}))
"""


def makefile_profile(name: str) -> dict[str, str]:
    """The variables of the Makefile's `name := A=x B=y ...` (continued lines joined)."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(rf"^{name} := (.*)$", text, re.MULTILINE)
    assert match, f"the Makefile defines no {name}"
    return dict(item.split("=", 1) for item in shlex.split(match.group(1)))


def probe(profile: dict[str, str]) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    result = subprocess.run([sys.executable, "-c", PROBE], env={**env, **profile,
                            "ONEDNN_VERBOSE": "1"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    isa = next((line.split("isa:", 1)[1] for line in lines if ",isa:" in line), "")
    return json.loads(lines[-1]), isa


def test_the_profiles_name_the_four_libraries():
    for name in ("BASELINE_CPU", "AVX2_CPU"):
        assert set(makefile_profile(name)) == set(VARIABLES), name


def test_baseline_profile_takes_pytorch_onednn_and_numpy_below_avx():
    found, isa = probe(makefile_profile("BASELINE_CPU"))
    assert found["aten"] in ("DEFAULT", "NO AVX")  # ATen's generic kernels ("NO AVX" in torch 2.1)
    assert isa == "Intel SSE4.1", isa  # oneDNN's SSE4.1 kernels
    if int(np.__version__.split(".")[0]) >= 2:  # NumPy 2 dispatches by x86-64 level
        assert found["numpy"].get("X86_V3", False) is False, found["numpy"]
        assert found["numpy"].get("X86_V4", False) is False, found["numpy"]


def test_avx2_profile_takes_the_avx2_paths_where_the_cpu_has_them():
    native, _ = probe({})
    if native["aten"] not in ("AVX2", "AVX512"):
        pytest.skip(f"this CPU has no AVX2 (PyTorch says {native['aten']})")
    found, isa = probe(makefile_profile("AVX2_CPU"))
    assert found["aten"] == "AVX2"
    assert isa == "Intel AVX2", isa
    assert found["numpy"].get("X86_V4", False) is False, found["numpy"]
