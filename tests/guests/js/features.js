// Exercises the JavaScript SDK end to end (tests/tests/javascript.rs): JSON and form
// bodies, headers, tags and groups, expected statuses, a refused request, checks, a custom
// metric, setup/teardown data, __ENV, scenarios with exec, and a thrown error.
import http from "k6/http";
import { check, group } from "k6";
import { Trend } from "k6/metrics";
import { helper } from "./helper.js";

const echoMs = new Trend("echo_ms");

export const options = {
  thresholds: { checks: ["rate==1"], "http_reqs{scenario:extra}": ["count==2"] },
  scenarios: {
    main: { executor: "per-vu-iterations", vus: 2, iterations: 3, exec: "default" },
    extra: { executor: "shared-iterations", vus: 1, iterations: 2, exec: "extra", startTime: "0s" },
  },
};

export function setup() {
  const res = http.get("/setup");
  return { token: `t-${res.status}` };
}

export default function (data) {
  const sent = { vu: __VU, n: __ITER, text: "é€😀" };
  const res = http.post("/echo", JSON.stringify(sent), {
    headers: { "Content-Type": "application/json", "x-setup": data.token, "x-env": __ENV.GREETING },
    tags: { kind: "api" },
  });
  check(res, {
    "echo returns the JSON": (r) => JSON.stringify(r.json()) === JSON.stringify(sent),
    "headers are canonical": (r) => r.headers["Content-Type"] === "application/json",
    "timings add up": (r) => r.timings.duration >= r.timings.waiting,
  });
  echoMs.add(res.timings.duration, { page: "echo" });

  group("forms", () => {
    http.post("/form", { user: `vu${__VU}`, password: "s e/cret" });
  });
  http.get("/status/404", { responseCallback: http.expectedStatuses(200, { min: 404, max: 404 }) });
  http.get("/status/201", { tags: { name: "/unexpected" }, responseCallback: http.expectedStatuses(200) });
  const refused = http.get("http://127.0.0.1:1/elsewhere", { tags: { name: "/refused" } });
  check(refused, { "a refused request has status 0 and an error": (r) => r.status === 0 && r.error !== "" });
  if (__ITER === 1) helper();
}

export function extra() {
  http.get("/extra");
}

export function teardown(data) {
  http.get("/teardown", { headers: { "x-setup": data.token } });
}
