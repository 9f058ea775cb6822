"""A shopper who logs in once, then browses far more often than they buy: the same scenario
as guest-examples/shop (Rust) and guest-examples/js/shop.js, written as a locustfile.

    runner build guest-examples/python/shop.py
    runner target &            # the demo target on 127.0.0.1:8080
    runner run guest-examples/python/shop.wasm --host http://127.0.0.1:8080 -u 20 -t 30s
"""

from locust import HttpUser, between, task   # a locustfile's imports work as they are

from wasmload import iteration, vu_id


class Shopper(HttpUser):
    wait_time = between(0.5, 1.5)

    def on_start(self):
        # The session cookie the server sets is sent by this user's later requests only.
        response = self.client.post("/login", data={"user": f"vu{vu_id()}", "password": "secret"})
        if response.status_code != 200:
            raise RuntimeError(f"login failed with status {response.status_code}")
        self.carts_seen = 0

    @task(6)
    def browse(self):
        concert = iteration() % 120  # ids above 100 do not exist: a few 404s
        self.client.get(f"/concert/{concert}", name="/concert/<id>")

    @task(2)
    def festival(self):
        self.client.get("/festival")

    @task(2)
    def cart(self):
        with self.client.get("/cart", catch_response=True) as response:
            if "items" in response.text:
                self.carts_seen += 1
                response.success()
            else:
                response.failure("the cart did not list any items: not logged in?")

    @task
    def flaky(self):
        self.client.get("/flaky")

    @task
    def slow(self):
        self.client.get("/slow", timeout=5)
