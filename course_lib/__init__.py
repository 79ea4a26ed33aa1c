"""course_lib: the shared library of Deep Learning by Experiment.

One import line in every notebook: `import course_lib as cl`. Each module is one concept; its
docstring names the chapter that introduces it.
"""
from course_lib.data import Split, load_digits, load_faces, load_mnist1d, make_moons, make_spirals
from course_lib.diagnostics import (
    ActivationStats,
    GradientNormRecorder,
    activation_stats,
    gradient_norms,
    record_activations,
)
from course_lib.environment import environment_report, on_colab
from course_lib.models import MLP, count_parameters, init_weights
from course_lib.grading import check, solution
from course_lib.plotting import (
    image_grid,
    plot_history,
    plot_layer_values,
    plot_runs,
    use_course_style,
)
from course_lib.reproducibility import seed_everything
from course_lib.training import (
    Callback,
    History,
    Result,
    Run,
    accuracy,
    evaluate,
    fit,
    format_mean_std,
    format_score,
    make_optimizer,
    mean_std,
    train,
    train_seeds,
)

__version__ = "0.1.0"

__all__ = [
    "ActivationStats", "Callback", "GradientNormRecorder", "History", "MLP", "Result", "Run",
    "Split", "accuracy", "activation_stats", "check", "count_parameters", "environment_report",
    "evaluate", "fit", "format_mean_std", "format_score", "gradient_norms", "image_grid",
    "init_weights", "load_digits", "load_faces", "load_mnist1d", "make_moons", "make_optimizer",
    "make_spirals", "mean_std", "on_colab", "plot_history", "plot_layer_values", "plot_runs",
    "record_activations", "seed_everything", "solution", "train", "train_seeds",
    "use_course_style",
]
