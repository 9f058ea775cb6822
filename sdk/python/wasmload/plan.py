"""The plan a user class describes: its tasks, wait time and default options, as the
WIT `plan` record the runner reads once before the run.

Options are class attributes, named as the runner's flags:

    users = 50                  # -u
    spawn_rate = 10             # -r
    run_time = "5m"             # -t (seconds, or "30s", "1m30s", "2h")
    iterations = 100            # -i, per user
    shared_iterations = 1000    # all users together
    stages = [("30s", 10), ("1m", 100), ("30s", 0)]       # (duration, target)
    arrival_rate = 200          # iterations per second (with stages: a ramping rate)
    max_vus = 500
    thresholds = ["http_req_duration:p(95)<300ms"]
    shape = [("1m", 10, 5), ("2m", 50, 10)]               # (until, users, spawn rate)
    scenarios = {"browse": {"tasks": ["browse"], "users": 5, "start_time": "10s"}}
"""

import re

from wit_world.exports import scenario as wit

from .user import User
from .wait import WaitTime

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def duration_ms(value, what):
    """Milliseconds in `value`: a number of seconds, or text such as "1m30s" or "250ms"."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a duration")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{what}: {value!r} is negative")
        return round(value * 1000)
    if isinstance(value, str):
        text = value.replace(" ", "")
        parts = _DURATION.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return round(sum(float(n) * _UNITS[u] for n, u in parts))
    raise ValueError(f"{what}: {value!r} is not a duration such as 30, \"30s\", \"1m30s\" or \"250ms\"")


def tasks_of(cls):
    """[(name, weight, function)] in definition order: `@task` methods, base classes first,
    or the `tasks` attribute."""
    declared = getattr(cls, "tasks", None)
    if declared:
        pairs = declared.items() if isinstance(declared, dict) else ((f, 1) for f in declared)
        found = []
        for function, weight in pairs:
            if not callable(function):
                raise ValueError(f"{cls.__name__}.tasks: {function!r} is not a function")
            if not isinstance(weight, int) or weight < 1:
                raise ValueError(f"{cls.__name__}.tasks: the weight of {function.__name__} must be an integer >= 1")
            found.append((function.__name__, weight, function))
        return found
    found = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            weight = getattr(member, "locust_task_weight", None)
            if weight is not None:
                found[name] = (name, weight, member)
    return list(found.values())


def _optional_int(cls, name):
    value = getattr(cls, name, None)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{cls.__name__}.{name} must be an integer >= 1, not {value!r}")
    return value


def _optional_float(cls, name):
    value = getattr(cls, name, None)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{cls.__name__}.{name} must be a number above 0, not {value!r}")
    return float(value)


def _stages(owner, stages):
    result = []
    for stage in stages or []:
        try:
            length, target = stage
        except (TypeError, ValueError):
            raise ValueError(f"{owner}: each stage is (duration, target), not {stage!r}") from None
        result.append(wit.Stage(target=float(target), duration_ms=duration_ms(length, f"{owner} stage")))
    return result


class _Attrs:
    """Reads load options from a dict as if they were class attributes."""

    def __init__(self, name, values):
        self.__name__ = name
        self.__dict__.update(values)


_SCENARIO_KEYS = {
    "tasks", "start_time", "run_time", "users", "spawn_rate", "iterations",
    "shared_iterations", "stages", "arrival_rate", "max_vus",
}


def _scenario(name, spec, task_names):
    if not isinstance(spec, dict):
        raise ValueError(f"scenario {name!r} must be a dict of options, not {spec!r}")
    unknown = set(spec) - _SCENARIO_KEYS
    if unknown:
        raise ValueError(f"scenario {name!r}: unknown option {sorted(unknown)[0]!r} (known: {', '.join(sorted(_SCENARIO_KEYS))})")
    attrs = _Attrs(f"scenario {name!r}", spec)
    tasks = [t if isinstance(t, str) else t.__name__ for t in spec.get("tasks", [])]
    for t in tasks:
        if t not in task_names:
            raise ValueError(f"scenario {name!r} names task {t!r}, which the user does not have")
    run_time = spec.get("run_time")
    return wit.ScenarioOptions(
        name=name,
        tasks=tasks,
        start_ms=duration_ms(spec.get("start_time", 0), f"scenario {name!r} start_time"),
        run_time_ms=None if run_time is None else duration_ms(run_time, f"scenario {name!r} run_time"),
        users=_optional_int(attrs, "users"),
        spawn_rate=_optional_float(attrs, "spawn_rate"),
        iterations=_optional_int(attrs, "iterations"),
        shared_iterations=_optional_int(attrs, "shared_iterations"),
        stages=_stages(f"scenario {name!r}", spec.get("stages")),
        arrival_rate=_optional_float(attrs, "arrival_rate"),
        max_vus=_optional_int(attrs, "max_vus"),
    )


def _shape(cls):
    steps = []
    for step in getattr(cls, "shape", None) or []:
        try:
            until, users, rate = step
        except (TypeError, ValueError):
            raise ValueError(f"{cls.__name__}.shape: each step is (until, users, spawn_rate), not {step!r}") from None
        steps.append(wit.ShapeStep(until_ms=duration_ms(until, "shape step"), users=int(users), spawn_rate=float(rate)))
    return steps


def _options(cls, task_names):
    run_time = getattr(cls, "run_time", None)
    thresholds = getattr(cls, "thresholds", None) or []
    if isinstance(thresholds, str) or not all(isinstance(t, str) for t in thresholds):
        raise ValueError(f"{cls.__name__}.thresholds must be a list of strings")
    scenarios = getattr(cls, "scenarios", None) or {}
    return wit.Options(
        users=_optional_int(cls, "users"),
        spawn_rate=_optional_float(cls, "spawn_rate"),
        run_time_ms=None if run_time is None else duration_ms(run_time, f"{cls.__name__}.run_time"),
        host=cls.host,
        thresholds=list(thresholds),
        iterations=_optional_int(cls, "iterations"),
        shared_iterations=_optional_int(cls, "shared_iterations"),
        stages=_stages(f"{cls.__name__}.stages", getattr(cls, "stages", None)),
        arrival_rate=_optional_float(cls, "arrival_rate"),
        max_vus=_optional_int(cls, "max_vus"),
        shape=_shape(cls),
        scenarios=[_scenario(name, spec, task_names) for name, spec in scenarios.items()],
    )


def wait_of(cls):
    """The plan's wait time; a custom function is waited out by the SDK (see `wait.py`)."""
    wait = cls.wait_time
    if wait is None:
        return wit.WaitTime_None_()
    if isinstance(wait, WaitTime):
        return wait.wit()
    if callable(wait):
        return wit.WaitTime_None_()
    raise ValueError(f"{cls.__name__}.wait_time must be between(..), constant(..), ... or a function")


def describe(cls):
    tasks = tasks_of(cls)
    if not tasks:
        raise ValueError(f"{cls.__name__} has no tasks: mark a method with @task")
    names = [name for name, _, _ in tasks]
    return wit.Plan(
        tasks=[wit.Task(name=name, weight=weight) for name, weight, _ in tasks],
        wait_time=wait_of(cls),
        options=_options(cls, names),
    )


def find_user(module):
    """The one concrete User subclass defined or imported in `module`."""
    users = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, User) and not value.__dict__.get("abstract", False)
    ]
    if not users:
        raise ValueError(f"{module.__name__}.py defines no user class: subclass HttpUser and add a @task method")
    if len(users) > 1:
        names = ", ".join(sorted(u.__name__ for u in users))
        raise ValueError(
            f"{module.__name__}.py defines several user classes ({names}); a plan runs one: "
            "keep one, or set `abstract = True` on the others"
        )
    return users[0]
