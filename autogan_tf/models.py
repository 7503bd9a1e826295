"""Generators and discriminator of AutoGAN as Keras 3 models.

* `DerivedGenerator(arch)`: only the ops one architecture uses (final training).
* `SuperGenerator`: the weight-sharing supernet of the search; the architecture
  is an int tensor, the stage (number of active cells) a Python int, because
  it changes the output resolution: one trace per stage serves every architecture.
* `Discriminator`: the SNGAN ResNet discriminator of the official code; it
  grows with the stage during search (``stage=None`` uses every block).
* `copy_supernet_weights`: supernet -> derived generator, exact.
* `count_params`, `generator_macs`, `discriminator_macs`: sizes and costs.
* `set_precision`: float32, or bfloat16 compute with float32 variables.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from autogan_tf import conditional
from autogan_tf import config as config_lib
from autogan_tf import keras_compat
from autogan_tf import search_space as ss
from autogan_tf.cells import FixedCell, SearchCell, ToRGB, cell_op_usage
from autogan_tf.discriminator_blocks import DisBlock, MinibatchStd, OptimizedDisBlock
from autogan_tf.keras_compat import track
from autogan_tf.spectral_norm import SpectralNorm, sn_conv, spectrally_normalized
from autogan_tf.torch_layers import torch_bias_init, torch_default_init

_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def check_precision(precision: str) -> str:
    """``precision`` if it is one of `PRECISIONS` (``"auto"`` resolved by
    `precision.choose`); else a ValueError naming --precision.

    Args:
      precision: ``"float32"``, ``"bfloat16"`` or ``"auto"``.

    Raises:
      ValueError: any other value.
    """
    config_lib.check_values(precision=precision)
    from autogan_tf import precision as precision_lib

    return precision_lib.choose(precision).precision


def set_precision(model: keras.Model, precision: str):
    """Run ``model`` in float32, or in bfloat16 with float32 variables (Keras mixed_bfloat16).

    Under "bfloat16" the convolutions, dense layers and activations compute in
    bfloat16 (about twice the float32 rate on CPUs with AVX512-BF16), while
    the weights, their gradients and the optimizer stay float32. Kept in
    float32 on purpose:

    * batch and instance norm statistics (Keras normalises in float32);
    * spectral norm: `spectral_norm.SpectralNorm` does not autocast, so the power
      iteration, sigma and W / sigma are computed from the float32 kernel
      and only W / sigma is cast to bfloat16;
    * the model outputs: generator images and discriminator logits are
      float32 (the discriminator sums its features and applies its last
      linear layer in float32), so losses are computed in float32.

    Variables are not recreated (mixed_bfloat16 keeps them float32), so this
    can be applied to a built model, and back.

    Args:
      model: a generator or discriminator of this module (its ``FLOAT32_HEADS`` stay
        float32).
      precision: ``"float32"`` or ``"bfloat16"``.

    Returns:
      ``model``, with its ``precision`` attribute set.

    Raises:
      ValueError: an unknown ``precision``.
    """
    precision = check_precision(precision)  # "auto" resolved: the model records the result
    policy = _POLICIES[precision]
    heads = [getattr(model, name) for name in getattr(model, "FLOAT32_HEADS", ())
             if hasattr(model, name)]  # a conditional D's projection only exists in one
    keep = {id(layer) for head in heads for layer in keras_compat.sublayers(head)}
    for layer in keras_compat.sublayers(model):
        layer.dtype_policy = "float32" if id(layer) in keep else policy
        if isinstance(layer, SpectralNorm):
            layer.autocast = False  # read the kernel as float32 in the power iteration
    model.precision = precision
    return model


def _l1(bottom_width, gf_dim, fan_in):
    """The stem Linear: PyTorch's default kernel and bias, U(+-1/sqrt(fan_in)).

    ``fan_in`` is ``latent_dim``, plus the class embedding's length in a conditional model.
    """
    return layers.Dense(bottom_width ** 2 * gf_dim, kernel_initializer=torch_default_init(),
                        bias_initializer=torch_bias_init(fan_in), name="l1")


class _GeneratorBase(keras.Model):
    """What the two generators share: the linear stem, the cells' building and the RGB head.

    Args:
      gf_dim: channels of every feature map.
      latent_dim: size of ``z``.
      bottom_width: side of the stem's feature map.
      num_cells: cells of the generator.
      precision: ``"float32"`` or ``"bfloat16"`` (`set_precision`).
      sync_bn: synchronise the output head's batch norm across replicas.
      num_classes: 0 (unconditional), or the classes of a class-conditional generator: a
        learned class embedding of ``latent_dim`` values is joined to ``z`` before the stem,
        and every batch or instance norm scales and shifts per class (`conditional`).
      **kwargs: passed to `keras.Model`.
    """

    def __init__(self, gf_dim, latent_dim, bottom_width, num_cells, precision="float32",
                 sync_bn=False, num_classes=0, **kwargs):
        super().__init__(**kwargs)
        self.precision = check_precision(precision)
        self.sync_bn = bool(sync_bn)
        config_lib.check_values(gf_dim=gf_dim, latent_dim=latent_dim, bottom_width=bottom_width,
                                num_cells=num_cells)
        self.gf_dim = gf_dim
        self.latent_dim = latent_dim
        self.bottom_width = bottom_width
        self.num_cells = num_cells
        self.num_classes = conditional.check_num_classes(num_classes)
        self.input_spec = layers.InputSpec(ndim=2, axes={-1: latent_dim})  # z
        if self.num_classes:
            self.embed = conditional.ClassEmbedding(self.num_classes, latent_dim, name="embed")
        self.l1 = _l1(bottom_width, gf_dim, latent_dim * (2 if self.num_classes else 1))
        self.to_rgb = ToRGB(gf_dim, self.sync_bn, self.num_classes, name="to_rgb")

    def build(self, input_shape=None):
        """Create every weight now, each cell at its input side, so checkpoints can be restored
        before the first call.

        Args:
          input_shape: ignored (the shapes follow from the constructor's arguments).
        """
        if self.num_classes:
            self.embed.build()
        self.l1.build((None, self.latent_dim * (2 if self.num_classes else 1)))
        for i, cell in enumerate(self.cells):
            side = self.bottom_width * 2 ** i
            cell.build((None, side, side, self.gf_dim))
        self.to_rgb.build((None, None, None, self.gf_dim))
        self.built = True

    def _finish_init(self):
        self.build()
        if self.precision != "float32":
            set_precision(self, self.precision)

    def check_labels(self, labels, name="labels"):
        """None for an unconditional generator (which refuses labels); else ``labels`` checked
        by `conditional.check_labels` (one int per image, each in ``0..num_classes - 1``).

        Args:
          labels: the call's labels.
          name: how an error names them.

        Raises:
          errors.UserError: labels given to an unconditional generator, missing for a
            conditional one, or out of range.
        """
        return conditional.model_labels(labels, self.num_classes, "generator", name)

    def _stem(self, z, labels=None):
        if self.num_classes:
            z = self.embed(z, labels)
        h = self.l1(z)
        return tf.reshape(h, [-1, self.bottom_width, self.bottom_width, self.gf_dim])

    def _head(self, h, training, labels):
        """Images in float32 whatever the compute precision."""
        return tf.cast(self.to_rgb(h, training=training, labels=labels), tf.float32)

    @property
    def image_size(self) -> int:
        """Side of the generated images with every cell active."""
        return ss.output_size(self.bottom_width, self.num_cells - 1)

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {"gf_dim": self.gf_dim, "latent_dim": self.latent_dim,
                "bottom_width": self.bottom_width, "precision": self.precision,
                "sync_bn": self.sync_bn, "num_classes": self.num_classes,
                **super().get_config()}


class DerivedGenerator(_GeneratorBase):
    """The generator of one architecture: Linear(z) -> cells -> BN, ReLU, conv3x3, tanh.

    Only the ops ``arch`` uses are created, named as in the supernet's cells, so
    `copy_supernet_weights` can copy them by name.

    Args:
      arch: anything `search_space.Arch.parse` reads.
      gf_dim: channels of every feature map (the paper: 256).
      latent_dim: size of ``z``.
      bottom_width: side of the stem's feature map (4 for 32x32 images).
      precision: ``"float32"`` or ``"bfloat16"``.
      sync_bn: batch norm over the global batch across replicas.
      num_classes: 0, or the classes of a class-conditional generator (`_GeneratorBase`).
      **kwargs: passed to `keras.Model`.

    Raises:
      search_space.ArchError: ``arch`` is not a valid architecture.
    """

    def __init__(self, arch, gf_dim: int = 256, latent_dim: int = 128, bottom_width: int = 4,
                 precision: str = "float32", sync_bn: bool = False, num_classes: int = 0,
                 **kwargs):
        arch = ss.Arch.parse(arch)
        super().__init__(gf_dim, latent_dim, bottom_width, arch.num_cells, precision, sync_bn,
                         num_classes, **kwargs)
        self.arch = arch
        self.cells = [track(self, f"cell{spec.index + 1}",
                            FixedCell(spec, gf_dim, sync_bn, self.num_classes,
                                      name=f"cell{spec.index + 1}"))
                      for spec in arch.cells]
        self._finish_init()

    def call(self, z, training=None, labels=None):
        """Images for noise ``z`` (of classes ``labels`` in a conditional generator).

        Args:
          z: float ``[batch, latent_dim]``.
          training: batch norm in training mode.
          labels: int ``[batch]`` classes for a conditional generator; None otherwise.

        Returns:
          float32 images ``[batch, image_size, image_size, 3]`` in [-1, 1].

        Raises:
          errors.UserError: labels missing, out of range or not wanted (`check_labels`).
        """
        labels = self.check_labels(labels)
        h = self._stem(z, labels)
        skips = []
        for cell in self.cells:
            skip, h = cell(h, skips, training=training, labels=labels)
            skips.append(skip)
        return self._head(h, training, labels)

    def get_config(self):
        """The constructor arguments, the architecture as its vector string."""
        return {**super().get_config(), "arch": str(self.arch)}


class SuperGenerator(_GeneratorBase):
    """Weight-sharing supernet: every op of every cell, chosen by an int arch tensor.

    ``call(z, arch, stage)``: ``arch`` int ``[vector_length(num_cells)]`` (cells
    past ``stage`` are ignored, pad them with zeros); ``stage`` a Python int.

    Args:
      gf_dim: channels of every feature map.
      latent_dim: size of ``z``.
      bottom_width: side of the stem's feature map.
      num_cells: cells of a full architecture.
      precision: ``"float32"`` or ``"bfloat16"``.
      sync_bn: synchronise the output head's batch norm (the cells' cannot be, see below).
      num_classes: 0, or the classes of a class-conditional supernet (`_GeneratorBase`).
      **kwargs: passed to `keras.Model`.
    """

    def __init__(self, gf_dim: int = 128, latent_dim: int = 128, bottom_width: int = 4,
                 num_cells: int = 3, precision: str = "float32", sync_bn: bool = False,
                 num_classes: int = 0, **kwargs):
        super().__init__(gf_dim, latent_dim, bottom_width, num_cells, precision, sync_bn,
                         num_classes, **kwargs)
        # sync_bn reaches the output head only: a cross-replica all-reduce cannot
        # run inside the cells' switch ops (TensorFlow refuses a merge_call in
        # control flow), so cell BN uses per-replica statistics, as the official
        # search under nn.DataParallel does.
        self.cells = [track(self, f"cell{i + 1}",
                            SearchCell(i, gf_dim, False, self.num_classes,
                                       name=f"cell{i + 1}"))
                      for i in range(num_cells)]
        self._finish_init()

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "num_cells": self.num_cells}

    def cell_arch(self, arch, index):
        """The 5 ints of cell ``index`` (a zero skip mask for the first cell).

        Args:
          arch: the architecture vector (a tensor).
          index: the cell (0-based, a Python int).

        Returns:
          An int32 tensor ``[5]``: ``C N U SC mask``.
        """
        cell = tf.cast(arch, tf.int32)[ss.cell_vector_slice(index)]
        if index == 0:  # no earlier cell to skip from
            cell = tf.concat([cell, tf.zeros([1], tf.int32)], 0)
        return cell

    def call(self, z, arch, stage=None, training=None, labels=None):
        """Images of architecture ``arch`` with cells ``0..stage`` active.

        Args:
          z: float ``[batch, latent_dim]``.
          arch: int ``[vector_length(num_cells)]``, zero-padded past ``stage``.
          stage: the last active cell, a Python int; None for all cells.
          training: batch norm in training mode.
          labels: int ``[batch]`` classes for a conditional supernet; None otherwise.

        Returns:
          float32 images ``[batch, ss.output_size(bottom_width, stage), ..., 3]`` in [-1, 1].

        Raises:
          ValueError: ``stage`` is not an int in ``0..num_cells - 1``.
          errors.UserError: labels missing, out of range or not wanted (`check_labels`).
        """
        stage = ss.check_stage(stage, self.num_cells)
        labels = self.check_labels(labels)
        h = self._stem(z, labels)
        skips = []
        for i in range(stage + 1):
            skip, h = self.cells[i](h, skips, self.cell_arch(arch, i), training=training,
                                    labels=labels)
            skips.append(skip)
        return self._head(h, training, labels)

    def variable_usage(self, arch, stage=None):
        """``[(variable, used)]`` for every trainable variable; ``used`` a bool tensor.

        A variable is used when the architecture selects its op and its cell is
        active at ``stage``. The stem and the output head are always used.

        `optimizers.MaskedAdam` uses the flags to leave unused ops untouched.

        Args:
          arch: int architecture vector (a tensor).
          stage: the last active cell; None for all.

        Raises:
          ValueError: ``stage`` out of range.
        """
        stage = ss.check_stage(stage, self.num_cells)
        always = tf.constant(True)
        stem = self.l1.trainable_variables + self.to_rgb.trainable_variables
        if self.num_classes:
            stem = self.embed.trainable_variables + stem
        pairs = [(v, always) for v in stem]
        for i, cell in enumerate(self.cells):
            usage = cell.usage(self.cell_arch(arch, i)) if i <= stage else {}
            for name, op in cell.ops.items():
                used = tf.convert_to_tensor(usage.get(name, False))
                pairs.extend((v, used) for v in op.trainable_variables)
        return pairs


class Discriminator(keras.Model):
    """SNGAN ResNet discriminator with spectral norm, as AutoGAN uses.

    Blocks: optimized block (down), block (down), then plain blocks; the last
    block always runs, followed by ReLU, global sum pooling and a bias-free linear.
    During search the number of leading blocks grows with the stage, as the
    official search does (stage s uses the first s + 1 of ``num_cells`` blocks).

    Args:
      df_dim: channels of every block (the paper: 128).
      num_cells: the generator's cells; one growing block per cell.
      precision: ``"float32"`` or ``"bfloat16"``.
      minibatch_std: 0 (AutoGAN's D), or a group size: before the last block, a
        `discriminator_blocks.MinibatchStd` channel and a spectral-norm 3x3 conv back to ``df_dim``
        channels let D see how varied a batch is (against mode collapse in short runs).
      num_classes: 0 (unconditional), or the classes of a projection discriminator: the
        inner product of a learned, spectrally normalised class embedding with the pooled
        features is added to the logit (Miyato & Koyama 2018; `conditional.projection`).
      **kwargs: passed to `keras.Model`.

    Raises:
      ValueError: a bad ``df_dim``, ``precision``, ``minibatch_std`` or ``num_classes``.
    """

    FLOAT32_HEADS = ("l5", "projection")  # see set_precision

    def __init__(self, df_dim: int = 128, num_cells: int = 3, precision: str = "float32",
                 minibatch_std: int = 0, num_classes: int = 0, **kwargs):
        super().__init__(**kwargs)
        config_lib.check_values(df_dim=df_dim, d_minibatch_std=minibatch_std)
        self.input_spec = layers.InputSpec(ndim=4, axes={-1: 3})  # RGB images
        self.df_dim = df_dim
        self.precision = check_precision(precision)
        self.num_cells = num_cells
        self.minibatch_std = minibatch_std
        self.num_classes = conditional.check_num_classes(num_classes)
        if self.num_classes:
            self.projection = conditional.projection(self.num_classes, df_dim)
        if minibatch_std:
            self.batch_std = MinibatchStd(minibatch_std, name="batch_std")
            # Bias bound 1/sqrt(df_dim * 9), as D's other convs (not (df_dim + 1) * 9: the
            # one extra input channel changes it by 1.5 %; the quick start was tuned with this).
            self.batch_std_conv = sn_conv(df_dim, 3, "batch_std_conv")
        self.growing = [track(self, "block1", OptimizedDisBlock(df_dim, name="block1"))]
        for i in range(1, num_cells):
            self.growing.append(track(self, f"block{i + 1}", DisBlock(
                df_dim, downsample=(i == 1), name=f"block{i + 1}")))
        self.final_block = DisBlock(df_dim, downsample=False, name=f"block{num_cells + 1}")
        self.l5 = spectrally_normalized(layers.Dense(1, use_bias=False, kernel_initializer=torch_default_init(),
                                   name="l5_inner"), "l5")
        self.build()
        if precision != "float32":
            set_precision(self, precision)

    def build(self, input_shape=None):
        """Create every block's weights now (any image size), so checkpoints restore early.

        Args:
          input_shape: ignored.
        """
        self.growing[0].build((None, None, None, 3))
        for block in self.growing[1:] + [self.final_block]:
            block.build((None, None, None, self.df_dim))
        if self.minibatch_std:
            self.batch_std_conv.build((None, None, None, self.df_dim + 1))
        self.l5.build((None, self.df_dim))
        if self.num_classes:
            self.projection.build((None, self.df_dim))
        self.built = True

    def call(self, x, stage=None, training=None, labels=None):
        """Logits for images ``x`` (said to be of classes ``labels``, for a conditional D).

        Args:
          x: images ``[batch, H, W, 3]`` in [-1, 1].
          stage: how many growing blocks run (``stage + 1``); None for all.
          training: training mode (spectral norm updates its power iteration).
          labels: int ``[batch]`` classes for a projection discriminator; None otherwise.

        Returns:
          float32 logits ``[batch, 1]``.

        Raises:
          ValueError: ``stage`` is not an int in ``0..num_cells - 1``.
          errors.UserError: labels missing, out of range or not wanted.
        """
        stage = ss.check_stage(stage, self.num_cells)
        labels = conditional.model_labels(labels, self.num_classes, "discriminator")
        h = x
        for block in self.growing[:stage + 1]:
            h = block(h, training=training)
        if self.minibatch_std:
            h = self.batch_std_conv(self.batch_std(h), training=training)
        h = tf.nn.relu(self.final_block(h, training=training))
        h = tf.reduce_sum(tf.cast(h, tf.float32), axis=[1, 2])
        logits = self.l5(h, training=training)
        if self.num_classes:
            logits += conditional.projection_term(self.projection, h, labels, training)
        return logits

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "df_dim": self.df_dim, "num_cells": self.num_cells,
                "precision": self.precision, "minibatch_std": self.minibatch_std,
                "num_classes": self.num_classes}


def copy_supernet_weights(supernet: SuperGenerator, derived: DerivedGenerator):
    """Copy the weights of the ops ``derived`` uses from ``supernet`` (incl. BN statistics).

    The derived generator's ops carry the same names as the supernet cell's, so each weight
    is copied by name, exactly.

    Args:
      supernet: the trained `SuperGenerator`.
      derived: a `DerivedGenerator` of the same widths, with at most as many cells.

    Raises:
      ValueError: the widths or the class counts differ, or ``derived`` has more cells.
    """
    if (supernet.gf_dim, supernet.latent_dim, supernet.bottom_width, supernet.num_classes) != (
            derived.gf_dim, derived.latent_dim, derived.bottom_width, derived.num_classes):
        raise ValueError("supernet and derived generator differ in gf_dim/latent_dim/"
                         "bottom_width/num_classes")
    if derived.num_cells > supernet.num_cells:
        raise ValueError(f"derived generator has {derived.num_cells} cells, the supernet only "
                         f"{supernet.num_cells}")
    if supernet.num_classes:
        derived.embed.set_weights(supernet.embed.get_weights())
    derived.l1.set_weights(supernet.l1.get_weights())
    derived.to_rgb.set_weights(supernet.to_rgb.get_weights())
    for fixed, search in zip(derived.cells, supernet.cells):
        for name, op in fixed.ops.items():
            op.set_weights(search.ops[name].get_weights())


def derive_generator(supernet: SuperGenerator, arch) -> DerivedGenerator:
    """A `DerivedGenerator` for ``arch`` carrying the supernet's weights.

    Args:
      supernet: the `SuperGenerator` to take the weights from.
      arch: anything `search_space.Arch.parse` reads.

    Raises:
      search_space.ArchError: ``arch`` is invalid.
      ValueError: ``arch`` has more cells than the supernet.
    """
    derived = DerivedGenerator(arch, supernet.gf_dim, supernet.latent_dim, supernet.bottom_width,
                               num_classes=supernet.num_classes)
    copy_supernet_weights(supernet, derived)
    return derived


def count_params(model: keras.Model) -> int:
    """Trainable parameters (spectral-norm vectors and BN statistics excluded).

    Args:
      model: a built Keras model.
    """
    return int(sum(int(tf.size(v)) for v in model.trainable_variables))


def cell_op_macs(op: ss.CellOp, out_side: int, channels: int) -> int:
    """Multiply-accumulates of one cell op per image.

    Args:
      op: the op's `search_space.CellOp` entry.
      out_side: the cell's output side; every conv of a cell runs at it, and
        a deconv's last step ends at it.
      channels: the cell's width (every op maps ``channels`` to ``channels``).

    Returns:
      ``side^2 * kernel^2 * channels^2`` for a conv; for a deconv,
      ``side^2 * channels^2`` for each of its 2x2 stride-2 steps (4 taps per
      input pixel, one per output pixel), ``side`` being the step's output
      side; 0 for batch norm.
    """
    if op.kind == "conv":
        return out_side * out_side * op.kernel * op.kernel * channels * channels
    total, side = 0, out_side
    for _ in range(op.num_deconvs):
        total += side * side * channels * channels
        side //= 2
    return total


def generator_macs(arch, gf_dim: int = 256, latent_dim: int = 128, bottom_width: int = 4) -> int:
    """Multiply-accumulates of one forward pass of the derived generator, per image.

    Counts the dense, convolution and transposed-convolution layers (norms,
    activations, resizes and additions are a fraction of a percent).

    Args:
      arch: anything `search_space.Arch.parse` reads.
      gf_dim, latent_dim, bottom_width: the generator's width, latent size and
        stem side, as `DerivedGenerator` takes them.

    Returns:
      The count as a Python int.
    """
    arch = ss.Arch.parse(arch)
    c = gf_dim
    total = latent_dim * bottom_width ** 2 * c
    side = bottom_width
    for spec in arch.cells:
        out = 2 * side
        table = ss.cell_op_table(spec.index)
        usage = cell_op_usage(spec.index, spec.conv, spec.norm, spec.up, spec.shortcut,
                              spec.skip_mask)
        total += sum(cell_op_macs(table[name], out, c) for name, used in usage.items() if used)
        side = out
    total += side * side * 9 * c * 3
    return total


def discriminator_macs(df_dim: int = 128, image_size: int = 32, num_cells: int = 3,
                       stage: int | None = None) -> int:
    """Multiply-accumulates of one discriminator forward pass, per image.

    Counts the convolutions and the last linear layer, as `generator_macs` does.

    Args:
      df_dim: the discriminator's width.
      image_size: side of the input images.
      num_cells: the generator's cells (growing blocks).
      stage: active growing blocks minus one; None for all.

    Returns:
      The count as a Python int.
    """
    stage = num_cells - 1 if stage is None else stage
    d, s = df_dim, image_size
    total = s * s * 9 * 3 * d + s * s * 9 * d * d + (s // 2) ** 2 * 3 * d  # block 1
    s //= 2
    for i in range(1, stage + 1):  # grown blocks; the second one downsamples
        total += 2 * s * s * 9 * d * d
        if i == 1:
            total += s * s * d * d
            s //= 2
    total += 2 * s * s * 9 * d * d  # final block
    return total + d


def summarize(arch, gf_dim: int = 256, df_dim: int = 128, latent_dim: int = 128,
              bottom_width: int = 4) -> dict:
    """Size and forward cost of a derived generator and its discriminator (``autogan-summary``).

    Args:
      arch: the generator's architecture (alias, vector or `search_space.Arch`).
      gf_dim, df_dim: generator and discriminator widths (the paper's models: 256, 128).
      latent_dim, bottom_width: size of z and side of the first feature map.

    Returns:
      ``arch`` (string), ``image_size``, ``g_params``/``d_params``, and per image
      ``g_gmacs``/``d_gmacs`` and ``g_gflops``/``d_gflops`` (FLOPs = 2 x MACs; the
      paper's "GFLOPs" are GMACs).
    """
    arch = ss.parse_arch(arch)
    g = DerivedGenerator(arch, gf_dim=gf_dim, latent_dim=latent_dim, bottom_width=bottom_width)
    d = Discriminator(df_dim, num_cells=arch.num_cells)
    g_macs = generator_macs(arch, gf_dim, latent_dim, bottom_width)
    d_macs = discriminator_macs(df_dim, g.image_size, arch.num_cells)
    return {
        "arch": str(arch), "image_size": g.image_size,
        "g_params": count_params(g), "d_params": count_params(d),
        "g_gflops": 2 * g_macs / 1e9, "d_gflops": 2 * d_macs / 1e9,
        "g_gmacs": g_macs / 1e9, "d_gmacs": d_macs / 1e9,
    }
