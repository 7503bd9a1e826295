"""One logging path for long commands: JSON lines, TensorBoard, a progress line.

`RunLog` appends one JSON object per line to ``MODEL_DIR/<name>.jsonl``
(flushed at every write, so a killed run loses nothing), writes TensorBoard
scalars and images under ``MODEL_DIR/logs`` and prints a progress line to
stderr.

JSON values are made plain: NumPy and TensorFlow scalars become Python
numbers, arrays become lists, and the non-finite floats NaN, +Inf and -Inf
become the strings ``"nan"``, ``"inf"`` and ``"-inf"`` (strict JSON has no
such numbers; a string keeps which one it was, unlike null).

TensorBoard events are written with TensorFlow's core ``tf.summary.write``
and the scalars/images plugin metadata, so the ``tensorboard`` package is not
needed to write them.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time

import numpy as np

from autogan_tf.images import encode_png

TB_SUBDIR = "logs"  # MODEL_DIR/logs: TensorBoard's event files (`rundir.LOGS`)


# -- JSON ----------------------------------------------------------------------
def json_safe(value):
    """``value`` with only JSON types; non-finite floats become "nan"/"inf"/"-inf".

    Args:
      value: a (possibly nested) dict, list, tuple, NumPy or TensorFlow value.

    Returns:
      The same structure made of dicts (with str keys), lists, str, int, float, bool and None;
      bytes are decoded as UTF-8 and values of unknown types become their ``str``.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (str, type(None), bool)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "numpy") and callable(value.numpy):  # tf.Tensor / tf.Variable
        value = value.numpy()
    if isinstance(value, np.ndarray):
        return json_safe(value.item()) if value.ndim == 0 else json_safe(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return str(value)


def _atomic_write_bytes(path: str, data: bytes) -> str:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_json_atomic(path: str, obj) -> str:
    """Write ``obj`` as JSON so that readers see the old file or the new one, never half.

    The JSON is written to a temporary file in the same folder, synced to disk and renamed
    over ``path``.

    Args:
      path: the file to write; its folder is created when missing.
      obj: the value to write; `json_safe` makes it plain first.

    Returns:
      ``path``.
    """
    text = json.dumps(json_safe(obj), indent=2) + "\n"
    return _atomic_write_bytes(path, text.encode("utf-8"))


# -- the run log ---------------------------------------------------------------
def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _format_metric(value) -> str:
    value = json_safe(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class RunLog:
    """JSON lines + TensorBoard + progress for one command writing into ``model_dir``.

    Only the chief writes; on other workers (``is_chief=False``) every method
    is a no-op, so callers need no conditionals.

    Args:
      model_dir: the directory the log writes into (created on the chief).
      name: the JSON lines file's base name: ``model_dir/<name>.jsonl``.
      is_chief: False makes every method a no-op (other workers of a multi-worker job).
      progress_interval: seconds between progress lines when the stream is not a terminal.
      stream: where progress lines go (default: ``sys.stderr``).
    """

    def __init__(self, model_dir: str, name: str = "log", is_chief: bool = True,
                 progress_interval: float = 30.0, stream=None):
        self.model_dir = model_dir
        self.name = name
        self.is_chief = is_chief
        self.path = os.path.join(model_dir, f"{name}.jsonl")
        self.tb_dir = os.path.join(model_dir, TB_SUBDIR)
        self.progress_interval = progress_interval
        self.stream = stream if stream is not None else sys.stderr
        self._file = None
        self._writer = None
        self._progress_start = None  # (time, step)
        self._last_print = -math.inf
        self._line_open = False
        if is_chief:
            os.makedirs(model_dir, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")

    # JSON lines
    def log(self, record: dict) -> dict:
        """Append ``record`` (plus a wall-clock ``time`` unless given) as one JSON line.

        Args:
          record: the fields to log; they are made plain by `json_safe`.

        Returns:
          The record as written (with ``time``); ``record`` itself on a non-chief worker.
        """
        if not self.is_chief:
            return record
        record = {**record}
        record.setdefault("time", round(time.time(), 3))
        line = json.dumps(json_safe(record), allow_nan=False)
        self._file.write(line + "\n")
        self._file.flush()
        return record

    # TensorBoard
    def _summary_writer(self):
        if self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(self.tb_dir)
        return self._writer

    def scalars(self, step: int, values: dict):
        """One TensorBoard scalar per numeric entry of ``values`` (others are skipped).

        Non-finite values ("nan", "inf", "-inf" after `json_safe`) are written as floats, so
        TensorBoard shows a divergence rather than a gap.

        Args:
          step: the step the values belong to.
          values: name -> value; bools and non-numbers are skipped.
        """
        if not self.is_chief:
            return
        import tensorflow as tf

        metadata = _plugin_metadata("scalars")
        with self._summary_writer().as_default():
            for name, value in values.items():
                value = json_safe(value)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    if value not in ("nan", "inf", "-inf"):
                        continue
                    value = float(value)
                tf.summary.write(name, tf.constant(float(value), tf.float32), step=int(step),
                                 metadata=metadata)
        self._writer.flush()

    def image(self, step: int, name: str, image):
        """A uint8 [H, W, C] image (e.g. a `make_grid`) as a TensorBoard image.

        Args:
          step: the step the image belongs to.
          name: the image's TensorBoard tag.
          image: a uint8 array ``[H, W, C]``, encoded as PNG.
        """
        if not self.is_chief:
            return
        import tensorflow as tf

        png = encode_png(image)
        height, width = np.shape(image)[:2]
        tensor = tf.stack([tf.as_string(width), tf.as_string(height), tf.constant(png)])
        with self._summary_writer().as_default():
            tf.summary.write(name, tensor, step=int(step), metadata=_plugin_metadata("images"))
        self._writer.flush()

    # progress
    def progress(self, step: int, total: int, **metrics):
        """A progress line with rate and ETA.

        On a terminal the line is redrawn in place; on a pipe or file it is printed at most every
        ``progress_interval`` seconds (and at the end), so logs stay short.

        Args:
          step: the current step; the rate counts from the step of the first call.
          total: the final step (0 or None: no percentage or ETA).
          **metrics: name -> value shown after the ETA (``d_loss=...``).
        """
        if not self.is_chief:
            return
        now = time.time()
        if self._progress_start is None:
            self._progress_start = (now, step)
        t0, s0 = self._progress_start
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        done = total and step >= total
        if not tty and not done and now - self._last_print < self.progress_interval:
            return
        self._last_print = now
        rate = (step - s0) / (now - t0) if now > t0 and step > s0 else float("nan")
        eta = (total - step) / rate if total and rate > 0 else float("nan")
        frac = min(max(step / total, 0.0), 1.0) if total else 0.0
        bar = "#" * int(frac * 20) + "." * (20 - int(frac * 20))
        speed = _format_metric(rate) if math.isfinite(rate) else "?"  # unknown on the first call
        text = (f"[{bar}] {step}/{total} {100 * frac:5.1f}% "
                f"{speed} it/s ETA {_duration(eta)}")
        if metrics:
            text += " " + " ".join(f"{k}={_format_metric(v)}" for k, v in metrics.items())
        if tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if done else ""))
            self._line_open = not done
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def flush(self):
        """Flush the JSON lines file and the TensorBoard writer."""
        if self._file:
            self._file.flush()
        if self._writer is not None:
            self._writer.flush()

    def close(self):
        """End an open progress line and close the file and the TensorBoard writer."""
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False
        if self._file:
            self._file.close()
            self._file = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _plugin_metadata(plugin: str) -> bytes:
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin)
    ).SerializeToString()
