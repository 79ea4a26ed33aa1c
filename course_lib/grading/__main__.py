"""`python -m course_lib.grading`: the instructor's grader (`course_lib.grading.cli`)."""
import sys

from course_lib.grading.cli import main

sys.exit(main())
