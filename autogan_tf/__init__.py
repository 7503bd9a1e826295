"""autogan-tf: AutoGAN (Gong et al., ICCV 2019) in TensorFlow 2 / Keras 3.

Importing the package is cheap and never imports an optional extra; the
TensorFlow-backed modules (``layers``, ``models``, ``metrics`` ...) are
imported explicitly, e.g. ``from autogan_tf import models``.
"""

__version__ = "0.1.0"

from autogan_tf.search_space import ALIASES, Arch, ArchError, CellSpec, parse_arch  # noqa: F401
