"""The registry of exercises, by id. Each module of `course_lib.exercises` registers its own."""
from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
import sys

from course_lib.grading.exercise import Exercise

__all__ = [
    "register", "get", "all_exercises", "chapters", "exercises_of", "solved_source",
]

_REGISTRY: dict[str, Exercise] = {}
_loaded = False


def register(exercise: Exercise) -> Exercise:
    """Add `exercise` to the registry; ids are unique."""
    if exercise.id in _REGISTRY and _REGISTRY[exercise.id] is not exercise:
        raise ValueError(f"two exercises share the id {exercise.id!r}")
    _REGISTRY[exercise.id] = exercise
    return exercise


def _load() -> None:
    global _loaded
    if not _loaded:
        import course_lib.exercises as package

        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{info.name}")
        _loaded = True


def all_exercises() -> list[Exercise]:
    """Every registered exercise, sorted by id."""
    _load()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def chapters() -> list[str]:
    """The chapter slugs that have exercises."""
    return sorted({e.chapter for e in all_exercises()})


def exercises_of(chapter: str) -> list[Exercise]:
    """The exercises of one chapter slug, sorted by id."""
    found = [e for e in all_exercises() if e.chapter == chapter]
    if not found:
        raise KeyError(
            f"no exercises for chapter {chapter!r}; chapters with exercises: {chapters()}"
        )
    return found


def get(exercise_id: object) -> Exercise:
    """The exercise with this id, or a `KeyError` that suggests the closest ids."""
    _load()
    if not isinstance(exercise_id, str):
        raise KeyError(f"an exercise id is a string like 'activations.step', got {exercise_id!r}")
    if exercise_id not in _REGISTRY:
        close = difflib.get_close_matches(exercise_id, list(_REGISTRY), n=3)
        suggestion = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"there is no exercise {exercise_id!r}.{suggestion}")
    return _REGISTRY[exercise_id]


def solved_source(chapter: str) -> str:
    """Code defining every reference solution of `chapter`, with the imports they need: what a
    learner who solved every exercise would write (the grader's self-test, tests, benchmarks)."""
    exercises = exercises_of(chapter)
    module = sys.modules[exercises[0].reference.__module__]
    imports = [
        line
        for line in inspect.getsource(module).splitlines()
        if line.startswith(("import ", "from "))
        and "course_lib" not in line
        and "__future__" not in line
    ]
    return (
        "\n".join(imports) + "\n\n"
        + "\n\n".join(inspect.getsource(e.reference) for e in exercises)
    )
