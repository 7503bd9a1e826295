"""The AutoGAN generator cell as Keras layers, and the generator's output head.

The cell follows the official AutoGAN search cell op for op (NHWC here):

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

import keras
import tensorflow as tf
from keras import layers

from autogan_tf import conditional
from autogan_tf import search_space as ss
from autogan_tf import torch_layers
from autogan_tf.keras_compat import track


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


def cell_op_usage(index, conv, norm, up, shortcut, skip_mask, conditional=False):
    """Which ops of cell ``index`` (`search_space.cell_ops`) an architecture uses.

    Works on Python ints (the derived cell decides what to build) and on int
    tensors (the supernet knows which variables a step used), so the two can
    never disagree.

    Args:
      index: the cell's 0-based index.
      conv, norm, up, shortcut, skip_mask: the cell's choices, Python ints or
        int tensors (`search_space.CellSpec`'s fields).
      conditional: the ops of a class-conditional cell.

    Returns:
      ``{op name: used}`` for every op of the cell; ``used`` is a Python bool
      for int choices, a bool tensor otherwise.
    """
    choices = {"conv": conv, "norm": norm, "up": up, "shortcut": shortcut}
    usage = {}
    for op in ss.cell_ops(index, bool(conditional)):
        used = True
        for field, choice in op.requires:
            used = used & (choices[field] == choice)
        if op.skip_source is not None:
            used = used & skip_bit(skip_mask, index - 1 - op.skip_source)
        usage[op.name] = used
    return usage


def make_cell_op(op: ss.CellOp, channels: int, sync_bn: bool = False, num_classes: int = 0):
    """The Keras layer of one cell op, named after it.

    Args:
      op: the op's `search_space.CellOp` entry.
      channels: the cell's width; every op of a cell maps it to itself.
      sync_bn: batch statistics over all replicas (batch norm only).
      num_classes: 0, or the classes of a class-conditional cell (its batch norms lose their
        shared scale and shift; its class affines get one per class).

    Returns:
      A batch norm, a Conv2D, a Conv2DTranspose, a `conditional.ClassAffine` or, for a
      "deconv_chain", a ``keras.Sequential`` of Conv2DTranspose named ``<name>_<i>``.
    """
    if op.kind == "bn":
        return torch_layers.batch_norm(op.name, sync_bn, affine=not num_classes)
    if op.kind == "class_affine":
        return conditional.ClassAffine(num_classes, channels, name=op.name)
    if op.kind == "conv":
        return torch_layers.conv(channels, op.kernel, op.name)
    if op.kind == "deconv":
        return torch_layers.deconv(channels, op.name)
    chain = [torch_layers.deconv(channels, f"{op.name}_{i}") for i in range(op.num_deconvs)]
    return keras.Sequential(chain, name=op.name)


class _CellOps(layers.Layer):
    """Owns a cell's sublayers by name and runs the cell for Python-int choices.

    The same forward code also runs with int-tensor choices (`SearchCell`), through `choose`
    and `add_if`.

    Args:
      index: the cell's position (0-based).
      channels: the cell's width (every op maps it to itself).
      sync_bn: batch norm over all replicas.
      num_classes: 0, or the classes of a class-conditional cell: each batch and instance
        norm is then followed by a per-class scale and shift, and every call takes labels.
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, index: int, channels: int, sync_bn: bool = False, num_classes: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        # A feature map of another width fails here, naming the cell, not deep in a conv.
        self.input_spec = layers.InputSpec(ndim=4, axes={-1: channels})
        self.index = index
        self.channels = channels
        self.sync_bn = sync_bn
        self.num_classes = conditional.check_num_classes(num_classes)
        self.ops = {}

    # -- construction -----------------------------------------------------
    def _make_ops(self, names):
        """Create the layers of the ops ``names`` (of `search_space.cell_ops`), in name order."""
        table = ss.cell_op_table(self.index, bool(self.num_classes))
        for name in sorted(names):
            op = make_cell_op(table[name], self.channels, self.sync_bn, self.num_classes)
            self.ops[name] = track(self, f"op_{name}", op)
        self._instance_norm = torch_layers.instance_norm(self.channels, "instance_norm")

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
    def _norm(self, prefix, norm, x, training, labels=None):
        """Norm choice ``norm`` of block ``prefix``; per class when the cell is conditional."""
        def by_class(kind, h):
            if not self.num_classes:
                return h
            return self.ops[ss.class_affine_name(prefix, kind)](h, labels)

        return choose_named(norm, ss.NORM_TYPES, {
            "none": lambda: x,
            "bn": lambda: by_class("bn", self.ops[f"{prefix}_bn"](x, training=training)),
            "in": lambda: by_class("in", self._instance_norm(x))})

    def _upsample(self, x, up, deconv_name, factor=2):
        """``x`` ``factor`` times larger by the cell's upsampling kind ``up``."""
        return choose_named(up, ss.UP_TYPES, {
            "bilinear": lambda: bilinear_upsample(x, factor),
            "nearest": lambda: nearest_upsample(x, factor),
            "deconv": lambda: self.ops[deconv_name](x)})

    def first_block(self, x, conv, norm, up, training, labels=None):
        """The upsampling block: pre- or post-activation, per the module docstring.

        Args:
          x: the cell input, NHWC.
          conv: the conv type index (Python int or int tensor).
          norm: the norm type index.
          up: the upsampling kind index.
          training: batch norm in training mode.
          labels: int ``[batch]`` classes (a conditional cell's norms scale by them).

        Returns:
          The feature at twice the input side.
        """
        def pre():
            h = tf.nn.relu(self._norm("pre1", norm, x, training, labels))
            return self.ops["pre1_conv"](self._upsample(h, up, "pre1_deconv"))

        def post():
            h = self.ops["post1_conv"](self._upsample(x, up, "post1_deconv"))
            return tf.nn.relu(self._norm("post1", norm, h, training, labels))

        return choose_named(conv, ss.CONV_TYPES, {"post": post, "pre": pre})

    def second_block(self, h, conv, norm, training, labels=None):
        """The second block (no upsampling), pre- or post-activation.

        Args:
          h: the first block's output with the skip-ins added.
          conv: the conv type index.
          norm: the norm type index.
          training: batch norm in training mode.
          labels: int ``[batch]`` classes (a conditional cell's norms scale by them).
        """
        def pre():
            return self.ops["pre2_conv"](tf.nn.relu(self._norm("pre2", norm, h, training,
                                                               labels)))

        def post():
            return tf.nn.relu(self._norm("post2", norm, self.ops["post2_conv"](h), training,
                                         labels))

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

    def forward(self, x, skip_features, conv, norm, up, shortcut, skip_mask, training,
                labels=None):
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
          labels: int ``[batch]`` classes, for a conditional cell (checked by its model).

        Returns:
          ``(skip_out, out)``: the feature later cells take (after this cell's skip-ins)
          and the cell output, both at twice the input side.
        """
        h = self.first_block(x, conv, norm, up, training, labels)
        for source, feature in enumerate(skip_features):
            h = add_if(skip_bit(skip_mask, self.index - 1 - source), h,
                       lambda f=feature, s=source: self.skip_in(f, s, up))
        out = self.second_block(h, conv, norm, training, labels)
        out = add_if(is_choice(shortcut, ss.SHORTCUT_ON), out, lambda: self.shortcut(x, up))
        return h, out

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "index": self.index, "channels": self.channels,
                "sync_bn": self.sync_bn, "num_classes": self.num_classes}


class FixedCell(_CellOps):
    """A generator cell with the ops of one `CellSpec` only.

    Call with ``(x, skip_features)``; returns ``(skip_out, out)`` where
    ``skip_features`` are the earlier cells' ``skip_out`` in cell order.

    Args:
      spec: the cell's `search_space.CellSpec`, or a dict of its fields (from `get_config`).
      channels: the cell's width.
      sync_bn: batch norm over all replicas.
      num_classes: 0, or the classes of a class-conditional cell.
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, spec, channels: int, sync_bn: bool = False, num_classes: int = 0,
                 **kwargs):
        if isinstance(spec, dict):
            spec = ss.CellSpec(**spec)
        super().__init__(spec.index, channels, sync_bn, num_classes, **kwargs)
        self.spec = spec
        usage = cell_op_usage(spec.index, spec.conv, spec.norm, spec.up, spec.shortcut,
                              spec.skip_mask, bool(self.num_classes))
        self._make_ops([name for name, used in usage.items() if used])

    def call(self, x, skip_features=(), training=None, labels=None):
        """Run the cell.

        Args:
          x: the cell input, NHWC.
          skip_features: the earlier cells' ``skip_out``, in cell order.
          training: batch norm in training mode.
          labels: int ``[batch]`` classes, for a conditional cell.

        Returns:
          ``(skip_out, out)`` (see `forward`).
        """
        s = self.spec
        return self.forward(x, skip_features, s.conv, s.norm, s.up, s.shortcut, s.skip_mask,
                            training, labels)

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
      num_classes: 0, or the classes of a class-conditional cell.
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, index: int, channels: int, sync_bn: bool = False, num_classes: int = 0,
                 **kwargs):
        super().__init__(index, channels, sync_bn, num_classes, **kwargs)
        self._make_ops(op.name for op in ss.cell_ops(index, bool(self.num_classes)))

    def usage(self, cell_arch):
        """Bool tensors: which named ops the architecture uses.

        Args:
          cell_arch: int ``[5]``: ``conv, norm, up, shortcut, skip_mask``.

        Returns:
          ``{op name: bool tensor}`` (`cell_op_usage`).
        """
        conv, norm, up, sc, mask = (cell_arch[i] for i in range(5))
        return cell_op_usage(self.index, conv, norm, up, sc, mask, bool(self.num_classes))

    def call(self, x, skip_features, cell_arch, training=None, labels=None):
        """Run the cell with the ops ``cell_arch`` selects.

        Args:
          x: the cell input, NHWC.
          skip_features: the earlier cells' ``skip_out``, in cell order.
          cell_arch: int ``[5]`` choices of this cell.
          training: batch norm in training mode.
          labels: int ``[batch]`` classes, for a conditional cell.

        Returns:
          ``(skip_out, out)`` (see `forward`).
        """
        cell_arch = tf.cast(cell_arch, tf.int32)
        conv, norm, up, sc, mask = (cell_arch[i] for i in range(5))
        return self.forward(x, skip_features, conv, norm, up, sc, mask, training, labels)


class ToRGB(layers.Layer):
    """BN -> ReLU -> conv3x3 to 3 channels -> tanh, the generator's output head.

    ``channels``: the input width (gf_dim); it sets the conv bias bound
    1/sqrt(channels * 9) as PyTorch's default.

    Args:
      channels: the input width, as above.
      sync_bn: batch norm over all replicas.
      num_classes: 0, or the classes of a class-conditional head (conditional batch norm:
        a per-class scale and shift replaces the batch norm's own).
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, channels: int, sync_bn: bool = False, num_classes: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = layers.InputSpec(ndim=4, axes={-1: channels})
        self.channels = channels
        self.sync_bn = sync_bn
        self.num_classes = conditional.check_num_classes(num_classes)
        self.bn = torch_layers.batch_norm("bn", sync_bn, affine=not self.num_classes)
        if self.num_classes:
            self.bn_class = conditional.ClassAffine(self.num_classes, channels,
                                                    name=ss.class_affine_name("", "bn"))
        self.conv = torch_layers.conv(3, 3, "conv", in_channels=channels)

    def build(self, input_shape):
        """Build the batch norm and the conv for ``input_shape`` (NHWC).

        Args:
          input_shape: the input's shape, channels last.
        """
        self.bn.build(input_shape)
        if self.num_classes:
            self.bn_class.build(input_shape)
        self.conv.build(input_shape)
        super().build(input_shape)

    def call(self, x, training=None, labels=None):
        """RGB images from the last cell's output.

        Args:
          x: NHWC feature map with ``channels`` channels.
          training: batch norm in training mode.
          labels: int ``[batch]`` classes, for a conditional head.

        Returns:
          ``[batch, H, W, 3]`` in [-1, 1] (compute dtype).
        """
        h = self.bn(x, training=training)
        if self.num_classes:
            h = self.bn_class(h, labels)
        return tf.tanh(self.conv(tf.nn.relu(h)))

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "channels": self.channels, "sync_bn": self.sync_bn,
                "num_classes": self.num_classes}
