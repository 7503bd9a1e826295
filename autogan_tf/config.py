"""Every setting of the search and of the final training, defined once.

A setting is a dataclass field made by `setting`: its default, the help text
of its command-line flag and the checks its value must pass sit together.
Settings that the search and the training share are grouped by what they
configure (data, model, optimiser, evaluation, the run itself); the two job
configurations, `SearchConfig` and `TrainConfig`, are those groups plus their
own settings. Attribute access stays flat (``config.gf_dim``) and ``to_dict``
gives the flat JSON written into run directories, so ``config.json`` and
``search_config.json`` of older runs still load (`from_dict`).

The command lines do not repeat any of this: `define_flags` makes one absl
flag per field, typed from its annotation and documented by its help, and
`from_flags` builds the configuration back from the parsed flags. Building a
configuration validates it (`Settings.__post_init__`); `check_values` applies
the same checks to loose keyword arguments, for classes such as
`gan_trainer.GANTrainer` that take settings one by one.

Pure Python: no TensorFlow is imported, so a command's ``--help`` is quick.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Callable

from autogan_tf import errors

# The Inception Score averages over 10 splits (improved-GAN's code, which the
# paper's figures use), so an evaluation needs at least 10 images.
IS_SPLITS = 10

# Choices of enumerated settings; the modules acting on them import them from here.
PRECISIONS = ("float32", "bfloat16")  # what a run computes in
PRECISION_CHOICES = PRECISIONS + ("auto",)  # what --precision accepts (see precision.choose)
UNUSED_OPS_MODES = ("freeze", "momentum")
EMA_WARMUPS = ("bias_correction", "none")
CTRL_LOSSES = ("official", "independent")
REWARDS = ("auto", "is", "fid", "kid", "class_accuracy")  # search.rewards.choose: "auto"
LABEL_FREE_KINDS = ("rotation", "contrastive", "random")  # --classifier=label_free:KIND
REWARD_BN_STATISTICS = ("moving", "batch")
SEARCHES = ("rl", "random")
RESET_STATISTICS = ("std", "var")
CTRL_BASELINES = ("iteration", "persistent")
AUGMENTATIONS = ("translation", "color", "cutout")  # families of --augment (`augment.py`)


# -- checks --------------------------------------------------------------------
# A check takes the setting's name and value and raises errors.UserError (a ValueError)
# naming the flag.
Check = Callable[[str, object], None]


def positive_int(name: str, value) -> None:
    """An integer >= 1 (a bool is not an integer here).

    Args:
      name: the setting's name, for the message.
      value: the value to check.

    Raises:
      errors.UserError: ``value`` is not an int, is a bool, or is below 1.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise errors.UserError(f"--{name} must be a positive integer, got {value!r}")


def minibatch_group(name: str, value) -> None:
    """0 (off) or a group size of at least 2 images.

    Args:
      name: the setting's name, for the message.
      value: the value to check.

    Raises:
      errors.UserError: ``value`` is not an int, or is 1 or negative.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value == 1:
        raise errors.UserError(f"--{name} must be 0 (off) or a group size >= 2, got {value!r}")


def non_negative(name: str, value) -> None:
    """A number >= 0 (0 usually means "never" or "none").

    Args:
      name: the setting's name, for the message.
      value: the number to check.

    Raises:
      errors.UserError: ``value`` is negative.
    """
    if value < 0:
        raise errors.UserError(f"--{name} must be >= 0, got {value}")


def positive(name: str, value) -> None:
    """A number > 0 (learning rates, thresholds).

    Args:
      name: the setting's name, for the message.
      value: the number to check.

    Raises:
      errors.UserError: ``value`` is not greater than 0.
    """
    if not value > 0:
        raise errors.UserError(f"--{name} must be > 0, got {value}")


def unit_interval(name: str, value) -> None:
    """A number in [0, 1): decays and Adam betas.

    Args:
      name: the setting's name, for the message.
      value: the number to check.

    Raises:
      errors.UserError: ``value`` lies outside [0, 1).
    """
    if not 0 <= value < 1:
        raise errors.UserError(f"--{name} must be in [0, 1), got {value}")


def _excluded_choices(name: str, value) -> None:
    """Text `search_space.allowed_choices` accepts (its error names the flag).

    Raises:
      errors.UserError: an unknown field or choice, or a field left without choices.
    """
    from autogan_tf import search_space  # light; imported here to keep this module first

    search_space.allowed_choices(value)


def _classifier(name: str, value) -> None:
    """A ``--classifier`` value whose ``label_free:`` kind, if any, exists.

    Raises:
      errors.UserError: ``label_free:`` followed by an unknown kind, naming the flag.
    """
    prefix = "label_free:"
    if isinstance(value, str) and value.startswith(prefix) and \
            value[len(prefix):] not in LABEL_FREE_KINDS:
        raise errors.UserError(f"--{name}={value}: the label-free networks are "
                               f"{', '.join(prefix + kind for kind in LABEL_FREE_KINDS)}")


def augment_policy(policy) -> tuple[str, ...]:
    """The transformation families a ``--augment`` value names, in its order.

    Args:
      policy: comma-separated names of `AUGMENTATIONS` (``"translation,color,cutout"``;
        spaces and case ignored; empty: no augmentation), or a tuple of them.

    Returns:
      The names as a tuple (empty when off).

    Raises:
      errors.UserError: an unknown or repeated name (the message names ``--augment``).
    """
    items = policy.split(",") if isinstance(policy, str) else list(policy)
    names = tuple(str(item).strip().lower() for item in items if str(item).strip())
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise errors.UserError(f"--augment: unknown transformation(s) {', '.join(unknown)}; "
                               f"use a comma-separated list of {', '.join(AUGMENTATIONS)}, "
                               "or nothing for none")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise errors.UserError(f"--augment: {', '.join(repeated)} named twice in {policy!r}")
    return names


def _augment_policy(name: str, value) -> None:
    """A value `augment_policy` accepts.

    Raises:
      errors.UserError: an unknown or repeated transformation, naming the flag.
    """
    if not isinstance(value, str):
        raise errors.UserError(f"--{name} must be a comma-separated string, got {value!r}")
    augment_policy(value)


def one_of(choices: tuple) -> Check:
    """A check that the value is one of ``choices``.

    Args:
      choices: the accepted values (one of the tuples above, such as `PRECISIONS`).

    Returns:
      A `Check` raising errors.UserError, naming the flag and the choices, for any other value.
    """

    def check(name: str, value) -> None:
        if value not in choices:
            raise errors.UserError(f"--{name} must be one of {choices}, got {value!r}")

    return check


def at_least(minimum: int, why: str = "") -> Check:
    """A check that the value is >= ``minimum``; ``why`` is appended to the message.

    Args:
      minimum: the smallest accepted value.
      why: text added to the error message after the bound (why the bound exists).

    Returns:
      A `Check` raising errors.UserError for a value below ``minimum``.
    """

    def check(name: str, value) -> None:
        if value < minimum:
            raise errors.UserError(f"--{name}={value} must be at least {minimum}{why}")

    return check


def setting(default, help: str, *checks: Check) -> dataclasses.Field:  # noqa: A002 - absl's word
    """A configuration field: its default, its flag's help text and its checks.

    Args:
      default: the value when the flag is not given (immutable: str, number, bool, None).
      help: the flag's help text, as ``--helpfull`` shows it.
      *checks: functions ``(name, value)`` raising ValueError for a bad value, run in
        order when a configuration is built and by `check_values`.

    Returns:
      A `dataclasses.Field` for a class derived from `Settings`.
    """
    return dataclasses.field(default=default, metadata={"help": help, "checks": checks})


def redefine(group, name: str, default, help: str | None = None) -> dataclasses.Field:  # noqa: A002
    """Field ``name`` of the settings group ``group`` with another default (and help).

    For the settings the search and the training share but start from different
    values (the search's supernet is half as wide as the final model): the
    checks stay the group's, only the default and possibly the help change.

    Args:
      group: the `Settings` group that defines the field (`ModelSettings`, ...).
      name: the field's name in ``group``.
      default: the new default value.
      help: the new help text; None keeps the group's.

    Returns:
      A `dataclasses.Field` with the group's checks.
    """
    base = group.__dataclass_fields__[name]
    return setting(default, help or base.metadata["help"], *base.metadata["checks"])


@dataclasses.dataclass
class Settings:
    """Base of every settings group: validates the fields and converts to and from dicts.

    Each field is made by `setting`; building an instance runs every field's checks in
    order and then `check_together`, so an invalid configuration cannot exist.
    """

    def __post_init__(self):
        for field in dataclasses.fields(self):
            for check in field.metadata.get("checks", ()):
                check(field.name, getattr(self, field.name))
        self.check_together()

    def check_together(self) -> None:
        """Checks that involve several fields; a configuration class adds its own.

        Raises:
          errors.UserError: the fields' values are inconsistent with each other.
        """

    def to_dict(self) -> dict:
        """The flat dict of every field (what run directories keep as JSON)."""
        return dataclasses.asdict(self)

    @classmethod
    def saved_value(cls, saved: dict, key: str):
        """``saved[key]``, or the setting's default when ``saved`` was written before it existed.

        Args:
          saved: a flat dict as written by `to_dict` (``config.json``).
          key: a setting's name.
        """
        if key in saved:
            return saved[key]
        default = {f.name: f.default for f in dataclasses.fields(cls)}.get(key)
        return None if default is dataclasses.MISSING else default

    @classmethod
    def from_dict(cls, values: dict):
        """A configuration from a saved dict.

        Keys that are no longer settings are ignored, and settings added since the dict
        was written take their defaults, so the JSON of older runs still loads.

        Args:
          values: a flat dict as written by `to_dict` (``config.json``).

        Returns:
          An instance of ``cls``, validated.

        Raises:
          errors.UserError: a value fails its setting's checks.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# -- groups shared by the search and the training --------------------------------
@dataclasses.dataclass
class DataSettings(Settings):
    """Where the real images come from."""

    dataset: str = setting("cifar10", "cifar10, stl10, shapes (built in) or folder:PATH.")
    data_dir: str | None = setting(None, "tensorflow-datasets data directory.")
    on_bad_image: str = setting(
        "error", "'error' stops at an unreadable image, 'skip' skips it with a warning.")


@dataclasses.dataclass
class ModelSettings(Settings):
    """Sizes of the generator and the discriminator (defaults: the paper's final model)."""

    gf_dim: int = setting(256, "Generator width: channels of its cells (paper: 256).",
                          positive_int)
    df_dim: int = setting(128, "Discriminator width (paper: 128).", positive_int)
    d_minibatch_std: int = setting(
        0, "0: AutoGAN's discriminator; N >= 2: D also sees the spread of groups of N images "
           "(minibatch standard deviation, against mode collapse in short runs).",
        minibatch_group)
    latent_dim: int = setting(128, "Dimension of the noise z.", positive_int)
    bottom_width: int = setting(4, "Side of the generator's first feature map; images are "
                                   "bottom_width * 2^cells pixels.", positive_int)
    conditional: bool = setting(
        False, "Class-conditional models: G draws the class it is asked for (a class "
               "embedding joined to z; batch and instance norms scale and shift per class), D "
               "is a projection discriminator. Needs a labelled --dataset (cifar10, stl10, "
               "shapes, or a folder with one sub-folder per class). Off: the paper's models.")
    num_classes: int = setting(
        0, "Classes of a --conditional model; 0: as many as --dataset has, counted at start "
           "and recorded in the run's config.", non_negative)

    def check_together(self):
        """Checks across fields: ``num_classes`` belongs to a conditional model.

        Raises:
          errors.UserError: ``num_classes`` without ``conditional``, or 1.
        """
        super().check_together()
        if self.num_classes and not self.conditional:
            raise errors.UserError(f"--num_classes={self.num_classes} needs --conditional")
        if self.num_classes == 1:
            raise errors.UserError("--num_classes=1: a conditional model needs at least 2 "
                                   "classes")


@dataclasses.dataclass
class OptimizerSettings(Settings):
    """The adversarial training step: batch sizes, n_critic and Adam (the paper's values)."""

    g_batch_size: int = setting(128, "Generated images per generator step (global: split "
                                     "across replicas).", positive_int)
    d_batch_size: int = setting(64, "Real images per discriminator step (global: split across "
                                    "replicas).", positive_int)
    n_critic: int = setting(5, "Discriminator steps per generator step.", positive_int)
    g_lr: float = setting(2e-4, "Adam learning rate of the generator.", positive)
    d_lr: float = setting(2e-4, "Adam learning rate of the discriminator.", positive)
    beta1: float = setting(0.0, "Adam beta1 of G and D (paper: 0).", unit_interval)
    beta2: float = setting(0.9, "Adam beta2 of G and D (paper: 0.9).", unit_interval)
    augment: str = setting(
        "", "Differentiable augmentation of D's inputs (DiffAugment): comma-separated "
            "transformations out of translation, color, cutout, e.g. "
            "'translation,color,cutout'. Real and generated images pass through random "
            "transformations of these families (drawn independently for each) before every "
            "D call, in D's steps and in G's step. For small data sets (a few thousand "
            "images or fewer). Empty: off (the paper).", _augment_policy)

    def check_together(self):
        """Checks across fields: D's minibatch-std groups divide the batches D sees.

        Raises:
          errors.UserError: ``d_minibatch_std`` is on and a batch larger than it is not a
            multiple of it.
        """
        super().check_together()
        group = getattr(self, "d_minibatch_std", 0)
        for name in ("d_batch_size", "g_batch_size"):
            size = getattr(self, name)
            if group and size > group and size % group:
                raise errors.UserError(f"--{name}={size} must be a multiple of "
                                       f"--d_minibatch_std={group} (or at most {group})")


@dataclasses.dataclass
class EvaluationSettings(Settings):
    """How images are scored (IS/FID of the final model, the search's rewards)."""

    eval_batch_size: int = setting(100, "Images per batch when generating and classifying "
                                        "for IS/FID.", positive_int)
    classifier: str = setting(
        "inception", "'inception' (the 2015-12-05 graph), a .keras classifier file, 'auto' "
                     "(a small classifier trained once on --dataset's classes) or "
                     "'label_free:KIND' (KIND rotation, contrastive or random: a network "
                     "learnt from --dataset's images without labels; FID/KID only) for "
                     "IS/FID/KID.", _classifier)
    label_free_steps: int = setting(300, "Training steps of a --classifier=label_free:KIND "
                                         "network (64 images per step).", positive_int)
    feature_layer: str | None = setting(None, "Feature layer name of a --classifier .keras "
                                              "model.")
    inception_path: str | None = setting(None, "classify_image_graph_def.pb or "
                                               "inception-2015-12-05.tgz.")
    fid_stats: str | None = setting(None, "Reference statistics .npz (TTUR format); default: "
                                          "computed from --dataset.")


@dataclasses.dataclass
class RunSettings(Settings):
    """How a run computes, logs, checkpoints and survives faults."""

    precision: str = setting(
        "float32", "float32, or bfloat16 compute with float32 variables, losses and spectral "
                   "norms (about 1.3-2x faster on CPUs with AVX-512 bf16 or AMX, and on "
                   "GPUs with bf16 units; see the docs' Performance page), or auto: bfloat16 "
                   "where the hardware computes it natively (every GPU of compute capability "
                   "8.0 or later; with no GPU, a CPU with avx512_bf16 or amx_bf16), else "
                   "float32. The run prints and records which, and why.",
        one_of(PRECISION_CHOICES))
    log_every: int = setting(100, "Log the losses every N generator iterations.",
                             positive_int)
    save_every: int = setting(1000, "Checkpoint every N generator iterations (0: only at the "
                                    "end).", non_negative)
    keep_checkpoints: int = setting(3, "Recent checkpoints kept in MODEL_DIR/checkpoints.",
                                    positive_int)
    max_nan_restores: int = setting(
        3, "On NaN/Inf losses or weights, restore the last checkpoint and go on with the next "
           "batches at most this many times, then stop with an error.", non_negative)
    seed: int = setting(0, "Seed of the initial weights, the noise, the data order and the "
                           "controllers.")

    def __post_init__(self):
        from autogan_tf import precision as precision_lib  # light: TensorFlow only for auto

        # "auto" made concrete, then checked; the reason is kept beside the settings.
        choice = precision_lib.choose(self.precision)
        self.precision, self.precision_reason = choice.precision, choice.reason
        super().__post_init__()

    def to_dict(self) -> dict:
        """Every field, and ``precision_reason``: why the run computes in its precision."""
        return {**super().to_dict(), "precision_reason": self.precision_reason}

    @classmethod
    def from_dict(cls, values: dict):
        """`Settings.from_dict`, keeping the saved ``precision_reason`` (a saved precision
        is concrete, so resolving it again would only say ``--precision=bfloat16``)."""
        config = super().from_dict(values)
        config.keep_reason(values.get("precision"), values.get("precision_reason"))
        return config

    def replace(self, **changes):
        """A copy with ``changes`` (`dataclasses.replace`), keeping ``precision_reason``
        unless the precision changes."""
        new = dataclasses.replace(self, **changes)
        new.keep_reason(self.precision, self.precision_reason)
        return new

    def keep_reason(self, precision, reason) -> None:
        """Take ``reason`` as this configuration's ``precision_reason`` when it explains
        the same ``precision`` (a copy or a saved file of this run's configuration)."""
        if reason and precision == self.precision:
            self.precision_reason = reason


_SHARED_GROUPS = (RunSettings, EvaluationSettings, OptimizerSettings, ModelSettings,
                  DataSettings)


# -- the two jobs ----------------------------------------------------------------
@dataclasses.dataclass
class SearchConfig(*_SHARED_GROUPS):
    """Settings of `search.loop.run_search`; defaults are the official search script's.

    Beyond the shared groups: the supernet (``num_cells``, ``unused_ops``), the
    schedule (epochs, iterations, growth), the controller and REINFORCE, the
    reward, and dynamic resetting.
    """

    gf_dim: int = redefine(ModelSettings, "gf_dim", 128,
                           "Supernet generator width (paper search: 128).")
    df_dim: int = redefine(ModelSettings, "df_dim", 64, "Discriminator width (paper search: 64).")
    log_every: int = redefine(RunSettings, "log_every", 50)
    save_every: int = redefine(RunSettings, "save_every", 200,
                               "Checkpoint every N generator iterations inside shared training "
                               "(0: only between phases).")
    keep_checkpoints: int = redefine(RunSettings, "keep_checkpoints", 2)
    # the supernet
    num_cells: int = setting(3, "Generator cells; images are bottom_width * 2^num_cells.",
                             positive_int)
    unused_ops: str = setting(
        "freeze", "'freeze': ops a step did not use keep weights and Adam moments; 'momentum': "
                  "plain Adam on their zero gradients (official code under PyTorch 1.x).",
        one_of(UNUSED_OPS_MODES))
    # the schedule
    shared_epochs: int = setting(15, "Shared-GAN training per search iteration, in epochs of "
                                     "--epoch_images images.", non_negative)
    epoch_images: int = setting(
        0, "Images in one epoch of --shared_epochs; 0: the training images of --dataset "
           "(CIFAR-10: 50000, a folder: its image count).", non_negative)
    shared_iters: int = setting(0, "Generator iterations of shared training per search "
                                   "iteration (overrides --shared_epochs).", non_negative)
    max_search_iters: int = setting(65, "Search iterations (official: 65).", positive_int)
    grow_steps: str = setting("15,35", "Search iterations at which a cell is added, comma "
                                       "separated (official script: 15,35).")
    # the controller
    ctrl_steps: int = setting(30, "Controller steps per search iteration.", non_negative)
    ctrl_sample_batch: int = setting(1, "Architectures per controller step.", positive_int)
    ctrl_lr: float = setting(3.5e-4, "Adam learning rate of the controller.", positive)
    hid_size: int = setting(100, "Hidden size of the controller's LSTM.", positive_int)
    entropy_coeff: float = setting(1e-4, "Entropy bonus (paper: 1e-4; official code default "
                                         "1e-3).", non_negative)
    baseline_decay: float = setting(0.9, "Decay of the REINFORCE baseline's moving average.",
                                    unit_interval)
    ctrl_baseline: str = setting(
        "iteration", "'iteration': the REINFORCE baseline restarts every search iteration "
                     "(official); 'persistent': kept across iterations.", one_of(CTRL_BASELINES))
    ctrl_loss: str = setting(
        "official", "'official': the official controller loss (per-decision rewards and "
                    "baseline, summed log-probs times summed advantages); 'independent': "
                    "textbook REINFORCE.", one_of(CTRL_LOSSES))
    # growth and the beam
    num_candidates: int = setting(10, "Architectures sampled at each stage end.", positive_int)
    topk: int = setting(5, "Architectures kept in the beam at each stage end.", positive_int)
    search: str = setting("rl", "'rl' (controller) or 'random' (random search with weight "
                                "sharing).", one_of(SEARCHES))
    excluded_choices: str = setting(
        "", "Choices the search never samples, comma-separated field=choice (fields conv, "
            "norm, up, shortcut), e.g. 'norm=in'; vectors keep the official encoding. "
            "Default: the paper's full space.", _excluded_choices)
    mlas: bool = setting(True, "Multi-level search (one controller per cell, growing); false: "
                               "one controller, full resolution.")
    # the reward
    reward: str = setting(
        "is", "'is' (Inception Score), 'fid' (reciprocal FID), 'kid' (-ln KID to the real "
              "images; needs no labels with --classifier=label_free:KIND), 'class_accuracy' "
              "(--conditional only: how often the scorer sees the class asked for) or 'auto' "
              "(IS when the scorer tells at least 5 classes apart, else KID of a label-free "
              "network).",
        one_of(REWARDS))
    reward_num_images: int = setting(5000, "Images per reward evaluation (official: 5000).",
                                     positive_int, at_least(2))
    reward_bn: str = setting(
        "moving", "Batch norm of the supernet's reward images: 'moving' (the official code: "
                  "moving statistics, which every architecture trained since has moved) or "
                  "'batch' (each candidate's own batch statistics).",
        one_of(REWARD_BN_STATISTICS))
    # dynamic reset
    dynamic_reset: bool = setting(True, "Re-initialise the shared GAN when its losses stop "
                                        "moving.")
    reset_threshold: float = setting(1e-3, "Dynamic-reset threshold on the moving loss "
                                           "statistic.", positive)
    reset_window: int = setting(500, "Window (losses) of the dynamic-reset statistic.",
                                positive_int)
    reset_statistic: str = setting("var", "'var' (the official code and the paper: variance < "
                                          "threshold) or 'std'.", one_of(RESET_STATISTICS))

    def check_together(self):
        """Checks across fields: some shared training, ``topk <= num_candidates``, growth steps.

        Raises:
          errors.UserError: ``shared_iters`` and ``shared_epochs`` are both 0, ``topk`` exceeds
            ``num_candidates``, or ``grow_steps`` is invalid (see `grow_steps_list`).
        """
        super().check_together()
        if self.shared_iters == 0 and self.shared_epochs == 0:
            raise errors.UserError("--shared_iters or --shared_epochs must be positive")
        if self.topk > self.num_candidates:
            raise errors.UserError(f"--topk={self.topk} must not exceed "
                             f"--num_candidates={self.num_candidates}")
        if self.reward == "class_accuracy" and not self.conditional:
            raise errors.UserError("--reward=class_accuracy scores the class a generator was "
                                   "asked for: it needs --conditional")
        self.grow_steps_list()  # validates

    def grow_steps_list(self) -> list[int]:
        """Search iterations at which the next cell is added (empty without mlas).

        Raises:
          ValueError: ``grow_steps`` is not one strictly increasing positive
            integer per added cell, all below ``max_search_iters``.
        """
        text = str(self.grow_steps).replace(" ", "")
        try:
            steps = [int(s) for s in text.split(",") if s]
        except ValueError:
            raise errors.UserError(f"--grow_steps must be comma-separated integers, got {text!r}") from None
        if not self.mlas:
            return []
        if len(steps) != self.num_cells - 1:
            raise errors.UserError(f"--grow_steps needs {self.num_cells - 1} values for "
                             f"{self.num_cells} cells, got {steps}")
        if any(b <= a for a, b in zip(steps, steps[1:])) or (steps and steps[0] <= 0):
            raise errors.UserError(f"--grow_steps must be positive and strictly increasing, got {steps}")
        if steps and steps[-1] >= self.max_search_iters:
            raise errors.UserError(f"--grow_steps {steps} must be below "
                             f"--max_search_iters={self.max_search_iters}")
        return steps

    def check_reward(self):
        """The built-in reward's own limit (not checked for a custom reward function):
        the Inception Score needs at least `IS_SPLITS` images."""
        at_least(IS_SPLITS, f": the Inception Score averages over {IS_SPLITS} splits")(
            "reward_num_images", self.reward_num_images)

    def stage_at(self, iteration: int) -> int:
        """The stage (index of the last active cell) at search iteration ``iteration``.

        Args:
          iteration: the search iteration (0-based).
        """
        if not self.mlas:
            return self.num_cells - 1
        return sum(1 for step in self.grow_steps_list() if iteration >= step)

    @property
    def gen_iters_per_search_iter(self) -> int:
        """Generator iterations of one shared-training phase.

        With epochs, as the official loop: an epoch is ceil(epoch_images /
        d_batch_size) D steps (its data loader keeps the last, smaller batch)
        and a G step follows every n_critic-th D step, so ceil(D steps /
        n_critic) G steps (CIFAR-10, 15 epochs, 64, 5: 11,730 D and 2,346 G
        steps). Here every D batch is full and every G iteration has n_critic
        D steps.
        """
        if self.shared_iters:
            return self.shared_iters
        if not self.epoch_images:
            raise ValueError("epoch_images=0 stands for the data set's size: resolve it first "
                             "(search.loop.with_epoch_images)")
        d_steps = self.shared_epochs * -(-self.epoch_images // self.d_batch_size)
        return max(1, -(-d_steps // self.n_critic))

    def resolution(self, stage: int) -> int:
        """Image side length the supernet generates at ``stage``.

        Args:
          stage: the stage, i.e. the index of the last active cell.
        """
        from autogan_tf import search_space

        return search_space.output_size(self.bottom_width, stage)


@dataclasses.dataclass
class TrainConfig(*_SHARED_GROUPS):
    """Settings of `training.train`; defaults are the paper's run of autogan_cifar10_a."""

    arch: str = setting("autogan_cifar10_a", "Architecture: alias (autogan_cifar10_a), vector "
                                             "'1 0 1 1 ...', or JSON file.")
    max_iters: int = setting(50_000, "Generator iterations (each is n_critic D steps + 1 G "
                                     "step).", positive_int)
    lr_decay: bool = setting(False, "Linear learning-rate decay to 0 over max_iters (the "
                                    "paper's run: off).")
    ema_decay: float = setting(0.999, "Decay of the exponential moving average of G's weights "
                                      "used for eval/export.", unit_interval)
    ema_warmup: str = setting(
        "bias_correction", "bias_correction: the EMA is the bias-corrected average of the "
                           "weights seen so far (as Adam's moments), useful from the first "
                           "iterations and equal to the paper's at full length; none: the "
                           "official average, started at the initial weights (mostly random "
                           "init for the first few thousand iterations at 0.999).",
        one_of(EMA_WARMUPS))
    eval_every: int = setting(5000, "Evaluate IS/FID every N generator iterations (0: never).",
                              non_negative)
    eval_num_samples: int = setting(50_000, "Samples per evaluation (paper: 50000).",
                                    non_negative)
    jit_compile: bool = setting(False, "Compile the training step with XLA.")

    def __post_init__(self):
        from autogan_tf import search_space as ss

        self.arch = str(ss.parse_arch(self.arch))  # an ArchError (ValueError) names the field
        super().__post_init__()

    def check_together(self):
        """Checks across fields: a periodic evaluation needs enough samples for the Inception Score.

        Raises:
          errors.UserError: ``eval_every`` and ``eval_num_samples`` are set but
            ``eval_num_samples`` is below `IS_SPLITS`.
        """
        super().check_together()
        if self.eval_every and self.eval_num_samples and self.eval_num_samples < IS_SPLITS:
            raise errors.UserError(f"--eval_num_samples={self.eval_num_samples} must be at least "
                             f"{IS_SPLITS} (the Inception Score averages over {IS_SPLITS} "
                             "splits), or 0 to skip evaluation")

    @property
    def image_size(self) -> int:
        """Side length of the generated (and real) images."""
        from autogan_tf import search_space as ss

        return self.bottom_width * 2 ** ss.parse_arch(self.arch).num_cells


# -- loose values, flags and run directories ---------------------------------------
_CHECKS = {field.name: field.metadata["checks"]
           for cls in (SearchConfig, TrainConfig) for field in dataclasses.fields(cls)}


def check_values(**values) -> None:
    """Apply the checks of the settings named by the keywords to their values.

    For objects that take settings one by one rather than as a configuration
    (`gan_trainer.GANTrainer`, `search.controller.Reinforce`), so a bad value is
    refused with the same message wherever it enters.

    Args:
      **values: setting name -> value, e.g. ``n_critic=5``.

    Raises:
      ValueError: a value fails its setting's checks (the message names the flag).
      KeyError: a keyword is not a setting.
    """
    for name, value in values.items():
        for check in _CHECKS[name]:
            check(name, value)


def define_flags(cls, skip=(), flag_values=None) -> None:
    """Define one absl flag per field of the configuration class ``cls``.

    Args:
      cls: `SearchConfig`, `TrainConfig` or another `Settings` dataclass.
      skip: field names that get no flag (the command sets them otherwise).
      flag_values: where to define them (default: ``absl.flags.FLAGS``).

    The flag type follows the field's annotation (bool, int, float, else
    string), its default and help text are the field's. The flags belong to the
    calling module, so a command's ``--help`` lists them as its own.
    """
    import sys

    from absl import flags

    caller = sys._getframe(1).f_globals.get("__name__")
    if caller == "__main__":  # ``python -m``: absl files the main module under argv[0]
        caller = sys.argv[0]
    flag_values = flag_values or flags.FLAGS
    define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float}
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        define.get(hints[field.name], flags.DEFINE_string)(
            field.name, field.default, field.metadata.get("help", field.name),
            flag_values=flag_values, module_name=caller)


def values_from_flags(cls, flag_values, skip=()) -> dict:
    """The parsed flags of the fields of ``cls`` as a dict.

    Args:
      cls: the configuration class whose fields are read.
      flag_values: the parsed ``absl.flags.FlagValues``.
      skip: field names left out; fields without a defined flag are left out as well.

    Returns:
      Field name -> the flag's value.
    """
    return {field.name: getattr(flag_values, field.name) for field in dataclasses.fields(cls)
            if field.name in flag_values and field.name not in skip}


def from_flags(cls, flag_values, **overrides):
    """A validated ``cls`` from parsed flags, with ``overrides`` replacing flag values.

    Raises:
      ValueError: a value fails its checks (the message names the flag).

    Args:
      cls: the configuration class to build (`SearchConfig`, `TrainConfig`).
      flag_values: the parsed ``absl.flags.FlagValues``; only flags of ``cls``'s fields are read.
      **overrides: field name -> value used instead of the flag's.

    Returns:
      An instance of ``cls``.
    """
    from autogan_tf import search_space as ss

    values = {**values_from_flags(cls, flag_values), **overrides}
    if "arch" in values:  # a bad architecture names its flag
        try:
            values["arch"] = str(ss.parse_arch(values["arch"]))
        except ss.ArchError as e:
            raise ss.ArchError(f"--arch: {e}") from None
    return cls(**values)
