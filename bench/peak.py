"""Shared helpers of the training benchmarks: this machine's peak and careful timing.

The peak is what TensorFlow itself reaches on this CPU for the two kernels a
GAN step is made of -- a 3x3 'same' convolution (NHWC, the shape of the
generator's middle layers) and a large square matmul -- in float32 and in
bfloat16, measured in the same process as the figures that are divided by it.
On a machine shared with other people's jobs the absolute numbers move with
the load; the fractions of peak and the ratios measured in one run are what
to compare between runs. The benchmarks therefore time the peak kernels
(`PeakProbe`) in every round of their alternating measurements
(`interleaved`), under the same load as the figures.

    python bench/peak.py [--seconds=8]   # the peak alone, as JSON

FLOP convention of every benchmark here: 1 multiply-accumulate = 2 FLOPs.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

CONV_SHAPE = (64, 16, 16, 256)  # batch, height, width, channels (in = out)
MATMUL_SIZE = 2048


def quiet_tensorflow():
    """Silence TensorFlow's INFO chatter before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def configure_threads(inter_op: int, intra_op: int = 0):
    """TensorFlow's thread pools (0: TF's default), before the first TensorFlow op.

    The benchmarks default to ``inter_op=1``, as the command lines on hosts
    without GPUs (see `autogan_tf.distribute.configure_threads`).
    """
    import tensorflow as tf

    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    if intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)


def add_thread_flags(parser):
    parser.add_argument("--inter_op_threads", type=int, default=1,
                        help="TensorFlow inter-op threads (0: TensorFlow's default).")
    parser.add_argument("--intra_op_threads", type=int, default=0,
                        help="TensorFlow intra-op threads (0: TensorFlow's default).")


def add_search_model_flags(parser):
    """The paper's search model and batch (bench_supernet, profile_step): supernet G 128 /
    D 64, latent 128, batch 128 (G) / 64 (D), n_critic 5."""
    parser.add_argument("--gf_dim", type=int, default=128)
    parser.add_argument("--df_dim", type=int, default=64)
    parser.add_argument("--latent_dim", type=int, default=128)
    parser.add_argument("--g_batch", type=int, default=128)
    parser.add_argument("--d_batch", type=int, default=64)
    parser.add_argument("--n_critic", type=int, default=5)


def add_derived_model_flags(parser):
    """The derived model and batch of the strategy benchmarks (bench_distribute,
    bench_multi_worker): ``autogan_cifar10_a`` at G/D 64, batch 64/32, n_critic 5."""
    parser.add_argument("--arch", default="autogan_cifar10_a")
    parser.add_argument("--gf_dim", type=int, default=64)
    parser.add_argument("--df_dim", type=int, default=64)
    parser.add_argument("--latent_dim", type=int, default=128)
    parser.add_argument("--g_batch", type=int, default=64)
    parser.add_argument("--d_batch", type=int, default=32)
    parser.add_argument("--n_critic", type=int, default=5)


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages (the machine has ``os.cpu_count()`` cores)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict:
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "cpu_count": os.cpu_count(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "load_average": load_average()}


def time_calls(fn, seconds: float, warmup: int = 1, min_calls: int = 3) -> list[float]:
    """Wall times of ``fn()`` calls after ``warmup`` calls, for at least ``seconds``.

    ``fn`` must block until its work is done (e.g. end with ``.numpy()``).
    """
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < min_calls:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def interleaved(fns: dict, seconds: float, rounds: int = 3, min_calls: int = 1,
                probe: "PeakProbe | None" = None) -> dict:
    """Call times of several functions measured in alternating rounds.

    Each function gets ``rounds`` slices of ``seconds / rounds`` (at least
    ``min_calls`` calls each), A B C A B C ..., so a burst of load from other
    processes hits all of them alike. With a ``probe``, the peak kernels are
    timed in every round too, so the peak a figure is divided by was measured
    under the same load. Warm-up is the caller's job.
    """
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].extend(time_calls(fn, seconds / rounds, warmup=0, min_calls=min_calls))
        if probe is not None:
            probe.round()
    return samples


def sig(x: float, digits: int = 4) -> float:
    """``x`` rounded to ``digits`` significant digits (JSON stays readable at any scale)."""
    return float(f"{x:.{digits}g}")


def summary(times: list[float]) -> dict:
    return {"median_seconds": statistics.median(times), "calls": len(times),
            "min_seconds": min(times), "max_seconds": max(times)}


def _kernels(dtype_name: str):
    import tensorflow as tf

    dtype = tf.as_dtype(dtype_name)
    b, h, w, c = CONV_SHAPE
    x = tf.cast(tf.random.normal([b, h, w, c]), dtype)
    k = tf.cast(tf.random.normal([3, 3, c, c], stddev=0.05), dtype)
    n = MATMUL_SIZE
    m = tf.cast(tf.random.normal([n, n], stddev=0.05), dtype)
    # A scalar result that needs every output element forces completion cheaply.
    conv = tf.function(lambda: tf.reduce_sum(tf.cast(tf.nn.conv2d(x, k, 1, "SAME"), tf.float32)))
    matmul = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(m, m), tf.float32)))
    return {"conv3x3": (lambda: conv().numpy(), 2 * b * h * w * 9 * c * c),
            "matmul": (lambda: matmul().numpy(), 2 * n ** 3)}


class PeakProbe:
    """The peak kernels, timed a little in every round of a benchmark (see `interleaved`)."""

    def __init__(self, seconds_per_kernel: float = 1.0):
        self.seconds_per_kernel = seconds_per_kernel
        self._fns, self._flops = {}, {}
        for dtype in ("float32", "bfloat16"):
            for kernel, (fn, flops) in _kernels(dtype).items():
                fn()  # warm-up: trace and oneDNN primitive creation
                self._fns[(dtype, kernel)], self._flops[(dtype, kernel)] = fn, flops
        self.samples = {key: [] for key in self._fns}
        self.load = []

    def round(self):
        self.load.append(load_average())
        for key, fn in self._fns.items():
            self.samples[key].extend(time_calls(fn, self.seconds_per_kernel, warmup=0,
                                                min_calls=2))

    def result(self) -> dict:
        """GFLOP/s (median call) of ``{"float32"|"bfloat16": {"conv3x3"|"matmul": g}}``."""
        if not any(self.samples.values()):
            self.round()
        result = {"conv_shape_nhwc": list(CONV_SHAPE), "matmul_size": MATMUL_SIZE,
                  "rounds": len(self.load), "load_average_per_round": self.load}
        for (dtype, kernel), times in self.samples.items():
            result.setdefault(dtype, {})[kernel] = round(
                self._flops[(dtype, kernel)] / statistics.median(times) / 1e9, 1)
        return result


def measure_peak(seconds: float = 8.0, rounds: int = 2) -> dict:
    """The peak on its own: ``rounds`` rounds of ``seconds`` over the four kernels."""
    probe = PeakProbe(seconds / rounds / 4)
    for _ in range(rounds):
        probe.round()
    return probe.result()


def fraction(gflops: float, peak: dict, dtype: str = "float32") -> dict:
    """A rate as a fraction of the conv and matmul peaks of ``dtype``."""
    return {f"of_{dtype}_{k}_peak": sig(gflops / v) for k, v in peak[dtype].items()}


def emit(result: dict, output: str | None):
    """Write the JSON to ``output`` (a path) or stdout."""
    text = json.dumps(result, indent=1, sort_keys=False)
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    quiet_tensorflow()
    import argparse

    parser = argparse.ArgumentParser(description="This machine's conv and matmul peak.")
    parser.add_argument("--seconds", type=float, default=8.0)
    add_thread_flags(parser)
    args = parser.parse_args()
    configure_threads(args.inter_op_threads, args.intra_op_threads)
    emit({"machine": machine(), "peak": measure_peak(args.seconds)}, None)
