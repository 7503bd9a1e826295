"""Every random stream of a run, derived from the run's seed and a named purpose.

A run has one seed (``--seed``). Each place that draws random numbers names its
purpose (the shared GAN's noise, the controller of level 0, the data order of
stage 2 ...), and this module turns ``(seed, purpose)`` into that stream's own
seed by hashing both together (BLAKE2b, so the result does not depend on
Python's per-process string hashing). Two purposes never start from the same
state, and a stream's numbers do not depend on how many other streams exist
or how much they have drawn.

Why: streams seeded by ad-hoc offsets collide. The search's noise generator
(``seed``) and its first controller (``seed + 101 * level`` at level 0) once
started from the same Philox state, so the architectures sampled and the noise
drawn at the same step came from the same random bits.

Three forms, for the three kinds of consumer:

* `generator`: a `tf.random.Generator`, for a stream that advances and is
  checkpointed (its position is restored on resume, as any variable's);
* `stateless`: an int64 ``[2]`` seed for TensorFlow's stateless ops, which a
  caller extends with a counter (an epoch, a batch index);
* `integer`: a non-negative 31-bit int, for APIs that take a Python int
  (Keras initialisers, Python's `random`).

The purposes are names built by the functions below (`controller`, `data`,
...), so every stream a run draws from is listed in one place.
"""

from __future__ import annotations

import contextlib
import hashlib
import random

# Purposes with no index.
GAN_NOISE = "gan/noise"                  # z of the adversarial training steps
GAN_INIT = "gan/init"                    # initial weights of G and D
GAN_AUGMENT = "gan/augment"              # D's input augmentation (--augment)
GAN_LABELS = "gan/labels"                # the classes asked of G (--conditional)
REWARD_SEEDS = "search/reward_seeds"     # the noise seed of each reward evaluation
TRAINING_DATA = "training/data_order"    # the real batches of the final training
SAMPLE_GRID = "training/sample_grid"     # the fixed z of the periodic sample grids
CLASSIFIER_WEIGHTS = "classifier/weights"      # a scoring classifier's initial weights
CLASSIFIER_DATA = "classifier/data_order"       # ... the order of its training images
CLASSIFIER_FLIPS = "classifier/augment_flips"   # ... its random flips
CLASSIFIER_SHIFTS = "classifier/augment_shifts"  # ... its random shifts
LABEL_FREE_WEIGHTS = "label_free/weights"      # a label-free network's initial weights
LABEL_FREE_DATA = "label_free/data_order"       # ... the order of its training images
LABEL_FREE_VIEWS = "label_free/views"           # ... the contrastive network's random views


def controller(level: int) -> str:
    """The purpose of level ``level``'s controller (or random sampler): its samples."""
    return f"search/controller{int(level)}/samples"


def controller_init(level: int, weight: int) -> str:
    """The purpose of the initial values of weight number ``weight`` of level ``level``'s
    controller."""
    return f"search/controller{int(level)}/init{int(weight)}"


def data(stage: int) -> str:
    """The purpose of the search's real-image order at ``stage``."""
    return f"search/data_order/stage{int(stage)}"


def reinit(iteration: int) -> str:
    """The purpose of the fresh shared-GAN weights a dynamic reset draws after ``iteration``."""
    return f"search/reinit/iteration{int(iteration)}"


def _digest(seed: int, purpose: str) -> bytes:
    if not isinstance(purpose, str) or not purpose:
        raise ValueError(f"a random stream needs a purpose name, got {purpose!r}")
    return hashlib.blake2b(f"{int(seed)}|{purpose}".encode(), digest_size=16).digest()


def integer(seed: int, purpose: str) -> int:
    """A seed in ``[0, 2**31)`` for ``purpose``: Keras initialisers and Python's `random`.

    Args:
      seed: the run's seed.
      purpose: the stream's name (the constants and functions of this module).
    """
    return int.from_bytes(_digest(seed, purpose)[:4], "little") & 0x7FFFFFFF


def _int63_pair(seed: int, purpose: str) -> tuple[int, int]:
    digest = _digest(seed, purpose)
    return tuple(int.from_bytes(digest[i:i + 8], "little") >> 1 for i in (0, 8))


def stateless(seed: int, purpose: str):
    """An int64 ``[2]`` seed for TensorFlow's stateless random ops, for ``purpose``.

    A caller that needs many draws folds a counter into it
    (``tf.random.experimental.stateless_fold_in``) rather than adding to it.

    Args:
      seed: the run's seed.
      purpose: the stream's name.

    Returns:
      An int64 tensor of shape ``[2]``.
    """
    import tensorflow as tf

    return tf.constant(_int63_pair(seed, purpose), tf.int64)


def generator(seed: int, purpose: str):
    """A `tf.random.Generator` (Philox) for ``purpose``, starting at counter 0.

    Its state is a variable: track it in the run's checkpoint, and a resumed run continues
    the stream where the checkpoint left it.

    Args:
      seed: the run's seed.
      purpose: the stream's name.
    """
    import tensorflow as tf

    key, counter = _int63_pair(seed, purpose)
    return tf.random.Generator.from_key_counter(key=key, counter=[counter, 0], alg="philox")


@contextlib.contextmanager
def python_random(seed: int, purpose: str):
    """Run the body with Python's `random` seeded for ``purpose``, then restore its state.

    Keras draws the seeds of unseeded initialisers from Python's `random`, so models
    built inside this block get the same initial weights for the same run seed: in a
    first run, in a rerun after a crash, and in a re-initialisation after a resume,
    without disturbing anyone else's use of `random`.

    Args:
      seed: the run's seed.
      purpose: the stream's name (`GAN_INIT`, `reinit` ...).
    """
    state = random.getstate()
    random.seed(integer(seed, purpose))
    try:
        yield
    finally:
        random.setstate(state)
