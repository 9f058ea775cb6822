"""Wait times (Locust's `between`, `constant`, `constant_pacing`, `constant_throughput`).

Each is a callable returning seconds, as in Locust, and also tells the runner what it is,
so the runner (not Python) does the waiting. A `wait_time` that is any other function is
called by the SDK after each task, which then sleeps on the host for what it returned.
"""

import random


class WaitTime:
    """A wait the runner understands; `wit()` is its form in the plan."""

    def __call__(self, *_user):
        raise NotImplementedError

    def wit(self):
        raise NotImplementedError


def _ms(seconds):
    if not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"a wait time must be a number of seconds >= 0, not {seconds!r}")
    return round(seconds * 1000)


class _Between(WaitTime):
    def __init__(self, low, high):
        if _ms(high) < _ms(low):
            raise ValueError(f"between({low}, {high}): the upper bound is below the lower one")
        self.low, self.high = low, high

    def __call__(self, *_user):
        return self.low + random.random() * (self.high - self.low)

    def wit(self):
        from wit_world.exports.scenario import WaitTime_Between

        return WaitTime_Between((_ms(self.low), _ms(self.high)))


class _Constant(WaitTime):
    def __init__(self, seconds):
        _ms(seconds)
        self.seconds = seconds

    def __call__(self, *_user):
        return self.seconds

    def wit(self):
        from wit_world.exports.scenario import WaitTime_Constant

        return WaitTime_Constant(_ms(self.seconds))


class _Pacing(WaitTime):
    def __init__(self, seconds):
        if _ms(seconds) == 0:
            raise ValueError(f"a pacing of {seconds!r} s is too short: use at least 0.001")
        self.seconds = seconds

    def __call__(self, *_user):
        return self.seconds

    def wit(self):
        from wit_world.exports.scenario import WaitTime_ConstantPacing

        return WaitTime_ConstantPacing(_ms(self.seconds))


def between(min_wait, max_wait):
    """Waits a uniformly random time between `min_wait` and `max_wait` seconds."""
    return _Between(min_wait, max_wait)


def constant(wait):
    """Waits `wait` seconds after each task."""
    return _Constant(wait)


def constant_pacing(wait):
    """Starts a task every `wait` seconds, however long the tasks take (if they take less)."""
    return _Pacing(wait)


def constant_throughput(task_runs_per_second):
    """Runs at most this many tasks per second per user (the inverse of constant_pacing)."""
    if not isinstance(task_runs_per_second, (int, float)) or task_runs_per_second <= 0:
        raise ValueError(f"constant_throughput needs a rate above 0, not {task_runs_per_second!r}")
    return _Pacing(1 / task_runs_per_second)
