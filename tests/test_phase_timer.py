import pytest

from autogan_tf import phase_timer


class FakeClock:
    """A clock the test advances by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def test_time_goes_to_the_innermost_phase_and_the_rest_to_other():
    clock = FakeClock()
    timer = phase_timer.PhaseTimer(clock)
    clock.advance(1.0)                      # outside any phase: other
    with timer.phase("top_k"):
        clock.advance(2.0)
        with timer.phase("rewards"):
            clock.advance(3.0)
        clock.advance(0.5)
    with timer.phase("rewards"):
        clock.advance(4.0)
    clock.advance(0.25)                     # other
    seconds, calls = timer.pop()
    assert seconds == {"top_k": 2.5, "rewards": 7.0, "other": 1.25, "total": 10.75}
    assert list(seconds)[:2] == ["top_k", "rewards"]  # order of first entry
    assert calls == {"top_k": 1, "rewards": 2}


def test_pop_starts_a_new_window():
    clock = FakeClock()
    timer = phase_timer.PhaseTimer(clock)
    with timer.phase("a"):
        clock.advance(2.0)
    timer.pop()
    with timer.phase("b"):
        clock.advance(3.0)
    assert timer.pop() == ({"b": 3.0, "other": 0.0, "total": 3.0}, {"b": 1})


def test_a_phase_left_by_an_exception_is_still_charged():
    clock = FakeClock()
    timer = phase_timer.PhaseTimer(clock)
    with pytest.raises(RuntimeError):
        with timer.phase("shared_training"):
            clock.advance(1.5)
            raise RuntimeError("diverged")
    clock.advance(1.0)
    assert timer.pop() == ({"shared_training": 1.5, "other": 1.0, "total": 2.5},
                           {"shared_training": 1})


def test_fractions():
    assert phase_timer.fractions({"a": 1.0, "other": 3.0, "total": 4.0}) == {"a": 0.25,
                                                                              "other": 0.75}
    assert phase_timer.fractions({"other": 0.0, "total": 0.0}) == {"other": 0.0}
