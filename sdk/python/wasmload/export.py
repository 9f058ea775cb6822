"""The glue `runner build` puts behind a scenario file: the WIT `scenario` export, built
from the file's user class. It runs at build time once (componentize-py snapshots the
initialised interpreter), so a plan with a mistake fails to build, not to run."""

import inspect
import json
import os
import traceback

from componentize_py_types import Err

from . import http, plan
from .user import RescheduleTask
from .vu import sleep
from .wait import WaitTime

_SDK_DIR = os.path.dirname(__file__)


def _error(e, task_name):
    """One line for the runner's error table: the exception and where the scenario raised it."""
    where = ""
    for frame in reversed(traceback.extract_tb(e.__traceback__)):
        if not frame.filename.startswith(_SDK_DIR):
            where = f" (at {os.path.basename(frame.filename)}:{frame.lineno} in {frame.name})"
            break
    message = str(e)
    return f"{type(e).__name__}: {message}{where}" if message else f"{type(e).__name__} in {task_name}{where}"


def _new_user(cls):
    # Locust users take the environment; a scenario that kept that signature gets None.
    takes_environment = len(inspect.signature(cls.__init__).parameters) > 1
    return cls(None) if takes_environment else cls()


def make_scenario(module):
    """The `Scenario` export for the user class in `module`."""
    cls = plan.find_user(module)
    described = plan.describe(cls)
    tasks = plan.tasks_of(cls)
    custom_wait = cls.wait_time is not None and not isinstance(cls.wait_time, WaitTime)
    state = {}

    def user():
        if "user" not in state:
            state["user"] = _new_user(cls)
        return state["user"]

    def call(function, name, *args):
        try:
            return function(*args)
        except Err:
            raise
        except RescheduleTask:
            return None
        except Exception as e:  # noqa: BLE001 (the scenario's own errors become task errors)
            raise Err(_error(e, name)) from None
        finally:
            http.end_of_call()

    class Scenario:
        def describe(self):
            return described

        def on_start(self):
            call(lambda: user().on_start(), "on_start")

        def run_task(self, index):
            if index >= len(tasks):
                raise Err(f"the runner asked for task {index}, which the plan does not have")
            name, _, function = tasks[index]
            current = user()
            call(function, name, current)
            if custom_wait:
                seconds = call(current.wait_time, "wait_time")
                if isinstance(seconds, (int, float)) and seconds > 0:
                    sleep(seconds)

        def on_stop(self):
            call(lambda: user().on_stop(), "on_stop")

        def setup(self):
            data = call(cls.setup, "setup")
            return None if data is None else json.dumps(data)

        def teardown(self, data):
            call(cls.teardown, "teardown", None if data is None else json.loads(data))

    return Scenario
