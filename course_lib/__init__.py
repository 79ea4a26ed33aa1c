"""course_lib: the shared library of Deep Learning by Experiment.

One import line in every notebook: `import course_lib as cl`. Each module is one concept; its
docstring names the chapter that introduces it.
"""
from types import ModuleType as _ModuleType

from course_lib.activations import (
    ACTIVATIONS,
    activation_explorer,
    compose,
    derivative,
    plot_activation,
)
from course_lib.autoencoders import (
    Autoencoder,
    contractive_penalty,
    contractive_term,
    VariationalAutoencoder,
    corrupt,
    elbo_loss,
    fully_connected_autoencoder,
    fully_connected_vae,
    gaussian_kl,
    l1_code_term,
    pixel_mse,
    reconstruction_errors,
    reconstruction_loss,
    sparsity_kl,
    sparsity_term,
)
from course_lib.cnn import (
    CNN1d,
    CNN2d,
    DepthwiseSeparableConv2d,
    conv_output_size,
    count_multiply_adds,
)
from course_lib.data import (
    Split,
    load_digits,
    load_faces,
    load_mnist1d,
    load_text_corpus,
    load_word_similarity,
    make_moons,
    make_spirals,
)
from course_lib.diagnostics import (
    ActivationStats,
    GradientNormRecorder,
    activation_stats,
    gradient_norms,
    record_activations,
    saturated_fraction,
    saturation,
)
from course_lib.diagrams import draw_convolution, draw_network
from course_lib.environment import environment_report, on_colab
from course_lib.gradients import (
    ClipGradNorm,
    ResidualMLP,
    UpdateNormRecorder,
    deep_mlp,
    first_last_ratio,
    layer_gradient_norms,
    recorded_ratios,
)
from course_lib.initialization import forward_profile, mean_cosine
from course_lib.linear_regions import (
    count_linear_regions,
    count_pieces_1d,
    plot_linear_regions,
    sawtooth_network,
)
from course_lib.models import MLP, count_parameters, init_weights
from course_lib.grading import check, solution
from course_lib.layers import (
    BatchNorm1d,
    BatchNorm2d,
    Dropout,
    GroupNorm,
    LayerNorm,
    accuracy_in_train_mode,
    batchnorm_layers,
    fold_network,
)
from course_lib.invariance import shift, shift_change
from course_lib.optimization import (
    RangeTest,
    gradient_noise,
    lr_range_test,
    plot_schedules,
    plot_trajectories,
    schedule_values,
    trajectory,
)
from course_lib.page import glue, setup
from course_lib.plotting import (
    class_norm,
    image_grid,
    plot_history,
    plot_layer_values,
    plot_runs,
    use_course_style,
)
from course_lib.receptive_fields import (
    input_gradient_map,
    measure_receptive_field,
    plot_receptive_field,
    receptive_field,
    receptive_field_explorer,
    receptive_field_steps,
)
from course_lib.reproducibility import seed_everything
from course_lib.probes import linear_probe, make_linear_probe
from course_lib.progress import progress_bar, show_progress
from course_lib.sharing import LocallyConnected1d, linear_map_matrix, unshare
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
    paired_differences,
    standard_error,
    train,
    train_seeds,
)

__version__ = "0.4.0"  # the one place; pyproject.toml reads it (CHANGELOG.md)

# Every name imported above, and only those (one import statement per module: add yours there).
__all__ = sorted(
    name for name, value in list(globals().items())
    if not name.startswith("_") and not isinstance(value, _ModuleType)
)
