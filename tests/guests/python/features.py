"""Exercises the Python SDK end to end (tests/tests/python.rs): one deterministic task that
uses JSON, form data, query parameters, headers, tags, catch_response with success() and
a ResponseError, a refused request, checks, a custom metric, setup/teardown data and a
task error; plus a second task whose only purpose is its declared weight."""

from wasmload import (
    HttpSession,
    HttpUser,
    Metric,
    ResponseError,
    check,
    iteration,
    setup_data,
    task,
    vu_id,
)

ECHO_MS = Metric.trend("echo_ms")


class Features(HttpUser):
    thresholds = ["checks:rate==1"]

    def wait_time(self):  # a custom wait function: the SDK waits it out after each task
        return 0.001

    @classmethod
    def setup(cls):
        response = HttpSession().get("/setup")
        return {"token": f"t-{response.status_code}"}

    @classmethod
    def teardown(cls, data):
        HttpSession().get("/teardown", headers={"x-setup": data["token"]})

    def on_start(self):
        self.client.post("/login", data={"user": f"vu{vu_id()}", "password": "s e/cret"})

    @task(1000000)
    def journey(self):
        sent = {"vu": vu_id(), "n": iteration(), "text": "é"}
        response = self.client.post(
            "/echo",
            json=sent,
            params={"q": "a b"},
            headers={"x-setup": setup_data()["token"]},
            tags={"kind": "api"},
        )
        check("echo returns the JSON", response.ok and response.json() == sent)
        check("headers are case-insensitive", response.headers["Content-Type"] == "application/json")
        ECHO_MS.add(response.elapsed.total_seconds() * 1000, tags={"page": "echo"})

        with self.client.get("/status/404", catch_response=True) as response:
            if response.status_code == 404:
                response.success()
        with self.client.get("/status/200", name="/broken", catch_response=True):
            raise ResponseError("the body was wrong")
        refused = self.client.get("http://127.0.0.1:1/elsewhere", name="/refused")
        check("a refused request has status 0 and an error", refused.status_code == 0 and refused.error)

        if iteration() == 1:
            return {}["missing"]

    @task
    def rare(self):
        self.client.get("/rare")
