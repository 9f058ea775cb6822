"""The Locust example from the product card, unchanged but for its import line.

    runner build guest-examples/python/concert.py
    runner run guest-examples/python/concert.wasm --host http://127.0.0.1:8080 -u 10 -t 30s
"""

from wasmload import HttpUser, task, between   # only this import line may change


class ConcertScenarioUser(HttpUser):
    wait_time = between(1, 3)

    @task
    def festival_info_scenario(self):
        for i in range(3):
            with self.client.get(f"/concert/{i}", name="/concert/<id>",
                                 catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"Failed /concert/{i}")
