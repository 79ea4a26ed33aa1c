"""Every kernel that nbval starts inherits the portable-numerics environment (see
`course_lib.reproducibility.PORTABLE_NUMERICS`), as `make execute` does, so that stored and
re-computed outputs agree on any CPU of the machine kind."""
import os

from course_lib.reproducibility import PORTABLE_NUMERICS

os.environ.update(PORTABLE_NUMERICS)
