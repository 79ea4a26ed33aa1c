"""Self-test of the exercises of chapters 11 (vae) and 12 (at_work): every reference passes, an
untouched stub fails cleanly, every mutant fails with its own hint."""
import pytest

from course_lib.grading import exercises_of, self_test


@pytest.mark.parametrize("chapter", ["vae", "at_work"])
def test_exercises_are_not_vacuous(chapter):
    ids = [e.id for e in exercises_of(chapter)]
    assert len(ids) >= 4
    assert self_test(ids) == []
