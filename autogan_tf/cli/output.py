"""What the command lines print: our progress and warnings, not TensorFlow's chatter.

TensorFlow talks on two channels. Its C++ core writes glog-style lines
(``I0000 00:00:... port.cc:153] oneDNN custom operations are on``, the CUDA
probing errors of a host without GPUs, ...) straight to file descriptor 2, most
of them before its logging is initialised, when ``TF_CPP_MIN_LOG_LEVEL`` is not
yet honoured. Its Python side logs through absl (``functional_saver.py:440]
Sharding callback duration`` at every checkpoint). Our own progress goes
through absl too, so absl's verbosity alone cannot tell them apart.

By default (no ``--verbosity`` on the command line):

* `NativeLogFilter` reads file descriptor 2 through a pipe and drops the C++
  lines of level I/W and the known CUDA-probing errors; every other byte (our
  messages, Python tracebacks, errors of level E/F) passes unchanged.
* `quiet_python_logs` shows absl records of ``autogan_tf`` at INFO and above,
  other libraries' only from ERROR, as short ``autogan: ...`` lines, and our own
  warnings (a skipped damaged image ...) as one ``autogan: warning: ...`` line
  without Python's source line under it.

``--verbosity=0`` (or any explicit value) shows everything, as plain absl would.
"""

from __future__ import annotations

import atexit
import logging as std_logging
import os
import re
import sys
import threading
import warnings

# glog / absl C++ line: severity letter, MMDD, time, thread id, file:line]
_NATIVE_LINE = re.compile(rb"^[IWEF]\d{4} [\d:.]+\s+\d+ [^\]]+\] ")
_NATIVE_KEEP = re.compile(rb"^[EF]")
_LINE_END = re.compile(rb"(?<=[\r\n])")
_NATIVE_NOISE = (
    rb"WARNING: All log messages before absl::InitializeLog() is called",
    rb"To enable the following instructions:",  # continuation of the CPU-feature INFO line
    rb"remapper failed",
    rb"NodeDef mentions attribute",  # a tf.data graph attribute this build does not know  # a grappler pass that gives up on some graphs; the graph still runs
    rb"cuInit", rb"cuda_platform", rb"cuda_executor", rb"cuda_diagnostics", rb"cudart_stub",
    # libjpeg's own messages about a damaged file: the data module names the file itself
    # (an error, or a one-line warning with --on_bad_image=skip).
    rb"Improper call to JPEG library", rb"Premature end of JPEG file", rb"Corrupt JPEG data",
    rb"Invalid JPEG file structure", rb"Bogus marker length", rb"JPEG datastream contains",
)
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def verbosity_requested(argv=None) -> bool:
    """Whether the command line sets absl's ``--verbosity`` (or ``-v``) itself.

    Args:
      argv: the command line (default: ``sys.argv``); ``argv[0]`` is skipped.
    """
    argv = sys.argv if argv is None else argv
    return any(a == "-v" or a.startswith(("--verbosity", "-v=")) for a in argv[1:])


def keep_native_line(line: bytes) -> bool:
    """False for TensorFlow C++ chatter (I/W lines, CUDA probing), True for anything else.

    Args:
      line: one line written to fd 2, without its line end.
    """
    if any(noise in line for noise in _NATIVE_NOISE):
        return False
    if _NATIVE_LINE.match(line):
        return bool(_NATIVE_KEEP.match(line))
    return True


class NativeLogFilter:
    """Route file descriptor 2 through a pipe and drop TensorFlow's native chatter.

    Everything Python, C++ or a child process writes to fd 2 goes through the
    filter, so install it before importing TensorFlow. Partial lines (a
    progress bar redrawn with ``\\r``) are passed on at once unless they could
    be the start of a native log line.
    """

    def __init__(self):
        self._read, write = os.pipe()
        self._target = os.dup(2)
        sys.stderr.flush()
        os.dup2(write, 2)
        os.close(write)
        self._thread = threading.Thread(target=self._pump, name="native-log-filter", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _pump(self):
        pending = b""
        while True:
            try:
                chunk = os.read(self._read, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            # A line ends at \n, or at \r (a progress bar redrawn in place).
            *lines, pending = _LINE_END.split(pending)
            out = [line for line in lines if keep_native_line(line.rstrip(b"\r\n"))]
            if pending and not _could_be_native(pending):
                out.append(pending)
                pending = b""
            if out:
                self._write(b"".join(out))
        if pending and keep_native_line(pending):
            self._write(pending)

    def _write(self, data: bytes):
        try:
            os.write(self._target, data)
        except OSError:
            pass

    def close(self):
        """Put fd 2 back and let the pump drain what is still in the pipe."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._target, 2)  # closes the pipe's last write end held by fd 2
        self._thread.join(timeout=5)


def _could_be_native(partial: bytes) -> bool:
    """Whether an unfinished line may still turn out to be a native log line."""
    template = b"I0000 00:00:00.0"
    head = partial[:len(template)]
    return bool(re.match(rb"^[IWEFT]", head)) and (
        len(head) < len(template) and re.match(rb"^[IWEF][\d :.]*$", head) is not None
        or head.startswith((b"WARNING: All log", b"To enable")))


class _ShortFormatter(std_logging.Formatter):
    """``autogan: message``, with ``warning:``/``error:`` before the message when it is one."""

    def format(self, record):
        """The record as ``autogan: [warning: |error: ...]message``.

        Args:
          record: the `logging.LogRecord`.

        Returns:
          The formatted line.
        """
        level = "" if record.levelno < std_logging.WARNING else record.levelname.lower() + ": "
        return f"autogan: {level}{record.getMessage()}"


class _OwnRecords(std_logging.Filter):
    """Our package's records from INFO, other libraries' from ERROR."""

    def filter(self, record):
        """Keep records of this package from INFO, others from ERROR.

        A record is ours when the file that logged it lies under the package's directory.

        Args:
          record: the `logging.LogRecord`.

        Returns:
          True to keep the record.
        """
        ours = os.path.abspath(record.pathname).startswith(_PACKAGE_DIR)
        return record.levelno >= (std_logging.INFO if ours else std_logging.ERROR)


def quiet_python_logs():
    """absl output: our INFO and above as ``autogan: message``; others' errors only."""
    from absl import logging

    handler = logging.get_absl_handler()
    handler.addFilter(_OwnRecords())
    handler.setFormatter(_ShortFormatter())
    std_logging.getLogger("tensorflow").setLevel(std_logging.ERROR)
    warnings.formatwarning = _format_warning


_PYTHON_FORMAT_WARNING = warnings.formatwarning


def _format_warning(message, category, filename, lineno, line=None):
    """Our warnings as one ``autogan: warning: ...`` line; others as Python formats them."""
    if category.__module__.startswith("autogan_tf"):
        return f"autogan: warning: {message}\n"
    return _PYTHON_FORMAT_WARNING(message, category, filename, lineno, line)


_FILTER: NativeLogFilter | None = None


def write_now(text: str):
    """Write ``text`` to the terminal's stderr at once, past the filter's pipe.

    For a line that must be seen although the process dies right after it (the
    fault injector of the kill/resume tests SIGKILLs itself): through the filter,
    the line could still sit in the pipe when the process is killed.

    Args:
      text: what to write, with its own newline.
    """
    sys.stderr.flush()
    if _FILTER is None:
        sys.stderr.write(text)
        sys.stderr.flush()
    else:
        os.write(_FILTER._target, text.encode())


def install(argv=None):
    """Quiet defaults unless ``--verbosity`` is given; called when `autogan_tf.cli` is imported.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` unless already set and installs the `NativeLogFilter`
    once. It runs before flag parsing, and before TensorFlow is imported, because the native
    lines appear before TensorFlow's logging is configured.
    ``AUTOGAN_VERBOSE_NATIVE_LOGS`` in the environment also keeps the native lines.

    Args:
      argv: the command line (default: ``sys.argv``).
    """
    global _FILTER
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if verbosity_requested(argv) or os.environ.get("AUTOGAN_VERBOSE_NATIVE_LOGS"):
        return
    if _FILTER is None:
        try:
            _FILTER = NativeLogFilter()
        except OSError:  # no fd 2 (a daemon): nothing to filter
            _FILTER = None


def configure(argv=None):
    """After flag parsing: the Python side of the quiet defaults (see the module docstring).

    Args:
      argv: the command line (default: ``sys.argv``).
    """
    if not verbosity_requested(argv):
        quiet_python_logs()
