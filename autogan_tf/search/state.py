"""Where a search is and what it has found so far, as checkpointed variables.

A search iteration has two phases, shared GAN training then controller
training, each counted in steps. The position (iteration, phase, step), a
pending dynamic reset and the history (stage results, resets, growth) are
`tf.Variable`s, so one checkpoint holds them with the models: a search
resumed after a crash continues from the step it had saved, and a NaN
roll-back returns to it. The history is small and irregular, so it is kept as
JSON text in one string variable.
"""

from __future__ import annotations

import json

import tensorflow as tf

SHARED, CONTROLLER = 0, 1  # the phases of a search iteration


class SearchState:
    """The position of a search in its iterations, and its history.

    The checkpoint names of the variables (`checkpoint_items`) are part of the
    checkpoint format and must not change.
    """

    def __init__(self):
        self._iteration = tf.Variable(0, dtype=tf.int64, name="iteration")
        self._phase = tf.Variable(SHARED, dtype=tf.int64, name="phase")
        self._phase_step = tf.Variable(0, dtype=tf.int64, name="phase_step")
        self._pending_reset = tf.Variable(False, name="pending_reset")
        self._history = tf.Variable("{}", dtype=tf.string, name="history")

    def checkpoint_items(self) -> dict:
        """Name -> variable, for the run's `tf.train.Checkpoint`."""
        return {"iteration": self._iteration, "phase": self._phase,
                "phase_step": self._phase_step, "pending_reset": self._pending_reset,
                "history": self._history}

    # -- position ----------------------------------------------------------------
    @property
    def iteration(self) -> int:
        """The search iteration under way (0-based)."""
        return int(self._iteration)

    @property
    def phase(self) -> int:
        """`SHARED` or `CONTROLLER`."""
        return int(self._phase)

    @property
    def step(self) -> int:
        """Steps done in the current phase."""
        return int(self._phase_step)

    @property
    def at_iteration_start(self) -> bool:
        """Nothing of the current iteration is done yet (shared phase, step 0)."""
        return self.phase == SHARED and self.step == 0

    def position(self) -> dict:
        """The position as logged with events."""
        return {"iteration": self.iteration, "phase": self.phase, "phase_step": self.step}

    def count_step(self) -> int:
        """One more step done in this phase; returns the count."""
        self._phase_step.assign_add(1)
        return self.step

    def start_controller_phase(self):
        """Move from shared GAN training to controller training, at step 0."""
        self._phase.assign(CONTROLLER)
        self._phase_step.assign(0)

    def next_iteration(self):
        """Finish the iteration: the next one starts in the shared phase at step 0."""
        self._phase.assign(SHARED)
        self._phase_step.assign(0)
        self._iteration.assign_add(1)

    # -- dynamic reset -------------------------------------------------------------
    @property
    def pending_reset(self) -> bool:
        """A dynamic reset fired in this iteration's shared training; the shared GAN is
        re-initialised after the controller phase."""
        return bool(self._pending_reset)

    def set_pending_reset(self, value: bool):
        """Mark (or clear) a dynamic reset to apply after the controller phase.

        Args:
          value: True when a reset fired, False once it has been applied.
        """
        self._pending_reset.assign(value)

    # -- history -------------------------------------------------------------------
    def history(self) -> dict:
        """Key -> list of records: ``stage_results``, ``resets``, ``stage_changes``."""
        return json.loads(self._history.numpy().decode())

    def records(self, key: str) -> list:
        """The history's records under one key.

        Args:
          key: ``"stage_results"``, ``"resets"`` or ``"stage_changes"`` (any key `append` used).

        Returns:
          The list of records, empty when none were added under ``key``.
        """
        return self.history().get(key, [])

    def append(self, key: str, record: dict):
        """Add a JSON-able ``record`` to the history's list ``key``.

        The whole history is rewritten into its string variable, which is cheap because the
        history stays small (a few records per search iteration).

        Args:
          key: the list to append to (created when missing).
          record: a JSON-serialisable dict.
        """
        history = self.history()
        history.setdefault(key, []).append(record)
        self._history.assign(json.dumps(history))

    def grown_at(self, iteration: int) -> bool:
        """The search added a cell at ``iteration`` (recorded in the history).

        Args:
          iteration: a search iteration (0-based).

        Returns:
          True when a ``stage_changes`` record names that iteration.
        """
        return any(change["iteration"] == iteration for change in self.records("stage_changes"))
