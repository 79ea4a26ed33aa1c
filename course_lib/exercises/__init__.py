"""Reference solutions, test cases and known mistakes of the graded exercises, one module per
chapter. Each module registers its exercises with `course_lib.grading.register`; the reference
function has the same name as the function the learner writes, so a revealed solution reads like
the answer to the exercise."""

PYTHON_NUMBER_HINT = (
    "A Python number instead of a tensor: .item() or float(...) cuts the result off from "
    "autograd. Return the tensor itself so that the gradient can flow."
)
LOGITS_HINT = (
    "Logits vs probabilities: F.binary_cross_entropy expects probabilities in [0, 1], and the "
    "decoder outputs logits (any real number). Use F.binary_cross_entropy_with_logits(logits, "
    "x, ...), which applies the sigmoid inside, stably."
)
