"""What a virtual user knows about itself: its number, its iteration, the setup data;
and what it asks of the runner: sleeping and logging."""

import json

from wit_world.imports import vu as _vu

_LEVELS = {
    "debug": _vu.LogLevel.DEBUG,
    "info": _vu.LogLevel.INFO,
    "warn": _vu.LogLevel.WARN,
    "warning": _vu.LogLevel.WARN,
    "error": _vu.LogLevel.ERROR,
}


def vu_id():
    """This virtual user's number, from 1."""
    return _vu.id()


def iteration():
    """How many tasks this user has started before the current one."""
    return _vu.iteration()


def sleep(seconds):
    """Sleeps on the runner; the user's interpreter does not hold a thread meanwhile."""
    if seconds > 0:
        _vu.sleep(min(round(seconds * 1000), 2**32 - 1))


def log(message, level="info"):
    """Writes a line to the runner's log, prefixed with the user's number."""
    if level not in _LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(_LEVELS)}")
    _vu.log(_LEVELS[level], str(message))


def setup_data():
    """What the user class's `setup()` returned (decoded from JSON), or None."""
    data = _vu.setup_data()
    return None if data is None else json.loads(data)
