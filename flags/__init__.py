"""absl flagfiles of the paper's experiments and the quick runs, shipped with the package.

Installed, they are the package `autogan_tf.flags`; the command lines resolve
``--flagfile=NAME`` (``search_cifar10``, ``flags/search_cifar10.cfg``, ...) to
them when no such file exists where the command runs (`autogan_tf.cli.common`).
"""
