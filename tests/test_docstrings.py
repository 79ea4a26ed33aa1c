"""Every public function and class of the library names the chapter that introduces it, in one
style: a sentence "Chapter N." in its docstring (issue 9)."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

# Every module a chapter uses (the command-line tools `grade` and `notebooks` are for instructors
# and maintainers, not introduced by a chapter).
MODULES = [
    "activations",
    "autoencoders",
    "checks",
    "cnn",
    "data",
    "diagnostics",
    "diagrams",
    "environment",
    "gradients",
    "hpo",
    "initialization",
    "invariance",
    "layers",
    "linear_regions",
    "models",
    "optimization",
    "plotting",
    "probes",
    "progress",
    "receptive_fields",
    "reproducibility",
    "sharing",
    "training",
    "words",
]
CHAPTER = re.compile(r"(?:^|\s)Chapter \d+\.(?:\s|$)")
OTHER_STYLES = re.compile(r"\(chapter \d+\)|[Ii]ntroduced in chapter \d+|Used in chapter \d+")


def _public(module_name: str):
    module = importlib.import_module(f"course_lib.{module_name}")
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield f"{module_name}.{name}", obj


PUBLIC = [item for m in MODULES for item in _public(m)]


@pytest.mark.parametrize("name, obj", PUBLIC, ids=[name for name, _ in PUBLIC])
def test_docstring_names_its_chapter_in_one_style(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert CHAPTER.search(doc), f"{name}: add a sentence 'Chapter N.' to the docstring"
    assert not OTHER_STYLES.search(doc), f"{name}: write 'Chapter N.', not another style"


@pytest.mark.parametrize("module_name", MODULES)
def test_module_docstring_names_a_chapter(module_name):
    doc = importlib.import_module(f"course_lib.{module_name}").__doc__ or ""
    assert re.search(r"[Cc]hapter \d+", doc), f"course_lib.{module_name}: name the chapter"
