"""Dynamic resetting of the shared GAN (the paper's Section 3.4).

While the supernet trains, the last ``reset_window`` generator and
discriminator losses are kept; when the spread of either falls below a
threshold (variance < 1e-3 in the official code and the paper; ``"std"``
compares the standard deviation) the shared GAN has stopped learning, and it
is re-initialised after this search iteration's controller training (never
the controller; see `shared_gan.SharedGAN.reinitialise`). The windows are
checkpointed with the search.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class LossWindow(tf.Module):
    """The last ``size`` losses, on device and checkpointed, with their spread.

    A ring buffer in a `tf.Variable` (rather than a Python deque) so a resumed search sees the
    same window it had saved.

    Args:
      size: how many of the most recent losses are kept.
      name: the module's name (its checkpoint scope).
    """

    def __init__(self, size: int, name=None):
        super().__init__(name=name)
        self.size = size
        self.values = tf.Variable(tf.zeros([size], tf.float64), trainable=False)
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False)

    def push(self, values):
        """Append every element of ``values`` (a scalar or a tensor), oldest dropped.

        Args:
          values: a loss, or a tensor of losses appended in order.
        """
        for v in tf.reshape(tf.cast(values, tf.float64), [-1]).numpy():
            self.values.scatter_nd_update([[int(self.count) % self.size]], [v])
            self.count.assign_add(1)

    @property
    def full(self) -> bool:
        """At least ``size`` losses have been pushed since the last `clear`."""
        return int(self.count) >= self.size

    def statistic(self, kind="std") -> float:
        """Standard deviation (``"std"``) or variance (``"var"``) of the kept losses
        (NaN with fewer than two).

        Args:
          kind: ``"var"`` for the variance; anything else gives the standard deviation.

        Returns:
          The statistic as a Python float.
        """
        n = min(int(self.count), self.size)
        if n < 2:
            return float("nan")
        var = float(np.var(self.values.numpy()[:n]))
        return var if kind == "var" else var ** 0.5

    def clear(self):
        """Empty the window (zeros and a count of 0)."""
        self.values.assign(tf.zeros_like(self.values))
        self.count.assign(0)


class ResetMonitor:
    """Watches the shared GAN's losses and says when a dynamic reset is due.

    Args:
      window: losses per window (``--reset_window``).
      statistic: ``"var"`` or ``"std"`` (``--reset_statistic``).
      threshold: a reset fires when either loss's statistic is below it.
    """

    def __init__(self, window: int, statistic: str, threshold: float):
        self.statistic = statistic
        self.threshold = threshold
        self.g_window = LossWindow(window, name="g_window")
        self.d_window = LossWindow(window, name="d_window")

    def checkpoint_items(self) -> dict:
        """Name -> module, for the run's `tf.train.Checkpoint` (names are the format)."""
        return {"g_window": self.g_window, "d_window": self.d_window}

    def push(self, d_losses, g_loss):
        """Record one generator iteration's losses (its n_critic D losses and the G loss).

        Args:
          d_losses: the discriminator losses of the iteration (a scalar or a vector).
          g_loss: the generator loss.
        """
        self.d_window.push(d_losses)
        self.g_window.push(g_loss)

    def due(self):
        """None, or the two statistics ``{"g_loss_var": ..., "d_loss_var": ...}`` (named by the
        statistic) when both windows are full and either is below the threshold."""
        if not (self.g_window.full and self.d_window.full):
            return None
        g_stat = self.g_window.statistic(self.statistic)
        d_stat = self.d_window.statistic(self.statistic)
        if g_stat < self.threshold or d_stat < self.threshold:
            return {f"g_loss_{self.statistic}": g_stat, f"d_loss_{self.statistic}": d_stat}
        return None

    def clear(self):
        """Start both windows afresh (after a reset)."""
        self.g_window.clear()
        self.d_window.clear()
