"""A synthetic class for the grader's class features (issue 27): students whose answers are
reference solutions, known mistakes (the mutants of `course_lib.exercises`), untouched stubs or
nothing, drawn with a fixed seed, so that every count a report shows is known in advance."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from course_lib.grading import exercises_of
from course_lib.grading.checker import mistake_name
from course_lib.grading.points import exercise_order

CHAPTER = "activations"


@dataclass
class Student:
    id: str
    name: str
    email: str
    choices: dict[str, object] = field(default_factory=dict)  # id -> "reference", "stub",
    # "omitted" or a mutant index

    def cells(self) -> list[str]:
        """The code cells of this student's notebook, one per exercise."""
        out = ["import torch\nfrom course_lib.grading import get"]
        for exercise in exercise_order(exercises_of(CHAPTER)):
            choice = self.choices[exercise.id]
            if choice == "reference":
                out.append(f"{exercise.name} = get({exercise.id!r}).reference")
            elif choice == "stub":
                out.append(f"def {exercise.name}(*args, **kwargs):\n    raise NotImplementedError")
            elif choice == "omitted":
                out.append("# (no answer)")
            else:
                out.append(f"{exercise.name} = get({exercise.id!r}).mutants[{choice}].fn")
        return out


def synthetic_class(size: int = 60, seed: int = 27) -> list[Student]:
    """`size` students; a student's ability sets how often they answer with the reference."""
    rng = random.Random(seed)
    exercises = exercise_order(exercises_of(CHAPTER))
    students = []
    for k in range(size):
        ability = rng.random()
        student = Student(f"s{k:03d}", f"Student {k:03d}", f"student{k:03d}@example.org")
        for exercise in exercises:
            u = rng.random()
            if u < 0.15 + 0.75 * ability:
                choice: object = "reference"
            elif u < 0.15 + 0.75 * ability + 0.06:
                choice = "stub"
            elif u < 0.15 + 0.75 * ability + 0.09:
                choice = "omitted"
            else:
                choice = rng.randrange(len(exercise.mutants))
            student.choices[exercise.id] = choice
        students.append(student)
    return students


def expected_counts(students: list[Student]) -> dict[str, dict]:
    """Per exercise: references (passes), untouched or missing answers, and each mistake's count."""
    out = {}
    for exercise in exercises_of(CHAPTER):
        choices = [s.choices[exercise.id] for s in students]
        out[exercise.id] = {
            "passed": sum(c == "reference" for c in choices),
            "not attempted": sum(c in ("stub", "omitted") for c in choices),
            "mistakes": Counter(
                mistake_name(exercise, c) for c in choices if isinstance(c, int)
            ),
        }
    return out
