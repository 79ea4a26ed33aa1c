#!/usr/bin/env bash
# Gradescope's image set-up: the autograder zip holds this folder's two files at its root and a
# copy of the course repository in course/ (zip -r autograder.zip setup.sh run_autograder course).
# Installs bubblewrap (the sandbox, where the container allows it) and the course, CPU PyTorch.
set -euo pipefail
apt-get install -y bubblewrap python3-pip
python3 -m pip install /autograder/source/course
