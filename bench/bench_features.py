"""Feature-extraction throughput of the IS/FID networks, as a fraction of this machine's peak.

    python bench/bench_features.py [--seconds=20] > bench_features.json

Prints one JSON object:

* ``matmul``: fp32 GFLOP/s of a large square ``tf.matmul`` measured in the same
  run (the practical peak the network figures are compared with);
* ``inception_v3_299``: ``keras.applications.InceptionV3(weights=None)`` up to
  the average pool plus a 2048x1008 logits matmul -- the same shape and FLOPs
  as the 2015-12-05 graph (which cannot be downloaded here) -- fed uint8
  32x32 images resized to 299x299 inside the timed call, as in evaluation;
* ``small_classifier``: the ``autogan-train-classifier`` CNN at 32x32.

Each network: warm-up calls, then repeated calls for at least ``--seconds``;
images/s is batch size over the median call time, and ``fraction_of_peak``
is images/s x FLOPs/image over the matmul rate. FLOPs = 2 x multiply-adds
of the convolutions and dense layers.
"""

import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_float("seconds", 20.0, "Minimum timed seconds per measurement.")
flags.DEFINE_integer("inception_batch", 50, "Images per call for the Inception-shaped network.")
flags.DEFINE_integer("small_batch", 500, "Images per call for the small classifier.")
flags.DEFINE_integer("matmul_size", 2048, "Side of the square matrices for the peak measurement.")
flags.DEFINE_list("only", [], "Subset of: matmul, inception_v3_299, small_classifier.")


def _timed_calls(fn, seconds, warmup=2):
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def measure_matmul(size, seconds):
    import tensorflow as tf

    a = tf.random.normal([size, size], dtype=tf.float32)
    b = tf.random.normal([size, size], dtype=tf.float32)
    step = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))  # the sum forces completion
    times = _timed_calls(lambda: step().numpy(), seconds)
    median = statistics.median(times)
    return {"size": size, "calls": len(times), "median_seconds": median,
            "gflops": 2 * size ** 3 / median / 1e9}


def _inception_shaped():
    import keras

    base = keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg",
                                          input_shape=(299, 299, 3))
    logits = keras.layers.Dense(1008, use_bias=False, name="logits")(base.output)
    return keras.Model(base.input, logits, name="inception_v3_shaped")


def measure_extractor(extractor, model, batch, side, seconds):
    import numpy as np
    import tensorflow as tf

    from autogan_tf.metrics.classifiers import classifier_macs

    images = tf.constant(np.random.default_rng(0).integers(0, 256, (batch, side, side, 3), np.uint8))
    times = _timed_calls(lambda: [t.numpy() for t in extractor(images)], seconds)
    median = statistics.median(times)
    flops = 2 * classifier_macs(model)
    return {"batch": batch, "calls": len(times), "input": f"{side}x{side} uint8",
            "network_input": list(model.inputs[0].shape[1:3]), "feature_dim": extractor.feature_dim,
            "median_seconds_per_call": median, "images_per_second": batch / median,
            "gflops_per_image": flops / 1e9, "achieved_gflops": flops * batch / median / 1e9}


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from autogan_tf.metrics.classifiers import KerasClassifierExtractor, build_classifier

    wanted = set(FLAGS.only) or {"matmul", "inception_v3_299", "small_classifier"}
    keras.utils.set_random_seed(0)
    result = {"tensorflow": tf.__version__, "cpu_count": os.cpu_count(),
              "timed_seconds_each": FLAGS.seconds}
    if "matmul" in wanted:
        result["matmul"] = measure_matmul(FLAGS.matmul_size, FLAGS.seconds)
    if "inception_v3_299" in wanted:
        model = _inception_shaped()
        result["inception_v3_299"] = measure_extractor(
            KerasClassifierExtractor(model), model, FLAGS.inception_batch, 32, FLAGS.seconds)
    if "small_classifier" in wanted:
        model = build_classifier(10, image_size=32, width=32)
        result["small_classifier"] = measure_extractor(
            KerasClassifierExtractor(model), model, FLAGS.small_batch, 32, FLAGS.seconds)
    peak = result.get("matmul", {}).get("gflops")
    for key in ("inception_v3_299", "small_classifier"):
        if peak and key in result:
            result[key]["fraction_of_peak"] = result[key]["achieved_gflops"] / peak
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    app.run(main)
