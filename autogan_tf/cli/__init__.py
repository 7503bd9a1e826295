"""The autogan-* command lines (console scripts; ``bin/autogan`` runs them from a checkout).

Importing this package hides TensorFlow's start-up and logging chatter unless
``--verbosity`` is given (see `autogan_tf.cli.output`).
"""

from autogan_tf.cli import output as _output

_output.install()
