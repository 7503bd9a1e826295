"""The beam of multi-level architecture search: the top-K of the last finished stage.

When a stage ends, the controller samples candidates, they are scored, and the
``topk`` best, with the controller's LSTM states after their last decision,
become the beam. The next stage's controller starts from those states and
extends those prefixes by one cell. The beam is a set of fixed-size variables
(``topk`` rows, padded to the full architecture length) so one checkpoint
holds it.
"""

from __future__ import annotations

import tensorflow as tf

from autogan_tf import search_space as ss


def pad_archs(archs, num_cells: int) -> tf.Tensor:
    """Architecture vectors ``[n, L]`` (a prefix) zero-padded to the length of ``num_cells``.

    The beam's variables have a fixed width, so prefixes of any stage are stored padded.

    Args:
      archs: ``n`` architecture prefixes of equal length ``L``, as a nested list or tensor.
      num_cells: cells of the full architecture whose vector length is padded to.

    Returns:
      An int32 tensor ``[n, vector_length(num_cells)]``.
    """
    archs = tf.convert_to_tensor(archs, tf.int32)
    pad = ss.vector_length(num_cells) - archs.shape[1]
    return tf.pad(archs, [[0, 0], [0, pad]])


def best(archs: list, hidden, rewards: list, k: int, hid_size: int):
    """The ``k`` highest-reward candidates, best first.

    Args:
      archs: candidate architecture vectors (lists of ints).
      hidden: the sampler's ``(h, c)`` after each candidate, or None (random
        search, which has no states: zeros are kept).
      rewards: the candidates' rewards.
      k: how many to keep.
      hid_size: the LSTM size, for the zero states.

    Returns:
      ``(archs, (h, c), rewards)`` of the kept candidates.
    """
    order = sorted(range(len(archs)), key=lambda i: -rewards[i])[:k]
    if hidden is None:
        hidden = (tf.zeros([len(archs), hid_size]), tf.zeros([len(archs), hid_size]))
    return ([archs[i] for i in order], (tf.gather(hidden[0], order),
                                        tf.gather(hidden[1], order)),
            [rewards[i] for i in order])


class Beam:
    """The kept architectures and controller states, as checkpointed variables.

    Args:
      topk: the beam's capacity (``--topk``).
      hid_size: the controller's LSTM size.
      num_cells: cells of a full architecture (the rows' padded length).
      mlas: multi-level search; without it there is never a beam.
    """

    def __init__(self, topk: int, hid_size: int, num_cells: int, mlas: bool = True):
        self.num_cells = num_cells
        self.mlas = mlas
        length = ss.vector_length(num_cells)
        self.archs = tf.Variable(tf.zeros([topk, length], tf.int32), name="beam_archs")
        self.size = tf.Variable(0, dtype=tf.int32, name="beam_len")
        self.h = tf.Variable(tf.zeros([topk, hid_size]), name="beam_h")
        self.c = tf.Variable(tf.zeros([topk, hid_size]), name="beam_c")

    def checkpoint_items(self) -> dict:
        """Name -> variable, for the run's `tf.train.Checkpoint` (names are the format)."""
        return {"beam_archs": self.archs, "beam_len": self.size, "beam_h": self.h,
                "beam_c": self.c}

    def prefix(self, stage: int):
        """``(prev_archs, prev_hidden)`` the sampler of ``stage`` extends; ``(None, None)``
        for the first stage, before the first growth and without multi-level search.

        Args:
          stage: the search stage (number of cells already fixed by earlier stages).

        Returns:
          The kept prefixes cut to the length of ``stage`` cells, ``[size, L]``, and the
          controller states ``(h, c)`` after them; or ``(None, None)``.
        """
        n = int(self.size)
        if n == 0 or stage == 0 or not self.mlas:
            return None, None
        length = sum(ss.cell_vector_length(i) for i in range(stage))
        return self.archs[:n, :length], (self.h[:n], self.c[:n])

    def set(self, archs: list, hidden):
        """Keep ``archs`` (at most ``topk`` prefixes) with their states ``(h, c)``.

        Rows past ``len(archs)`` are zeroed, and `size` records how many are valid.

        Args:
          archs: the prefixes to keep, best first (lists of ints of equal length).
          hidden: the controller's ``(h, c)`` after each prefix, each ``[len(archs), hid_size]``.
        """
        k = len(archs)
        rows = [[i] for i in range(k)]
        for variable, values in ((self.archs, pad_archs(archs, self.num_cells)),
                                 (self.h, hidden[0]), (self.c, hidden[1])):
            variable.assign(tf.tensor_scatter_nd_update(tf.zeros_like(variable), rows, values))
        self.size.assign(k)
