"""Grading: the exercise and grading contract, built once for every chapter.

Learners call `check("chapter.name", fn)` in an exercise notebook; `solution(id)` reveals the
reference; `python -m course_lib.grading` grades submitted notebooks for instructors.
"""
from course_lib.grading.checker import Result, check, grade_solution, self_test, solution
from course_lib.grading.exercise import Case, Exercise, Mutant, call, call_with_grad
from course_lib.grading.registry import (
    all_exercises, chapters, exercises_of, get, register, solved_source,
)

__all__ = [
    "Case", "Exercise", "Mutant", "Result", "all_exercises", "call", "call_with_grad", "chapters",
    "check", "exercises_of", "get", "grade_solution", "register", "self_test", "solution",
    "solved_source",
]
