"""Input-pipeline throughput: images/s that ``autogan_tf.data.make_dataset`` delivers.

Prints one JSON object. For each case it reports the one-off preparation time
(listing + decoding the whole folder into memory, or drawing ``shapes``), then
the steady-state rate after warm-up: repetitions of >= ``--seconds`` each, median.

    python bench/bench_input.py [--data /tmp/cifar10] [--seconds 10] [--repeats 3]

``--data`` is an extracted CIFAR-10 JPEG folder (train/<class>/*.jpg); when it
is missing it is extracted from ``<repo>/../shared/data/cifar10-jpg.tar.gz``.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARBALL = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"


def ensure_cifar(folder):
    """Extract the CIFAR-10 JPEG tarball into ``folder`` unless it already holds train/."""
    if (pathlib.Path(folder) / "train").is_dir():
        return
    if not TARBALL.exists():
        raise SystemExit(f"--data={folder} has no train/ and {TARBALL} is missing")
    os.makedirs(folder, exist_ok=True)
    subprocess.run(["tar", "-xzf", str(TARBALL), "-C", str(folder)], check=True)


def rate(iterator, batch_size, seconds):
    """Images per second pulled from ``iterator`` over at least ``seconds``."""
    start, images = time.perf_counter(), 0
    while True:
        next(iterator)
        images += batch_size
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return images / elapsed


def bench_case(name, batch_size, image_size, seconds, repeats, warmup_batches=50, **kwargs):
    from autogan_tf import data

    data.clear_cache()
    start = time.perf_counter()
    ds = data.make_dataset(name, batch_size, image_size, **kwargs)
    iterator = iter(ds)
    next(iterator)  # the first batch includes the one-off decode into memory
    prepare = time.perf_counter() - start
    for _ in range(warmup_batches):
        next(iterator)
    rates = [rate(iterator, batch_size, seconds) for _ in range(repeats)]
    return {
        "dataset": name if not name.startswith("folder:") else "folder:<cifar10 jpg>/train",
        "batch_size": batch_size,
        "image_size": image_size,
        "prepare_seconds": round(prepare, 2),
        "images_per_second_median": round(statistics.median(rates)),
        "images_per_second_all": [round(r) for r in rates],
        "seconds_per_repeat": seconds,
    }


def bench_streamed_decode(folder, batch_size, seconds, repeats):
    """The on-the-fly path (folders too big for memory): decode every JPEG each epoch."""
    from autogan_tf import data

    data.clear_cache()
    saved, data.IN_MEMORY_BYTES = data.IN_MEMORY_BYTES, 0
    try:
        result = bench_case(f"folder:{folder}", batch_size, 32, seconds, repeats)
    finally:
        data.IN_MEMORY_BYTES = saved
    result["path"] = "streamed (decode each epoch)"
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/cifar10", help="extracted CIFAR-10 JPEG folder")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import tensorflow as tf

    ensure_cifar(args.data)
    folder = os.path.join(args.data, "train")
    results = []
    for size in (32, 8):
        case = bench_case(f"folder:{folder}", args.batch_size, size, args.seconds, args.repeats)
        case["path"] = "in memory (decoded once)"
        results.append(case)
    results.append(bench_streamed_decode(folder, args.batch_size, args.seconds, args.repeats))
    for size in (32, 8):
        case = bench_case("shapes", args.batch_size, size, args.seconds, args.repeats)
        case["path"] = "in memory (generated once)"
        results.append(case)
    print(json.dumps({
        "benchmark": "input pipeline images/s (autogan_tf.data.make_dataset)",
        "tensorflow": tf.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
