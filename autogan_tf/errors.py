"""The errors autogan-tf raises on purpose, and the rule for which class to raise.

Two classes make the hierarchy:

* `AutoganError`: the base of every exception the package raises deliberately,
  with a message written for a person. Catching it separates our errors from
  bugs (a ``KeyError`` or ``AttributeError`` escaping is a bug and keeps its
  traceback).
* `UserError`: an `AutoganError` that the person running the code can fix by
  changing what they gave: a flag value, a file or directory, a data set, an
  architecture, a checkpoint, the environment (``TF_CONFIG``, free disk space).
  Its message names that input (``--model_dir=...``, the file's path) and, where
  it helps, what to do instead. It is a ``ValueError`` so that code written
  against plain ``ValueError`` (``except ValueError``) still catches it.

The rule for a new error class:

1. Input the user can fix -> derive from `UserError` (``class DataError(UserError)``).
2. A run that failed although its input was valid -> derive from `AutoganError`
   only (losses that stay NaN beyond ``--max_nan_restores``, a server that
   refused or failed a request, a controller handed inconsistent tensors by
   the code that calls it).
3. Keep a builtin base that callers or tests already rely on by adding it:
   ``class CheckpointError(UserError, RuntimeError)``.
4. An exception that only carries control flow inside one module and never
   reaches a caller (``lifecycle.Diverged``, ``pth._RefusedName``) stays outside
   the hierarchy.

A module keeps its own class (``data.DataError``, ``runlog.ModelDirError``...)
so that a caller can catch one kind of problem; the base says how to report it.
The command lines (`autogan_tf.cli.common.run`) catch `AutoganError` in one
place and print it as one line, ``autogan-<command>: error: <message>``, with
exit status 1; anything else keeps its traceback.
"""


class AutoganError(Exception):
    """Base of every error autogan-tf raises on purpose (see the module's rule)."""


class UserError(AutoganError, ValueError):
    """A problem with something the user gave (flag, file, directory, data, checkpoint).

    The message names the input and is complete on its own: the command lines
    print it as their one line of output.
    """


class RunError(AutoganError, RuntimeError):
    """A long run (a search, a training) that cannot go on although it started as asked:
    losses, weights or rewards stayed NaN/Inf more often than ``--max_nan_restores`` allows.
    The message names the checkpoint kept and what to change."""


class RunUserError(RunError, UserError):
    """A run that cannot start as asked: its ``--model_dir`` holds a run of another
    configuration, no run at all, or not the checkpoint asked for."""
