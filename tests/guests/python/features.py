"""Exercises the Python SDK end to end (tests/tests/python.rs): one deterministic task that
uses JSON, form data, query parameters, headers, tags, catch_response with success() and
a ResponseError, a refused request, checks, a custom metric, setup/teardown data, headers
read after the host forgot them and a task error; plus a second task whose only purpose is
its declared weight."""

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
        # Kept on the user: its headers are read in later tasks, after the host forgot them.
        self.login = self.client.post("/login", data={"user": f"vu{vu_id()}", "password": "s e/cret"})

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
        check(
            "a response kept from on_start still has its headers",
            self.login.headers.get("set-cookie", "").startswith("session=vu-"),
        )
        if iteration() == 0:
            # More responses in one task than the host keeps headers for (64).
            first = self.client.get("/header/first", name="/header")
            for i in range(70):
                last = self.client.get(f"/header/{i}", name="/header")
            check("the first and last of 71 responses have their headers",
                  first.headers.get("x-echo") == "first" and last.headers.get("x-echo") == "69")
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
