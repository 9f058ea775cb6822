// A shopper who logs in once, then browses far more often than they buy: the same scenario
// as guest-examples/shop (Rust) and guest-examples/python/shop.py, in k6's style.
//
//   runner build guest-examples/js/shop.js
//   runner target &            # the demo target on 127.0.0.1:8080
//   runner run guest-examples/js/shop.wasm --host http://127.0.0.1:8080 -u 20 -t 30s
import http from "k6/http";
import { check, fail, sleep } from "k6";
import exec from "k6/execution";

export const options = {
  vus: 20,
  duration: "30s",
  thresholds: { http_req_duration: ["p(95)<500"], checks: ["rate>0.9"] },
};

let loggedIn = false;

function login() {
  const res = http.post("/login", { user: `vu${exec.vu.idInTest}`, password: "secret" });
  if (res.status !== 200) fail(`login failed with status ${res.status}`);
  loggedIn = true; // the session cookie goes with this VU's later requests
}

function pick(weights) {
  const total = weights.reduce((sum, [, w]) => sum + w, 0);
  let roll = Math.random() * total;
  for (const [task, weight] of weights) {
    if ((roll -= weight) < 0) return task;
  }
  return weights[0][0];
}

const tasks = [
  [() => http.get(`/concert/${exec.vu.iterationInInstance % 120}`, { tags: { name: "/concert/<id>" } }), 6],
  [() => http.get("/festival"), 2],
  [() => check(http.get("/cart"), { "the cart lists items": (r) => r.body.includes("items") }), 2],
  [() => http.get("/flaky"), 1],
  [() => http.get("/slow", { timeout: "5s" }), 1],
];

export default function () {
  if (!loggedIn) login();
  pick(tasks)();
  sleep(0.5 + Math.random());
}
