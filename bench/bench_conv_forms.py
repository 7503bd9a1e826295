"""The supernet's small 3x3 convolutions: oneDNN's kernel against one matrix product (im2col).

At 4-16 px the search's steps reach 0.6-0.7 of the convolution peak (issue 17). This times
a training step of one convolution (forward, input and filter gradients) at the supernet's
shapes -- G 128 channels at batch 128, D 64 channels at batch 64 -- two ways: TensorFlow's
``conv2d`` (oneDNN) and the nine shifted copies of the input concatenated and multiplied
by the reshaped kernel in one ``matmul``. The peak kernels are timed in the same rounds.

    python bench/bench_conv_forms.py [--seconds=4] [--output=FILE.json]

FLOPs: 3 x 2 x batch x pixels x 9 x in x out per step (forward and both gradients).
"""

from __future__ import annotations

import argparse

import peak

# (batch, side, channels in = out): G's and D's convolutions at the three search stages.
SHAPES = [(128, 4, 128), (128, 8, 128), (128, 16, 128), (64, 4, 64), (64, 8, 64), (64, 16, 64)]


def conv_direct(x, kernel):
    import tensorflow as tf

    return tf.nn.conv2d(x, kernel, 1, "SAME")


def conv_im2col(x, kernel):
    """A 3x3 'same' convolution as one matmul over the nine shifted inputs."""
    import tensorflow as tf

    batch, height, width, channels = x.shape
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    columns = tf.concat([padded[:, i:i + height, j:j + width, :]
                         for i in range(3) for j in range(3)], axis=-1)
    y = tf.matmul(tf.reshape(columns, [-1, 9 * channels]),
                  tf.reshape(kernel, [9 * channels, -1]))
    return tf.reshape(y, [batch, height, width, -1])


def training_step(conv, x, kernel):
    """A blocking callable: forward and both gradients of ``sum(conv(x, kernel)^2)``."""
    import tensorflow as tf

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = conv(x, kernel)
            loss = tf.reduce_sum(y * y)
        dx, dk = tape.gradient(loss, [x, kernel])
        return tf.reduce_sum(dx) + tf.reduce_sum(dk)

    return lambda: step().numpy()


def run(seconds: float) -> dict:
    import numpy as np
    import tensorflow as tf

    probe = peak.PeakProbe(seconds_per_kernel=0.5)
    rows = []
    for batch, side, channels in SHAPES:
        x = tf.random.normal([batch, side, side, channels])
        kernel = tf.random.normal([3, 3, channels, channels], stddev=0.05)
        np.testing.assert_allclose(conv_direct(x, kernel).numpy(),
                                   conv_im2col(x, kernel).numpy(), rtol=1e-3, atol=1e-3)
        fns = {"onednn": training_step(conv_direct, x, kernel),
               "im2col": training_step(conv_im2col, x, kernel)}
        for fn in fns.values():
            fn(), fn()  # trace, create the oneDNN primitives
        samples = peak.interleaved(fns, seconds, rounds=3, min_calls=3, probe=probe)
        flops = 3 * 2 * batch * side * side * 9 * channels * channels
        row = {"batch": batch, "side": side, "channels": channels}
        for name, times in samples.items():
            gflops = flops / peak.summary(times)["median_seconds"] / 1e9
            row[name] = {"gflops": peak.sig(gflops), "calls": len(times)}
        row["im2col_over_onednn_time"] = peak.sig(row["onednn"]["gflops"] / row["im2col"]["gflops"])
        rows.append(row)
        print(f"batch {batch}, {side} px, {channels} channels: oneDNN {row['onednn']['gflops']:.0f} "
              f"GFLOP/s, im2col {row['im2col']['gflops']:.0f}", flush=True)
    result = {"machine": peak.machine(), "peak": probe.result(), "shapes": rows}
    for row in rows:
        row["onednn"].update(peak.fraction(row["onednn"]["gflops"], result["peak"]))
    return result


def main(argv=None):
    peak.quiet_tensorflow()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="timing per form and shape")
    parser.add_argument("--output", help="JSON file (default: stdout)")
    peak.add_thread_flags(parser)
    args = parser.parse_args(argv)
    peak.configure_threads(args.inter_op_threads, args.intra_op_threads)
    peak.emit(run(args.seconds), args.output)


if __name__ == "__main__":
    main()
