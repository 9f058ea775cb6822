"""User classes and tasks (Locust's `User`, `HttpUser`, `@task`, `tasks`).

Class attributes beyond Locust's (`users`, `run_time`, `thresholds`, ...) are the plan's
default options; see `plan.py`. The runner's command-line flags win over them.
"""

from .http import HttpSession


class RescheduleTask(Exception):  # noqa: N818 (Locust's name)
    """Raise in a task to end it early without an error."""


def task(weight=1):
    """Marks a method as a task: `@task` (weight 1) or `@task(3)` (three times as often)."""

    def mark(function, weight=weight):
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
            raise ValueError(f"@task({weight!r}) on {function.__name__}: the weight must be an integer >= 1")
        function.locust_task_weight = weight
        return function

    if callable(weight):  # used bare: @task
        return mark(weight, 1)
    return mark


class User:
    """A virtual user. Each runs in its own WebAssembly instance, so attributes set on
    `self` are that user's alone."""

    #: Marks a base class that is not itself a user to run.
    abstract = True
    #: A wait time (`between(1, 3)`, ...) or a function returning seconds.
    wait_time = None
    #: Tasks, instead of `@task` methods: a list of functions, or {function: weight}.
    tasks = None
    #: The default target, used when the run gives no `--host`.
    host = None

    def on_start(self):
        """Runs once before the user's first task (log in, ...)."""

    def on_stop(self):
        """Runs once when the user stops."""

    @classmethod
    def setup(cls):
        """Runs once before any user starts (k6's setup); what it returns (JSON-serialisable)
        is what `setup_data()` gives every user."""

    @classmethod
    def teardown(cls, data):
        """Runs once after every user has stopped, with what `setup` returned."""


class HttpUser(User):
    """A user with `self.client`, an HTTP session whose requests the runner records."""

    abstract = True

    def __init__(self):
        self.client = HttpSession()
