"""Keras layers of the AutoGAN generator cell and the SNGAN discriminator.

The generator cell follows the official AutoGAN search cell op for op (NHWC here):

* first block, pre-activation:  norm(in) -> ReLU -> upsample -> conv3x3
* first block, post-activation: upsample -> conv3x3 -> norm(out) -> ReLU
  (upsample is bilinear or nearest resize x2, or a 2x2 stride-2 transposed conv)
* skip-ins: ``h += conv1x1(resize(skip_feature))`` for each selected earlier cell;
  the feature this cell hands to later cells is ``h`` AFTER its own skip-ins
  were added (the official code adds in place to the tensor it returns).
* second block: the same pre/post block without upsampling.
* shortcut: ``out += conv1x1(upsample(x))``.

`FixedCell` holds only the ops one `CellSpec` uses (the derived generator).
`SearchCell` holds every op and picks them with `tf.switch_case` on an int
tensor, so one traced function serves every architecture. Both build their
sublayers from the same table (`search_space.cell_ops`, evaluated by
`cell_op_usage`) and run the same forward code, which is what makes the
supernet -> derived weight copy exact.
"""

from __future__ import annotations

import contextlib
import random

import keras
import tensorflow as tf
from keras import layers

from autogan_tf import search_space as ss

BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1 in Keras' convention.
NORM_EPSILON = 1e-5  # PyTorch's default for BatchNorm2d and InstanceNorm2d.
SN_EPSILON = 1e-12  # PyTorch's spectral_norm eps.


def track(owner, name: str, layer):
    """Make ``layer`` a direct attribute of ``owner`` so `tf.train.Checkpoint` saves it.

    Keras 3 wraps list and dict attributes in its own tracked containers, which
    TensorFlow's object-based checkpoints do not traverse: without this, layers
    held only in a list or dict (cells, blocks, heads) would be silently missing
    from checkpoints (their trainable weights may still be reached through an
    optimizer, but BN statistics, spectral-norm vectors and EMA weights not).

    Args:
      owner: the layer or model that holds ``layer``.
      name: the attribute name, which becomes part of the checkpoint path.
      layer: the sublayer.

    Returns:
      ``layer``, so the call can sit inside a list comprehension.
    """
    setattr(owner, name, layer)
    return layer


def conv_init():
    """Xavier-uniform, as the official ``--init_type xavier_uniform`` (``Conv2d`` kernels only)."""
    return keras.initializers.GlorotUniform()


def torch_default_init():
    """PyTorch's default initialiser of a ``Linear``/``Conv2d``/``ConvTranspose2d`` weight.

    PyTorch draws it from kaiming-uniform with ``a=sqrt(5)``, i.e.
    U(+-1/sqrt(fan_in)). Keras' ``VarianceScaling(1/3, "fan_in", "uniform")``
    gives the same bound sqrt(3 * (1/3) / fan_in) for a Keras *kernel*:

    * Dense kernel ``[in, out]``: fan_in = in, as PyTorch's ``Linear``.
    * Conv2D kernel ``[kh, kw, in, out]``: fan_in = kh*kw*in, as ``Conv2d``.
    * Conv2DTranspose kernel ``[kh, kw, out, in]``: Keras takes fan_in =
      kh*kw*out, and PyTorch computes the fan_in of a ``ConvTranspose2d``
      weight ``[in, out, kh, kw]`` from its dimension 1, also kh*kw*out.

    Not for biases: on a 1-D shape Keras takes fan_in = the bias length;
    use `torch_bias_init` with the kernel's fan_in.
    """
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


def torch_bias_init(fan_in: int):
    """PyTorch's default bias initialiser: U(+-1/sqrt(fan_in)), fan_in of the layer's *weight*.

    ``fan_in``: in_features (Linear), in*kh*kw (Conv2d), out*kh*kw
    (ConvTranspose2d: PyTorch takes dimension 1 of its ``[in, out, kh, kw]``
    weight). The official code never re-initialises biases, so every bias
    of G and D has this distribution.

    Args:
      fan_in: the fan-in of the layer's weight, as above.

    Returns:
      A `keras.initializers.RandomUniform`.
    """
    bound = 1.0 / float(fan_in) ** 0.5
    return keras.initializers.RandomUniform(-bound, bound)


class TorchBatchNorm(layers.BatchNormalization):
    """Batch norm whose moving variance tracks the *unbiased* batch variance, as PyTorch's.

    Both frameworks normalise a training batch with its biased variance; PyTorch's
    ``BatchNorm2d`` updates ``running_var`` with the unbiased one (times
    n / (n - 1), n = elements per channel: batch * height * width, over all
    replicas when synchronized), Keras with the biased one. Inference-mode
    outputs (the evaluated and exported generator) depend on it.
    Masks and batch renormalisation are not supported.

    The constructor takes `keras.layers.BatchNormalization`'s arguments (``synchronized``
    included).

    ``update_moving_statistics`` (an attribute, read when a call is traced; see
    `batch_statistics_only`) set to False keeps training mode's normalisation by the
    batch statistics but leaves the moving ones untouched.
    """

    update_moving_statistics = True

    def _update_moving(self, mean, unbiased):
        if not self.update_moving_statistics:
            return
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum
                                    + unbiased * (1.0 - momentum))

    def call(self, inputs, training=None, mask=None):
        """Normalise ``inputs``; in training mode also update the moving statistics.

        Inference mode (or a frozen layer) is Keras' own batch norm.

        Args:
          inputs: the tensor to normalise (channels on ``axis``).
          training: use the batch statistics and update the moving ones.
          mask: must be None in training mode.

        Returns:
          The normalised tensor in the layer's compute dtype.

        Raises:
          NotImplementedError: a mask or ``renorm`` in training mode.
        """
        if not (training and self.trainable):
            return super().call(inputs, training=training, mask=mask)
        if mask is not None or self.renorm:
            raise NotImplementedError("TorchBatchNorm supports neither masks nor renorm")
        if not self.synchronized and inputs.shape.rank == 4 and self.axis in (-1, 3, [3]):
            return self._fused_training_call(inputs)
        x = tf.cast(inputs, tf.float32)
        mean, variance = self._moments(x, None)
        n = tf.cast(tf.size(x) // tf.shape(x)[self.axis], tf.float32)
        if self.synchronized:
            n *= tf.distribute.get_replica_context().num_replicas_in_sync
        self._update_moving(mean, variance * n / tf.maximum(n - 1.0, 1.0))
        outputs = tf.nn.batch_normalization(
            x, mean, variance, tf.convert_to_tensor(self.beta), tf.convert_to_tensor(self.gamma),
            self.epsilon)
        return tf.cast(outputs, self.compute_dtype)

    def _fused_training_call(self, inputs):
        """Training mode as one fused kernel (NHWC, one replica): `FusedBatchNormV3`.

        The kernel normalises with the biased batch variance and returns the unbiased one,
        exactly PyTorch's pair, takes bfloat16 activations with float32 statistics, and
        has a fused gradient: the unfused version spent 9 % of a supernet step in its
        reductions, casts and element-wise ops (bench/profile_step.py). Called as the raw
        op so that ``epsilon`` stays PyTorch's 1e-5 (`tf.nn.fused_batch_norm` raises it to
        1.001e-5). Synchronized batch norm keeps the generic path (statistics summed over
        replicas).
        """
        channels = inputs.shape[-1]
        gamma = (tf.convert_to_tensor(self.gamma) if self.scale
                 else tf.ones([channels], tf.float32))
        beta = (tf.convert_to_tensor(self.beta) if self.center
                else tf.zeros([channels], tf.float32))
        outputs, mean, unbiased, *_ = tf.raw_ops.FusedBatchNormV3(
            x=tf.cast(inputs, self.compute_dtype), scale=tf.cast(gamma, tf.float32),
            offset=tf.cast(beta, tf.float32), mean=tf.zeros([0]), variance=tf.zeros([0]),
            epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
            is_training=True)
        self._update_moving(mean, unbiased)
        return outputs


@contextlib.contextmanager
def batch_statistics_only(model):
    """Within the block, ``model``'s batch norms in training mode do not update their moving
    statistics (for calls traced inside it).

    Scoring one architecture of a weight-sharing supernet in inference mode normalises it
    by moving statistics that every architecture trained since has moved, and the shared
    ``ToRGB`` norm's by all of them; with this block and ``training=True`` each candidate
    is normalised by its own batch statistics, and the shared training is not disturbed
    (the BN recalibration of Guo et al., "Single Path One-Shot NAS", 2020, without its
    extra passes).

    Args:
      model: a Keras layer or model; every `TorchBatchNorm` inside it is switched.
    """
    norms = [layer for layer in model._flatten_layers(include_self=True, recursive=True)
             if isinstance(layer, TorchBatchNorm)]
    for layer in norms:
        layer.update_moving_statistics = False
    try:
        yield norms
    finally:
        for layer in norms:
            layer.update_moving_statistics = True


def _bn(name, synchronized=False):
    # synchronized: batch statistics over all replicas of a tf.distribute
    # strategy, so a multi-replica step normalises as one device would.
    return TorchBatchNorm(
        momentum=BN_MOMENTUM, epsilon=NORM_EPSILON, name=name, synchronized=synchronized,
        gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02))


def _instance_norm(channels, name):
    # One group per channel == instance norm; PyTorch's InstanceNorm2d has no affine.
    return layers.GroupNormalization(groups=channels, epsilon=NORM_EPSILON, center=False,
                                     scale=False, name=name)


def _conv(channels, kernel, name, in_channels=None):
    """A 'same' Conv2D: Xavier-uniform kernel (official ``weights_init``), PyTorch-default bias.

    ``in_channels`` (default ``channels``) sets the bias bound 1/sqrt(in*k*k).
    """
    fan_in = (in_channels or channels) * kernel * kernel
    return layers.Conv2D(channels, kernel, padding="same", kernel_initializer=conv_init(),
                         bias_initializer=torch_bias_init(fan_in), name=name)


def _deconv(channels, name):
    """A 2x2 stride-2 transposed conv with PyTorch's defaults for kernel and bias.

    The official ``weights_init`` matches class names containing 'Conv2d',
    which 'ConvTranspose2d' does not, so these keep PyTorch's initialisation:
    kernel and bias U(+-1/sqrt(out * 2 * 2)) (fan_in from weight dimension 1).
    """
    return layers.Conv2DTranspose(channels, 2, strides=2, kernel_initializer=torch_default_init(),
                                  bias_initializer=torch_bias_init(channels * 4), name=name)


def nearest_upsample(x, factor: int = 2):
    """Nearest-neighbour upsampling by an integer factor with reshape/broadcast.

    Equal to ``tf.image.resize(..., 'nearest')`` for integer factors, and unlike
    it has a gradient under XLA on CPU.

    Args:
      x: NHWC tensor with a static channel count.
      factor: the integer upsampling factor (1 returns ``x``).

    Returns:
      ``[batch, H * factor, W * factor, C]``.
    """
    if factor == 1:
        return x
    shape = tf.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    c = x.shape[-1]
    x = x[:, :, None, :, None, :]
    x = tf.broadcast_to(x, tf.stack([b, h, factor, w, factor, c]))
    return tf.reshape(x, tf.stack([b, h * factor, w * factor, c]))


def bilinear_upsample(x, factor: int = 2):
    """Bilinear resize with half-pixel centres (PyTorch ``align_corners=False``).

    Args:
      x: NHWC tensor.
      factor: the integer upsampling factor (1 returns ``x``).

    Returns:
      ``[batch, H * factor, W * factor, C]`` in the dtype of ``x``.
    """
    if factor == 1:
        return x
    size = tf.shape(x)[1:3] * factor
    return tf.cast(tf.image.resize(x, size, method="bilinear"), x.dtype)


def resize_up(x, up: int, factor: int = 2):
    """Resize by ``factor`` with the cell's resize kind (bilinear or nearest).

    Args:
      x: NHWC tensor.
      up: `search_space.UP_BILINEAR` or `search_space.UP_NEAREST` (a Python int).
      factor: the integer upsampling factor.

    Raises:
      ValueError: ``up`` is another kind (a deconv is a layer, not a resize).
    """
    if up == ss.UP_BILINEAR:
        return bilinear_upsample(x, factor)
    if up == ss.UP_NEAREST:
        return nearest_upsample(x, factor)
    raise ValueError(f"resize kind {up} is not bilinear (0) or nearest (1)")


def choose(index, branches):
    """``branches[index]()``: directly for a Python int, else with `tf.switch_case`.

    The supernet nests small switches (norm, upsampling, pre/post) instead of
    one switch over every combination: 2 + 4 x 3 small branches instead of 18
    whole blocks, which made tracing and graph optimisation of the search step
    several times faster.

    Args:
      index: a Python int or a scalar int tensor.
      branches: callables without arguments, one per index.

    Returns:
      The chosen branch's result.
    """
    if isinstance(index, int):
        return branches[index]()
    return tf.switch_case(index, branches)


def choose_named(index, choices, branches):
    """`choose` with the branches given by choice name.

    Args:
      index: a Python int or an int tensor, the choice's index in ``choices``.
      choices: the names of the choices in index order, e.g. `search_space.UP_TYPES`.
      branches: ``{name: callable}`` with one entry per name of ``choices``.

    Returns:
      The result of the chosen branch. Keeping the order in ``choices`` alone
      means the layers cannot disagree with `search_space` about what an index means.
    """
    return choose(index, [branches[name] for name in choices])


def add_if(condition, base, addend_fn):
    """``base + addend_fn()`` where ``condition`` holds (a Python bool or a bool tensor).

    Args:
      condition: a Python bool (decided now) or a scalar bool tensor (`tf.cond`).
      base: the tensor to add to.
      addend_fn: a callable without arguments computing the addend (only called, or
        traced, when needed).
    """
    if isinstance(condition, bool):
        return base + addend_fn() if condition else base
    return tf.cond(condition, lambda: base + addend_fn(), lambda: base)


def is_choice(value, choice: int):
    """``value == choice`` for a Python int (a bool) or an int tensor (a bool tensor).

    Args:
      value: a Python int or an int tensor.
      choice: the choice index to compare with.
    """
    return value == choice if isinstance(value, int) else tf.equal(value, choice)


def skip_bit(mask, shift: int):
    """Bit ``shift`` of a skip mask, for a Python int or an int tensor; True when set.

    Args:
      mask: the skip mask (Python int or int tensor).
      shift: the bit's position (0: the cell immediately before).
    """
    if isinstance(mask, int):
        return (mask >> shift) & 1 == 1
    return tf.equal(tf.bitwise.bitwise_and(tf.bitwise.right_shift(mask, shift), 1), 1)


def cell_op_usage(index, conv, norm, up, shortcut, skip_mask):
    """Which ops of cell ``index`` (`search_space.cell_ops`) an architecture uses.

    Works on Python ints (the derived cell decides what to build) and on int
    tensors (the supernet knows which variables a step used), so the two can
    never disagree.

    Args:
      index: the cell's 0-based index.
      conv, norm, up, shortcut, skip_mask: the cell's choices, Python ints or
        int tensors (`search_space.CellSpec`'s fields).

    Returns:
      ``{op name: used}`` for every op of the cell; ``used`` is a Python bool
      for int choices, a bool tensor otherwise.
    """
    choices = {"conv": conv, "norm": norm, "up": up, "shortcut": shortcut}
    usage = {}
    for op in ss.cell_ops(index):
        used = True
        for field, choice in op.requires:
            used = used & (choices[field] == choice)
        if op.skip_source is not None:
            used = used & skip_bit(skip_mask, index - 1 - op.skip_source)
        usage[op.name] = used
    return usage


def make_cell_op(op: ss.CellOp, channels: int, sync_bn: bool = False):
    """The Keras layer of one cell op, named after it.

    Args:
      op: the op's `search_space.CellOp` entry.
      channels: the cell's width; every op of a cell maps it to itself.
      sync_bn: batch statistics over all replicas (batch norm only).

    Returns:
      A batch norm, a Conv2D, a Conv2DTranspose or, for a "deconv_chain", a
      ``keras.Sequential`` of Conv2DTranspose named ``<name>_<i>``.
    """
    if op.kind == "bn":
        return _bn(op.name, sync_bn)
    if op.kind == "conv":
        return _conv(channels, op.kernel, op.name)
    if op.kind == "deconv":
        return _deconv(channels, op.name)
    chain = [_deconv(channels, f"{op.name}_{i}") for i in range(op.num_deconvs)]
    return keras.Sequential(chain, name=op.name)


class _CellOps(layers.Layer):
    """Owns a cell's sublayers by name and runs the cell for Python-int choices.

    The same forward code also runs with int-tensor choices (`SearchCell`), through `choose`
    and `add_if`.

    Args:
      index: the cell's position (0-based).
      channels: the cell's width (every op maps it to itself).
      sync_bn: batch norm over all replicas.
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, index: int, channels: int, sync_bn: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.index = index
        self.channels = channels
        self.sync_bn = sync_bn
        self.ops = {}

    # -- construction -----------------------------------------------------
    def _make_ops(self, names):
        """Create the layers of the ops ``names`` (of `search_space.cell_ops`), in name order."""
        table = ss.cell_op_table(self.index)
        for name in sorted(names):
            op = make_cell_op(table[name], self.channels, self.sync_bn)
            self.ops[name] = track(self, f"op_{name}", op)
        self._instance_norm = _instance_norm(self.channels, "instance_norm")

    def build(self, input_shape):
        """Create every variable now: none may be created inside a switch branch.

        Every op maps ``channels`` to ``channels``, and no variable depends on
        the spatial size, so all are built for any height and width.

        Args:
          input_shape: the cell input's shape (only the batch dimension is read).
        """
        shape = (input_shape[0], None, None, self.channels)
        for op in self.ops.values():
            op.build(shape)
        self._instance_norm.build(shape)
        super().build(input_shape)

    # -- forward, for Python-int or int-tensor choices -------------------------
    def _norm(self, prefix, norm, x, training):
        return choose_named(norm, ss.NORM_TYPES, {
            "none": lambda: x,
            "bn": lambda: self.ops[f"{prefix}_bn"](x, training=training),
            "in": lambda: self._instance_norm(x)})

    def _upsample(self, x, up, deconv_name, factor=2):
        """``x`` ``factor`` times larger by the cell's upsampling kind ``up``."""
        return choose_named(up, ss.UP_TYPES, {
            "bilinear": lambda: bilinear_upsample(x, factor),
            "nearest": lambda: nearest_upsample(x, factor),
            "deconv": lambda: self.ops[deconv_name](x)})

    def first_block(self, x, conv, norm, up, training):
        """The upsampling block: pre- or post-activation, per the module docstring.

        Args:
          x: the cell input, NHWC.
          conv: the conv type index (Python int or int tensor).
          norm: the norm type index.
          up: the upsampling kind index.
          training: batch norm in training mode.

        Returns:
          The feature at twice the input side.
        """
        def pre():
            h = tf.nn.relu(self._norm("pre1", norm, x, training))
            return self.ops["pre1_conv"](self._upsample(h, up, "pre1_deconv"))

        def post():
            h = self.ops["post1_conv"](self._upsample(x, up, "post1_deconv"))
            return tf.nn.relu(self._norm("post1", norm, h, training))

        return choose_named(conv, ss.CONV_TYPES, {"post": post, "pre": pre})

    def second_block(self, h, conv, norm, training):
        """The second block (no upsampling), pre- or post-activation.

        Args:
          h: the first block's output with the skip-ins added.
          conv: the conv type index.
          norm: the norm type index.
          training: batch norm in training mode.
        """
        def pre():
            return self.ops["pre2_conv"](tf.nn.relu(self._norm("pre2", norm, h, training)))

        def post():
            return tf.nn.relu(self._norm("post2", norm, self.ops["post2_conv"](h), training))

        return choose_named(conv, ss.CONV_TYPES, {"post": post, "pre": pre})

    def skip_in(self, feature, source, up):
        """An earlier cell's feature upsampled to this cell's side and through its 1x1 conv.

        Args:
          feature: the ``skip_out`` of cell ``source``.
          source: that cell's index (0-based, a Python int).
          up: the upsampling kind index (a deconv kind uses this cell's skip deconv chain).
        """
        factor = ss.skip_factor(self.index, source)
        feature = self._upsample(feature, up, ss.skip_deconv_name(factor), factor)
        return self.ops[ss.skip_conv_name(source)](feature)

    def shortcut(self, x, up):
        """The in-cell shortcut: the cell input upsampled, then a 1x1 conv.

        Args:
          x: the cell input.
          up: the upsampling kind index.
        """
        return self.ops["sc_conv"](self._upsample(x, up, "sc_deconv"))

    def forward(self, x, skip_features, conv, norm, up, shortcut, skip_mask, training):
        """``(skip_out, out)`` of the cell; the choices are Python ints or int tensors.

        Args:
          x: the cell input, NHWC with ``channels`` channels.
          skip_features: the earlier cells' ``skip_out``, in cell order.
          conv: the conv type index.
          norm: the norm type index.
          up: the upsampling kind index.
          shortcut: the shortcut choice index.
          skip_mask: the skip mask (bit 0: the previous cell).
          training: batch norm in training mode.

        Returns:
          ``(skip_out, out)``: the feature later cells take (after this cell's skip-ins)
          and the cell output, both at twice the input side.
        """
        h = self.first_block(x, conv, norm, up, training)
        for source, feature in enumerate(skip_features):
            h = add_if(skip_bit(skip_mask, self.index - 1 - source), h,
                       lambda f=feature, s=source: self.skip_in(f, s, up))
        out = self.second_block(h, conv, norm, training)
        out = add_if(is_choice(shortcut, ss.SHORTCUT_ON), out, lambda: self.shortcut(x, up))
        return h, out

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "index": self.index, "channels": self.channels,
                "sync_bn": self.sync_bn}


class FixedCell(_CellOps):
    """A generator cell with the ops of one `CellSpec` only.

    Call with ``(x, skip_features)``; returns ``(skip_out, out)`` where
    ``skip_features`` are the earlier cells' ``skip_out`` in cell order.

    Args:
      spec: the cell's `search_space.CellSpec`, or a dict of its fields (from `get_config`).
      channels: the cell's width.
      sync_bn: batch norm over all replicas.
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, spec, channels: int, sync_bn: bool = False, **kwargs):
        if isinstance(spec, dict):
            spec = ss.CellSpec(**spec)
        super().__init__(spec.index, channels, sync_bn, **kwargs)
        self.spec = spec
        usage = cell_op_usage(spec.index, spec.conv, spec.norm, spec.up, spec.shortcut,
                              spec.skip_mask)
        self._make_ops([name for name, used in usage.items() if used])

    def call(self, x, skip_features=(), training=None):
        """Run the cell.

        Args:
          x: the cell input, NHWC.
          skip_features: the earlier cells' ``skip_out``, in cell order.
          training: batch norm in training mode.

        Returns:
          ``(skip_out, out)`` (see `forward`).
        """
        s = self.spec
        return self.forward(x, skip_features, s.conv, s.norm, s.up, s.shortcut, s.skip_mask,
                            training)

    def get_config(self):
        """The constructor arguments, the spec as a dict of its fields."""
        config = super().get_config()
        config.pop("index")
        return {**config, "spec": {"index": self.spec.index, "conv": self.spec.conv,
                                   "norm": self.spec.norm, "up": self.spec.up,
                                   "shortcut": self.spec.shortcut,
                                   "skip_mask": self.spec.skip_mask}}


class SearchCell(_CellOps):
    """A generator cell holding every candidate op, chosen by an int tensor.

    ``cell_arch`` is int32 ``[5]``: ``conv, norm, up, shortcut, skip_mask``
    (skip_mask ignored for the first cell). Every op is picked with
    `tf.switch_case`/`tf.cond`, so changing the architecture never retraces.
    Ops a call did not select get zero gradients (not None); see
    `gan_trainer` for what the optimizer does with them.

    Args:
      index: the cell's position (0-based).
      channels: the cell's width.
      sync_bn: batch norm over all replicas (the supernet passes False, see
        `models.SuperGenerator`).
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, index: int, channels: int, sync_bn: bool = False, **kwargs):
        super().__init__(index, channels, sync_bn, **kwargs)
        self._make_ops(op.name for op in ss.cell_ops(index))

    def usage(self, cell_arch):
        """Bool tensors: which named ops the architecture uses.

        Args:
          cell_arch: int ``[5]``: ``conv, norm, up, shortcut, skip_mask``.

        Returns:
          ``{op name: bool tensor}`` (`cell_op_usage`).
        """
        conv, norm, up, sc, mask = (cell_arch[i] for i in range(5))
        return cell_op_usage(self.index, conv, norm, up, sc, mask)

    def call(self, x, skip_features, cell_arch, training=None):
        """Run the cell with the ops ``cell_arch`` selects.

        Args:
          x: the cell input, NHWC.
          skip_features: the earlier cells' ``skip_out``, in cell order.
          cell_arch: int ``[5]`` choices of this cell.
          training: batch norm in training mode.

        Returns:
          ``(skip_out, out)`` (see `forward`).
        """
        cell_arch = tf.cast(cell_arch, tf.int32)
        conv, norm, up, sc, mask = (cell_arch[i] for i in range(5))
        return self.forward(x, skip_features, conv, norm, up, sc, mask, training)


class ToRGB(layers.Layer):
    """BN -> ReLU -> conv3x3 to 3 channels -> tanh, the generator's output head.

    ``channels``: the input width (gf_dim); it sets the conv bias bound
    1/sqrt(channels * 9) as PyTorch's default.

    Args:
      channels: the input width, as above.
      sync_bn: batch norm over all replicas.
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, channels: int, sync_bn: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.sync_bn = sync_bn
        self.bn = _bn("bn", sync_bn)
        self.conv = _conv(3, 3, "conv", in_channels=channels)

    def build(self, input_shape):
        """Build the batch norm and the conv for ``input_shape`` (NHWC).

        Args:
          input_shape: the input's shape, channels last.
        """
        self.bn.build(input_shape)
        self.conv.build(input_shape)
        super().build(input_shape)

    def call(self, x, training=None):
        """RGB images from the last cell's output.

        Args:
          x: NHWC feature map with ``channels`` channels.
          training: batch norm in training mode.

        Returns:
          ``[batch, H, W, 3]`` in [-1, 1] (compute dtype).
        """
        return tf.tanh(self.conv(tf.nn.relu(self.bn(x, training=training))))

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "channels": self.channels, "sync_bn": self.sync_bn}


# --------------------------------------------------------------------------
# Discriminator blocks (SNGAN ResNet, as the official AutoGAN code).
# --------------------------------------------------------------------------

def l2_normalize(x, eps=SN_EPSILON):
    """``x / max(||x||, eps)``, PyTorch's ``F.normalize`` of a vector.

    Args:
      x: the vector.
      eps: the smallest norm divided by.
    """
    return x / tf.maximum(tf.norm(x), eps)


class SpectralNorm(layers.Layer):
    """Spectral normalisation by reparameterisation, as PyTorch's ``spectral_norm``.

    Wraps a ``Conv2D`` (channels_last) or ``Dense`` layer without activation and
    keeps its kernel W as the trained variable. Every forward uses W / sigma(W):

    * W is read as the matrix ``[out, in * kh * kw]`` (PyTorch's layout of
      its ``weight.view(out, -1)``), so ``u`` (``[out]``) and ``v``
      (``[in * kh * kw]``, order in, kh, kw) are PyTorch's ``weight_u`` and
      ``weight_v`` unchanged.
    * In training mode one power iteration ``v = n(W^T u), u = n(W v)``
      (n: divide by max(norm, 1e-12)) runs and is stored in ``u``/``v``;
      in inference mode the stored vectors are used as they are.
    * ``sigma = u . W v`` with ``u``, ``v`` constants: the gradient reaches W
      through sigma too (SNGAN), unlike `keras.layers.SpectralNormalization`,
      which writes W / sigma back into the kernel (a projection).

    Why: the official AutoGAN code (and SNGAN) train with this form; Adam then
    steps on the raw W, and sigma's gradient term is part of the dynamics.

    Precision: sigma, the power iteration and W / sigma are computed in
    float32 from the float32 kernel (``autocast=False``); only the normalised
    kernel and the bias are cast to the compute dtype (bfloat16 under
    ``models.set_precision``).

    tf.distribute: ``u`` and ``v`` are mirrored with aggregation
    ``only_first_replica``. Every replica holds the same W, u and v and so
    computes the same iteration; the update written is replica 0's, so the
    copies stay bit-identical whatever the reduction order.

    Args:
      layer: an unbuilt ``keras.layers.Conv2D`` or ``keras.layers.Dense``.
      power_iterations: power iterations per training-mode call (PyTorch's 1).
      eps: the normalisation's epsilon (PyTorch's 1e-12).
      **kwargs: passed to `keras.layers.Layer` (``autocast`` defaults to False).

    Raises:
      TypeError: ``layer`` is not a Conv2D or Dense (or is a Conv2DTranspose).
      ValueError: ``layer`` has an activation or is channels_first, or ``power_iterations``
        is below 1.
    """

    def __init__(self, layer, power_iterations: int = 1, eps: float = SN_EPSILON, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if not isinstance(layer, (layers.Conv2D, layers.Dense)) or isinstance(
                layer, layers.Conv2DTranspose):
            raise TypeError(f"SpectralNorm wraps Conv2D or Dense, got {type(layer).__name__}")
        if layer.activation not in (None, keras.activations.linear):
            raise ValueError("SpectralNorm: the wrapped layer must have no activation")
        if isinstance(layer, layers.Conv2D) and layer.data_format != "channels_last":
            raise ValueError("SpectralNorm: Conv2D must be channels_last")
        if power_iterations < 1:
            raise ValueError(f"power_iterations must be >= 1, got {power_iterations}")
        self.layer = layer
        self.power_iterations = int(power_iterations)
        self.eps = float(eps)

    def build(self, input_shape):
        """Build the wrapped layer (if needed) and create ``u`` and ``v`` (unit vectors).

        Args:
          input_shape: the input's shape, passed to the wrapped layer.
        """
        if not self.layer.built:
            self.layer.build(input_shape)
        shape = self.layer.kernel.shape
        out = shape[-1]
        rest = 1
        for dim in shape[:-1]:
            rest *= dim
        self.u = self.add_weight(shape=(out,), initializer=_unit_normal, trainable=False,
                                 name="u", dtype="float32", autocast=False,
                                 aggregation="only_first_replica")
        self.v = self.add_weight(shape=(rest,), initializer=_unit_normal, trainable=False,
                                 name="v", dtype="float32", autocast=False,
                                 aggregation="only_first_replica")
        super().build(input_shape)

    def _kernel_rows(self):
        """The float32 kernel as ``[kh * kw * in, out]`` (Dense: ``[in, out]``).

        This is ``W`` transposed with its rows in the kernel's own memory order, so
        reading it needs no copy: the power iteration reorders the small vector ``v``
        instead of transposing the kernel into PyTorch's layout at every call (those
        transposes and their gradients were 3 % of a search step at 8 px).
        """
        kernel = tf.cast(tf.convert_to_tensor(self.layer.kernel), tf.float32)
        return tf.reshape(kernel, [-1, kernel.shape[-1]])

    def _reorder(self, v, to_torch: bool):
        """``v`` between PyTorch's order ``(in, kh, kw)`` and the kernel's ``(kh, kw, in)``.

        Args:
          v: a vector of ``in * kh * kw`` entries.
          to_torch: from the kernel's order to PyTorch's (else the other way).
        """
        shape = self.layer.kernel.shape
        if len(shape) == 2:  # Dense: one input axis, the same order in both
            return v
        kh, kw, channels = shape[0], shape[1], shape[2]
        if to_torch:
            return tf.reshape(tf.transpose(tf.reshape(v, [kh, kw, channels]), [2, 0, 1]), [-1])
        return tf.reshape(tf.transpose(tf.reshape(v, [channels, kh, kw]), [1, 2, 0]), [-1])

    def sigma(self, training=False):
        """sigma(W) = u . W v; in training mode after ``power_iterations`` steps (stored).

        Its ops live in a "sigma" name scope (per batch, not per image: MAC
        counts leave them out).

        Args:
          training: run the power iteration and store ``u``/``v`` first.

        Returns:
          A float32 scalar tensor.
        """
        with tf.name_scope("sigma"):
            return self._sigma(training)

    def _sigma(self, training):
        rows = self._kernel_rows()  # W^T, rows in the kernel's order: W v = rows^T v
        u = tf.convert_to_tensor(self.u)
        v = tf.convert_to_tensor(self.v)
        if training:
            rows_const = tf.stop_gradient(rows)
            for _ in range(self.power_iterations):
                v = l2_normalize(self._reorder(tf.linalg.matvec(rows_const, u), True), self.eps)
                u = l2_normalize(tf.linalg.matvec(rows_const, self._reorder(v, False),
                                                  transpose_a=True), self.eps)
            self.u.assign(u)
            self.v.assign(v)
        return tf.tensordot(u, tf.linalg.matvec(rows, self._reorder(v, False), transpose_a=True), 1)

    def normalized_kernel(self, training=False):
        """W / sigma(W) in float32, in the wrapped layer's kernel shape.

        Args:
          training: run the power iteration (see `sigma`).
        """
        kernel = tf.cast(tf.convert_to_tensor(self.layer.kernel), tf.float32)
        return kernel / self.sigma(training)

    def call(self, inputs, training=None):
        """The wrapped layer's op with W / sigma(W) as its kernel, plus its bias.

        Args:
          inputs: NHWC images (Conv2D) or ``[batch, in]`` (Dense).
          training: run ``power_iterations`` power iterations first and store ``u``, ``v``.

        Returns:
          The outputs in the compute dtype.
        """
        dtype = self.compute_dtype
        inputs = tf.cast(inputs, dtype)
        kernel = tf.cast(self.normalized_kernel(bool(training)), dtype)
        if isinstance(self.layer, layers.Conv2D):
            outputs = self.layer.convolution_op(inputs, kernel)
        else:
            outputs = tf.matmul(inputs, kernel)
        if self.layer.use_bias:
            outputs = outputs + tf.cast(tf.convert_to_tensor(self.layer.bias), dtype)
        return outputs

    def compute_output_shape(self, input_shape):
        """The wrapped layer's output shape for ``input_shape``.

        Args:
          input_shape: the input's shape.
        """
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        """The constructor arguments, the wrapped layer serialised."""
        return {**super().get_config(), "layer": keras.saving.serialize_keras_object(self.layer),
                "power_iterations": self.power_iterations, "eps": self.eps}

    @classmethod
    def from_config(cls, config):
        """A `SpectralNorm` from `get_config`'s dict, the wrapped layer deserialised.

        Args:
          config: the dict `get_config` returned.
        """
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)


def _unit_normal(shape, dtype=None):
    """A N(0, 1) vector scaled to unit length (PyTorch's initial ``u`` and ``v``).

    The seed comes from Python's `random`, as Keras's own unseeded initializers take
    theirs: a model built under `seeds.python_random` gets the same vectors in
    every process. (Keras's global seed generator would depend on how many draws the
    process made before, so a search resumed after a restart re-initialised its
    discriminator differently from an uninterrupted one.)
    """
    x = keras.random.normal(shape, dtype="float32", seed=random.randint(1, 2 ** 31 - 1))
    return tf.cast(l2_normalize(x), dtype or "float32")


def _sn(layer, name):
    return SpectralNorm(layer, power_iterations=1, name=name)


def _sn_conv(channels, kernel, name, in_channels=None):
    return _sn(_conv(channels, kernel, f"{name}_inner", in_channels=in_channels), name)


def downsample(x):
    """2x2 average pooling.

    Args:
      x: NHWC tensor.
    """
    return tf.nn.avg_pool2d(x, 2, 2, "VALID")


class OptimizedDisBlock(layers.Layer):
    """The first D block: conv -> ReLU -> conv -> pool, plus pool -> 1x1 conv shortcut.

    ``in_channels``: the image channels (3); sets the first convs' bias bounds.

    Args:
      channels: the block's output width (df_dim).
      in_channels: as above.
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, channels: int, in_channels: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.in_channels = in_channels
        self.c1 = _sn_conv(channels, 3, "c1", in_channels=in_channels)
        self.c2 = _sn_conv(channels, 3, "c2")
        self.c_sc = _sn_conv(channels, 1, "c_sc", in_channels=in_channels)

    def build(self, input_shape):
        """Build the three spectrally normalised convs.

        Args:
          input_shape: the image batch's shape, NHWC.
        """
        self.c1.build(input_shape)
        self.c2.build(tuple(input_shape[:-1]) + (self.channels,))
        self.c_sc.build(input_shape)
        super().build(input_shape)

    def call(self, x, training=None):
        """The block's output at half the input side.

        Args:
          x: images ``[batch, H, W, in_channels]``.
          training: spectral norm's power iteration runs.

        Returns:
          ``[batch, H / 2, W / 2, channels]``.
        """
        h = downsample(self.c2(tf.nn.relu(self.c1(x, training=training)), training=training))
        return h + self.c_sc(downsample(x), training=training)

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "channels": self.channels,
                "in_channels": self.in_channels}


class DisBlock(layers.Layer):
    """ReLU -> conv -> ReLU -> conv [-> pool], plus a learnable shortcut when downsampling.

    Without downsampling the shortcut is the identity.

    Args:
      channels: the block's width (input and output).
      downsample: halve the side with 2x2 average pooling.
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, channels: int, downsample: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.downsample = downsample
        self.c1 = _sn_conv(channels, 3, "c1")
        self.c2 = _sn_conv(channels, 3, "c2")
        # In AutoGAN's D all blocks have the same width, so the shortcut is learnable
        # exactly when the block downsamples.
        self.c_sc = _sn_conv(channels, 1, "c_sc") if downsample else None

    def build(self, input_shape):
        """Build the convs (and the shortcut conv when downsampling).

        Args:
          input_shape: the input's shape, NHWC with ``channels`` channels.
        """
        self.c1.build(input_shape)
        self.c2.build(input_shape)
        if self.c_sc is not None:
            self.c_sc.build(input_shape)
        super().build(input_shape)

    def call(self, x, training=None):
        """The block's output.

        Args:
          x: NHWC feature map with ``channels`` channels.
          training: spectral norm's power iteration runs.

        Returns:
          The same shape as ``x``, or half its side when downsampling.
        """
        h = self.c1(tf.nn.relu(x), training=training)
        h = self.c2(tf.nn.relu(h), training=training)
        if not self.downsample:
            return h + x
        return downsample(h) + downsample(self.c_sc(x, training=training))

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "channels": self.channels,
                "downsample": self.downsample}


class MinibatchStd(layers.Layer):
    """Appends how varied the batch is as one more feature map (Karras et al., ICLR 2018).

    The batch is split into groups of ``group_size`` images; for every group, the standard
    deviation of each feature over the group's members is averaged into one number, which
    becomes an extra channel of each member. A discriminator that sees the spread of a batch
    can tell a generator that draws one kind of image from the data, which is what keeps a
    short GAN run from collapsing onto a few classes. Not part of AutoGAN: off by default.

    Args:
      group_size: images per group (2 or more); a batch smaller than it is one group, a
        larger batch must be a multiple of it.
      **kwargs: passed to `keras.layers.Layer`.

    Raises:
      ValueError: ``group_size`` below 2.
    """

    def __init__(self, group_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        if group_size < 2:
            raise ValueError(f"group_size must be at least 2, got {group_size}")
        self.group_size = group_size

    def call(self, x):
        """``x`` with the spread of its group as a last channel.

        Args:
          x: NHWC features; the batch is a multiple of ``group_size`` or smaller than it.

        Returns:
          ``[batch, H, W, C + 1]`` in ``x``'s dtype.
        """
        shape = tf.shape(x)
        batch = shape[0]
        group = tf.minimum(self.group_size, batch)
        tf.debugging.assert_equal(
            batch % group, 0, message=f"MinibatchStd: the batch must be a multiple of "
                                      f"group_size={self.group_size}")
        # Image i is member i // (batch // group) of group i % (batch // group): strided groups.
        y = tf.reshape(tf.cast(x, tf.float32), tf.concat([[group, -1], shape[1:]], 0))
        y = y - tf.reduce_mean(y, axis=0, keepdims=True)
        y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)
        y = tf.reduce_mean(y, axis=[1, 2, 3])
        y = tf.tile(y, [group])
        y = tf.broadcast_to(y[:, None, None, None], tf.concat([shape[:3], [1]], 0))
        return tf.concat([x, tf.cast(y, x.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        """The input's shape with one more channel."""
        return (*input_shape[:-1], None if input_shape[-1] is None else input_shape[-1] + 1)

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "group_size": self.group_size}
