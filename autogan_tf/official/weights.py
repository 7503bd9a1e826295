"""One weight mapping between the official PyTorch AutoGAN state dicts and our Keras models.

Pure NumPy: a state dict here is a ``{name: numpy array}`` dict with PyTorch's
names and layouts (``torch_model.state_dict()`` with every tensor turned into
``.numpy()``, or `autogan_tf.official.pth.load`). No PyTorch import.

API (every function checks every tensor's name and shape first and raises
`WeightMappingError` naming the tensor, the expected and the found shape, or
the missing / unexpected names, before it changes anything):

* ``load_generator_state(generator, state_dict, layout=None)`` /
  ``generator_state(generator, layout="search")``: `DerivedGenerator` or
  `SuperGenerator` <-> the official generator.
* ``load_discriminator_state(discriminator, state_dict)`` /
  ``discriminator_state(discriminator)``: `Discriminator` <-> the official
  SNGAN discriminator with spectral norm (``weight_orig``, ``weight_u``,
  ``weight_v``, ``bias``).
* ``load_controller_state(controller, state_dict)`` /
  ``controller_state(controller)``: `Controller` <-> the official
  ``models_search.controller.Controller`` of one stage.
* ``generator_variables`` / ``discriminator_variables`` / ``controller_variables``: official name ->
  (our variable, converter to PyTorch's layout), e.g. to compare optimizer slots.

Generator layouts (``layout``; None detects it from the names):

* ``"search"``: ``models_search/shared_gan.py`` (the search supernet, also used
  by ``train_derived.py`` with ``set_arch``): ``cellK.pre_conv1.conv``,
  ``cellK.post_conv2.bn``, ``cellK.c_sc``, ``cellK.deconv_sc``,
  ``cellK.skip_in_ops.S``, ``cellK.skip_deconvx2``, ``cellK.skip_deconvx4.0``...
  Loading into a `DerivedGenerator` takes the ops its architecture uses and
  ignores the rest of the supernet. The official supernet also holds modules
  its forward pass never runs (``pre_conv2.deconv``, ``post_conv2.deconv``,
  ``skip_deconvx*`` of cells that cannot use them); they are ignored on load
  and absent from `generator_state` (load such a dict into PyTorch with
  ``strict=False``; `official_unused_generator_keys` lists them).
* ``"derived"``: ``models/autogan_cifar10_{a,b,c}.py``: ``cellK.c1``, ``cellK.c2``,
  ``cellK.n1``, ``cellK.n2``, ``cellK.c_sc``, ``cellK.skip_in_ops.S``.
  Those cells are pre-activation with bilinear or nearest upsampling and
  apply every skip-in they hold, so only such architectures map.

Layout conversions: Conv2d ``[out, in, kh, kw]`` <-> Keras ``[kh, kw, in, out]``;
ConvTranspose2d ``[in, out, kh, kw]`` <-> Keras ``[kh, kw, out, in]`` (both
correlate without flipping); Linear ``[out, in]`` <-> Dense ``[in, out]``;
BatchNorm ``weight, bias, running_mean, running_var`` <-> ``gamma, beta,
moving_mean, moving_variance`` (``num_batches_tracked`` is ignored on load and
written as 0). The generator's ``l1`` output is reshaped NCHW by PyTorch and
NHWC by us, so its units are permuted: unit ``c*bw*bw + y*bw + x`` of PyTorch
is unit ``(y*bw + x)*gf + c`` here. Spectral-norm ``u`` and ``v`` map
unchanged (`spectral_norm.SpectralNorm` reads W as PyTorch's ``[out, in*kh*kw]``).
The LSTM's gate order (i, f, g, o) is the same in both; our controller keeps
PyTorch's two biases (``cell.bias`` = ``bias_ih``, ``recurrent_bias`` = ``bias_hh``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

import numpy as np

from autogan_tf import errors
from autogan_tf import search_space as ss

__all__ = [
    "WeightMappingError", "load_generator_state", "generator_state",
    "load_discriminator_state", "discriminator_state", "load_controller_state",
    "controller_state", "official_unused_generator_keys", "detect_generator_layout",
    "generator_variables", "discriminator_variables", "controller_variables",
]

GENERATOR_LAYOUTS = ("search", "derived")


class WeightMappingError(errors.UserError):
    """A state dict does not fit the model: a missing, unexpected or wrongly shaped tensor."""


@dataclasses.dataclass
class _Entry:
    """One PyTorch tensor and the Keras variable it maps to."""

    name: str
    variable: object
    to_keras: Callable[[np.ndarray], np.ndarray]
    to_torch: Callable[[np.ndarray], np.ndarray]

    @property
    def torch_shape(self):
        """The shape the tensor has in PyTorch's layout (the variable's shape converted)."""
        return tuple(self.to_torch(np.zeros(self.variable.shape, np.float32)).shape)


def _identity(x):
    return x


def _conv_kernel(name, variable):
    # Conv2d [out, in, kh, kw] and ConvTranspose2d [in, out, kh, kw] both become
    # Keras' [kh, kw, dim1, dim0]; the same transposition serves both.
    return _Entry(name, variable, lambda w: np.transpose(w, (2, 3, 1, 0)),
                  lambda k: np.transpose(k, (3, 2, 0, 1)))


def _dense_kernel(name, variable):
    return _Entry(name, variable, lambda w: np.transpose(w), lambda k: np.transpose(k))


def _vector(name, variable):
    return _Entry(name, variable, _identity, _identity)


def _conv_entries(prefix, layer):
    entries = [_conv_kernel(f"{prefix}.weight", layer.kernel)]
    if layer.use_bias:
        entries.append(_vector(f"{prefix}.bias", layer.bias))
    return entries


def _bn_entries(prefix, bn):
    return [_vector(f"{prefix}.weight", bn.gamma), _vector(f"{prefix}.bias", bn.beta),
            _vector(f"{prefix}.running_mean", bn.moving_mean),
            _vector(f"{prefix}.running_var", bn.moving_variance)]


def _l1_entries(generator):
    """The stem Linear with its output units permuted NCHW (PyTorch) <-> NHWC (ours)."""
    bw, gf, latent = generator.bottom_width, generator.gf_dim, generator.latent_dim

    def w_to_keras(w):  # [gf*bw*bw (c, y, x), latent] -> [latent, bw*bw*gf (y, x, c)]
        return w.reshape(gf, bw, bw, latent).transpose(1, 2, 0, 3).reshape(-1, latent).T

    def k_to_torch(k):
        return k.T.reshape(bw, bw, gf, latent).transpose(2, 0, 1, 3).reshape(-1, latent)

    def b_to_keras(b):
        return b.reshape(gf, bw, bw).transpose(1, 2, 0).reshape(-1)

    def b_to_torch(b):
        return b.reshape(bw, bw, gf).transpose(2, 0, 1).reshape(-1)

    layer = generator.l1
    return [_Entry("l1.weight", layer.kernel, w_to_keras, k_to_torch),
            _Entry("l1.bias", layer.bias, b_to_keras, b_to_torch)]


# Our cell op name -> the official search cell's module, for plain ops.
_SEARCH_OPS = {
    "pre1_bn": "pre_conv1.bn", "pre1_deconv": "pre_conv1.deconv", "pre1_conv": "pre_conv1.conv",
    "post1_deconv": "post_conv1.deconv", "post1_conv": "post_conv1.conv",
    "post1_bn": "post_conv1.bn", "pre2_bn": "pre_conv2.bn", "pre2_conv": "pre_conv2.conv",
    "post2_conv": "post_conv2.conv", "post2_bn": "post_conv2.bn",
    "sc_deconv": "deconv_sc", "sc_conv": "c_sc",
}
# The official derived cell (models/building_blocks.py): pre-activation only.
_DERIVED_OPS = {"pre1_bn": "n1", "pre1_conv": "c1", "pre2_bn": "n2", "pre2_conv": "c2",
                "sc_conv": "c_sc"}


def _search_op_module(op):
    """The official search cell's module of our `search_space.CellOp` ``op``."""
    if op.skip_source is not None:
        if op.kind == "conv":
            return f"skip_in_ops.{op.skip_source}"
        return f"skip_deconvx{op.factor}"
    if op.name in _SEARCH_OPS:
        return _SEARCH_OPS[op.name]
    raise WeightMappingError(f"no official counterpart for cell op {op.name!r}")


def _derived_op_module(op):
    """The official derived cell's module of ``op`` (`_derived_layout_check` first)."""
    if op.skip_source is not None and op.kind == "conv":
        return f"skip_in_ops.{op.skip_source}"
    return _DERIVED_OPS[op.name]


def _op_entries(prefix, op, layer):
    """Entries of the Keras ``layer`` of cell op ``op``, under the official ``prefix``."""
    if op.kind == "bn":
        return _bn_entries(prefix, layer)
    if op.kind == "deconv_chain":
        chain = layer.layers
        if len(chain) == 1:  # ConvTranspose2d
            return _conv_entries(prefix, chain[0])
        return [e for i, step in enumerate(chain) for e in _conv_entries(f"{prefix}.{i}", step)]
    return _conv_entries(prefix, layer)


def _derived_layout_check(generator):
    for cell in generator.cells:
        spec = cell.spec
        full_mask = (1 << spec.index) - 1
        if spec.conv != ss.CONV_PRE or spec.up == ss.UP_DECONV or (
                spec.index and spec.skip_mask != full_mask):
            raise WeightMappingError(
                f"cell {spec.index + 1} ({spec}) has no counterpart in the official "
                "models/*.py layout (pre-activation, bilinear/nearest, every skip-in); "
                "use layout='search'")


def _generator_entries(generator, layout):
    from autogan_tf import models
    if layout not in GENERATOR_LAYOUTS:
        raise WeightMappingError(f"layout must be one of {GENERATOR_LAYOUTS}, got {layout!r}")
    if getattr(generator, "num_classes", 0):
        raise WeightMappingError("the official code has no class-conditional generator: a "
                                 "--conditional model has no official counterpart")
    derived = isinstance(generator, models.DerivedGenerator)
    if layout == "derived":
        if not derived:
            raise WeightMappingError("the 'derived' layout holds one architecture; "
                                     "a SuperGenerator maps with layout='search'")
        _derived_layout_check(generator)
    entries = _l1_entries(generator)
    for i, cell in enumerate(generator.cells):
        table = ss.cell_op_table(i)
        for name, layer in sorted(cell.ops.items()):
            op = table[name]
            module = _derived_op_module(op) if layout == "derived" else _search_op_module(op)
            entries += _op_entries(f"cell{i + 1}.{module}", op, layer)
    entries += _bn_entries("to_rgb.0", generator.to_rgb.bn)
    entries += _conv_entries("to_rgb.2", generator.to_rgb.conv)
    return entries


def official_unused_generator_keys(state_dict) -> list:
    """Names of an official search-layout state dict that no architecture ever uses.

    ``pre_conv2.deconv`` / ``post_conv2.deconv`` (second blocks never upsample),
    ``num_batches_tracked``, and ``skip_deconvxN`` of a cell that has no earlier
    cell N times smaller.

    Args:
      state_dict: an official search-layout generator state dict (only its keys are read).

    Returns:
      The unused keys, in the dict's order.
    """
    unused = []
    for key in state_dict:
        match = re.match(r"cell(\d+)\.skip_deconvx(\d+)\.", key)
        if key.endswith("num_batches_tracked") or re.search(r"_conv2\.deconv\.", key):
            unused.append(key)
        elif match and int(match.group(2)) > 2 ** (int(match.group(1)) - 1):
            unused.append(key)
    return unused


def detect_generator_layout(state_dict) -> str:
    """'search' when the names are the supernet's (``pre_conv1``...), else 'derived'.

    Args:
      state_dict: an official generator state dict (only its keys are read).

    Returns:
      "search" or "derived".
    """
    if any(re.match(r"cell\d+\.(pre|post)_conv[12]\.", key) for key in state_dict):
        return "search"
    return "derived"


def _check(entries, state_dict, allowed_extra=()):
    """Raise `WeightMappingError` unless every entry is present with its shape."""
    missing = [e.name for e in entries if e.name not in state_dict]
    wanted = {e.name for e in entries}
    extra = [k for k in state_dict if k not in wanted and k not in allowed_extra
             and not k.endswith("num_batches_tracked")]
    problems = []
    for e in entries:
        if e.name in state_dict:
            found = tuple(np.shape(state_dict[e.name]))
            if found != e.torch_shape:
                problems.append(f"{e.name}: expected shape {e.torch_shape}, found {found}")
    if missing:
        problems.append("missing: " + ", ".join(missing))
    if extra:
        problems.append("unexpected: " + ", ".join(sorted(extra)))
    if problems:
        raise WeightMappingError("state dict does not fit the model: " + "; ".join(problems))


def _load(entries, state_dict, allowed_extra=()):
    _check(entries, state_dict, allowed_extra)
    for e in entries:
        value = e.to_keras(np.asarray(state_dict[e.name], np.float32))
        e.variable.assign(value.astype(e.variable.dtype))


def _state(entries):
    return {e.name: np.ascontiguousarray(e.to_torch(np.asarray(e.variable.numpy())))
            for e in entries}


def _bn_counters(state):
    for name in [k for k in state if k.endswith(".running_var")]:
        state[name[:-len("running_var")] + "num_batches_tracked"] = np.array(0, np.int64)
    return state


def load_generator_state(generator, state_dict, layout=None):
    """Load an official generator state dict into a `DerivedGenerator` or `SuperGenerator`.

    ``layout``: "search" (``models_search/shared_gan.py``), "derived"
    (``models/autogan_cifar10_*.py``) or None to detect it from the names.
    A search-layout dict loaded into a `DerivedGenerator` may hold every
    supernet op; only the architecture's are read. Raises `WeightMappingError`
    (nothing is assigned) on a missing, unexpected or wrongly shaped tensor.

    Args:
      generator: the `DerivedGenerator` or `SuperGenerator` to assign.
      state_dict: ``{official name: array}``.
      layout: "search", "derived" or None (detected by `detect_generator_layout`).

    Raises:
      WeightMappingError: the dict does not fit, or ``layout`` does not fit the generator.
    """
    from autogan_tf import models
    layout = layout or detect_generator_layout(state_dict)
    entries = _generator_entries(generator, layout)
    allowed = ()
    if layout == "search":
        if isinstance(generator, models.DerivedGenerator):
            # Any other supernet op of a cell that exists here.
            allowed = [k for k in state_dict
                       if re.match(r"cell(\d+)\.", k) and int(k[4:k.index(".")]) <=
                       generator.num_cells]
        else:
            allowed = official_unused_generator_keys(state_dict)
    _load(entries, state_dict, allowed)


def generator_state(generator, layout="search") -> dict:
    """The official-layout state dict of ``generator`` (NumPy arrays, PyTorch names).

    Args:
      generator: a `DerivedGenerator` or `SuperGenerator`.
      layout: "search" or "derived" (see the module docstring).

    Returns:
      ``{official name: array}``, with a ``num_batches_tracked`` of 0 per batch norm.
    """
    return _bn_counters(_state(_generator_entries(generator, layout)))


def _sn_entries(prefix, sn):
    inner = sn.layer
    kernel = (_dense_kernel if inner.kernel.shape.rank == 2 else _conv_kernel)(
        f"{prefix}.weight_orig", inner.kernel)
    entries = [kernel, _vector(f"{prefix}.weight_u", sn.u), _vector(f"{prefix}.weight_v", sn.v)]
    if inner.use_bias:
        entries.append(_vector(f"{prefix}.bias", inner.bias))
    return entries


def _discriminator_entries(discriminator):
    entries = []
    blocks = list(discriminator.growing) + [discriminator.final_block]
    for k, block in enumerate(blocks):
        for name in ("c1", "c2", "c_sc"):
            sn = getattr(block, name, None)
            if sn is not None:
                entries += _sn_entries(f"block{k + 1}.{name}", sn)
    return entries + _sn_entries("l5", discriminator.l5)


def load_discriminator_state(discriminator, state_dict):
    """Load the official spectral-norm discriminator's state dict into `Discriminator`.

    Needs ``weight_orig``, ``weight_u``, ``weight_v`` (and ``bias``) of every
    convolution and of ``l5``. Raises `WeightMappingError`, assigning nothing,
    on a missing, unexpected or wrongly shaped tensor.

    Args:
      discriminator: the `Discriminator` to assign.
      state_dict: ``{official name: array}``.
    """
    _load(_discriminator_entries(discriminator), state_dict)


def discriminator_state(discriminator) -> dict:
    """The official-layout state dict of ``discriminator`` (NumPy arrays, PyTorch names).

    Args:
      discriminator: a `Discriminator`.
    """
    return _state(_discriminator_entries(discriminator))


def generator_variables(generator, layout="search") -> dict:
    """``{official name: (variable, to_official)}`` for ``generator``'s variables.

    ``to_official`` converts a NumPy value of the variable (or of a tensor of
    its shape, e.g. an optimizer slot) to PyTorch's layout.

    Args:
      generator: a `DerivedGenerator` or `SuperGenerator`.
      layout: "search" or "derived".
    """
    return {e.name: (e.variable, e.to_torch) for e in _generator_entries(generator, layout)}


def discriminator_variables(discriminator) -> dict:
    """``{official name: (variable, to_official)}`` for ``discriminator``'s variables."""
    return {e.name: (e.variable, e.to_torch) for e in _discriminator_entries(discriminator)}


def _controller_entries(controller):
    cell = controller.cell
    entries = [_dense_kernel("lstm.weight_ih", cell.kernel),
               _dense_kernel("lstm.weight_hh", cell.recurrent_kernel),
               _vector("lstm.bias_ih", cell.bias),
               _vector("lstm.bias_hh", controller.recurrent_bias),
               _vector("encoder.weight", controller.embedding.embeddings)]
    for t, head in enumerate(controller.heads):
        entries += [_dense_kernel(f"decoders.{t}.weight", head.kernel),
                    _vector(f"decoders.{t}.bias", head.bias)]
    return entries


def load_controller_state(controller, state_dict):
    """Load an official controller's state dict (one stage) into `Controller`.

    Raises `WeightMappingError`, assigning nothing, on a missing, unexpected or
    wrongly shaped tensor.

    Args:
      controller: the `Controller` (of one stage) to assign.
      state_dict: ``{official name: array}``.
    """
    _load(_controller_entries(controller), state_dict)


def controller_state(controller) -> dict:
    """The official controller's state dict (NumPy arrays, PyTorch names).

    Args:
      controller: a `Controller`.
    """
    return _state(_controller_entries(controller))


def controller_variables(controller) -> dict:
    """``{official name: (variable, to_official)}`` for ``controller``'s variables."""
    return {e.name: (e.variable, e.to_torch) for e in _controller_entries(controller)}
