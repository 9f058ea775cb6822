"""Write load-test scenarios in Python for the `runner`, with Locust's API.

    from wasmload import HttpUser, task, between

    class ConcertScenarioUser(HttpUser):
        wait_time = between(1, 3)

        @task
        def festival_info_scenario(self):
            for i in range(3):
                with self.client.get(f"/concert/{i}", name="/concert/<id>",
                                     catch_response=True) as response:
                    if response.status_code != 200:
                        response.failure(f"Failed /concert/{i}")

`runner build scenario.py` turns the file into a plan (a WebAssembly component, through
componentize-py) and `runner run scenario.wasm` runs it: one instance of the component,
with its own Python interpreter, per virtual user. Requests are sent and timed by the
runner, not by Python, so the statistics are the same as for a Rust plan.

`from locust import ...` works too, for the names below.
"""

from .http import HttpSession, Response, ResponseError
from .metrics import Metric, check
from .user import HttpUser, RescheduleTask, User, task
from .vu import iteration, log, setup_data, sleep, vu_id
from .wait import between, constant, constant_pacing, constant_throughput

__all__ = [
    "HttpSession",
    "HttpUser",
    "Metric",
    "RescheduleTask",
    "Response",
    "ResponseError",
    "User",
    "between",
    "check",
    "constant",
    "constant_pacing",
    "constant_throughput",
    "iteration",
    "log",
    "setup_data",
    "sleep",
    "task",
    "vu_id",
]
