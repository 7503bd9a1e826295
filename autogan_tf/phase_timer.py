"""Where a search iteration's wall time goes: shared training, rewards, the controller, ...

The search wraps each part of an iteration in ``with timer.phase(name):``. Phases nest
(scoring the candidates inside the top-K inside growth): time is charged to the innermost
open phase only, so the totals add up to the time spent inside any phase, and whatever
the iteration spent outside every phase is reported as ``other``. Each iteration's
breakdown goes to the search log (``search_log.jsonl`` event ``phases``, and TensorBoard
under ``phases/``), which `bench/bench_search_phases.py` summarises.

Timing is host wall-clock time: a phase that only dispatches device work without waiting
for it would be under-charged. The search reads every step's result on the host (the
NaN check, the rewards), so each phase ends with its work done.
"""

from __future__ import annotations

import contextlib
import time


class PhaseTimer:
    """Accumulates wall-clock seconds per named phase, innermost phase wins.

    Args:
      clock: a function returning seconds (`time.perf_counter`; tests pass a fake one).
    """

    def __init__(self, clock=time.perf_counter):
        self._clock = clock
        self._totals: dict[str, float] = {}
        self._calls: dict[str, int] = {}
        self._stack: list[str] = []
        self._since = clock()
        self._window_start = self._since

    @contextlib.contextmanager
    def phase(self, name: str):
        """Charge the time until the block exits to ``name`` (pausing the enclosing phase).

        Args:
          name: the phase, e.g. ``"shared_training"``.
        """
        self._charge()
        self._stack.append(name)
        self._calls[name] = self._calls.get(name, 0) + 1
        try:
            yield
        finally:
            self._charge()
            self._stack.pop()

    def _charge(self):
        """Give the time since the last event to the innermost open phase (or to nothing)."""
        now = self._clock()
        if self._stack:
            name = self._stack[-1]
            self._totals[name] = self._totals.get(name, 0.0) + now - self._since
        self._since = now

    def pop(self) -> tuple[dict, dict]:
        """The seconds and entries per phase since the last `pop` (or construction); restart.

        Returns:
          ``(seconds, calls)``: ``seconds`` is ``{phase: seconds, ..., "other": seconds
          outside every phase, "total": seconds}``, phases in the order they were first
          entered; ``calls`` is ``{phase: times entered}`` (what per-call costs divide by).
        """
        self._charge()
        total = self._since - self._window_start
        seconds = dict(self._totals)
        seconds["other"] = max(0.0, total - sum(seconds.values()))
        seconds["total"] = total
        calls = {name: self._calls.get(name, 0) for name in self._totals}
        self._totals, self._calls = {}, {}
        self._window_start = self._since
        return seconds, calls


def fractions(breakdown: dict) -> dict:
    """Each phase's share of the total, from a `PhaseTimer.pop` record.

    Args:
      breakdown: ``{phase: seconds, ..., "total": seconds}``.

    Returns:
      ``{phase: fraction}`` without ``total`` (all zeros when the total is zero).
    """
    total = breakdown.get("total", 0.0)
    return {k: (v / total if total > 0 else 0.0) for k, v in breakdown.items() if k != "total"}
