"""Reference solutions, test cases and known mistakes of the graded exercises, one module per
chapter. Each module registers its exercises with `course_lib.grading.register`; the reference
function has the same name as the function the learner writes, so a revealed solution reads like
the answer to the exercise."""
