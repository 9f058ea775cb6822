// k6's `options` as the runner's plan options (the WIT `options` record).
//
// Supported: vus, duration, iterations (shared by all VUs, as in k6), stages, thresholds,
// and scenarios with the executors constant-vus, per-vu-iterations, shared-iterations,
// ramping-vus, constant-arrival-rate and ramping-arrival-rate (vus, duration, iterations,
// stages, startVUs, rate, startRate, timeUnit, preAllocatedVUs, maxVUs, startTime,
// maxDuration, exec). Other k6 options are not used by the runner and are ignored.
import { durationMs } from "./duration.js";

// k6 starts a scenario's VUs at once; the runner starts them at this rate per second.
const AT_ONCE = 1000000;

const count = (value, what) => {
  if (value === undefined || value === null) return null;
  if (!Number.isInteger(value) || value < 0) throw `${what} must be a whole number >= 0, not ${JSON.stringify(value)}`;
  return value;
};

const stagesOf = (stages, what) =>
  (stages || []).map((stage, i) => {
    if (!stage || stage.target === undefined) throw `${what}[${i}] needs a target and a duration`;
    return { target: Number(stage.target), durationMs: durationMs(stage.duration, `${what}[${i}].duration`) };
  });

/** thresholds: { "http_req_duration{name:/login}": ["p(95)<300", { threshold, abortOnFail, delayAbortEval }] } */
function thresholdsOf(thresholds) {
  const out = [];
  for (const [metric, list] of Object.entries(thresholds || {})) {
    for (const item of Array.isArray(list) ? list : [list]) {
      if (typeof item === "string") {
        out.push(`${metric}:${item}`);
      } else if (item && typeof item.threshold === "string") {
        const abort = item.abortOnFail ? `,abortOnFail${item.delayAbortEval ? `=${item.delayAbortEval}` : ""}` : "";
        out.push(`${metric}:${item.threshold}${abort}`);
      } else {
        throw `thresholds.${metric}: ${JSON.stringify(item)} is not a threshold such as "p(95)<300"`;
      }
    }
  }
  return out;
}

const EXECUTORS = [
  "constant-vus",
  "per-vu-iterations",
  "shared-iterations",
  "ramping-vus",
  "constant-arrival-rate",
  "ramping-arrival-rate",
];

/** One k6 scenario as the runner's `scenario-options`. */
function scenarioOf(name, s, functions) {
  const what = `options.scenarios.${name}`;
  const executor = s.executor;
  if (!EXECUTORS.includes(executor)) throw `${what}: the executor ${JSON.stringify(executor)} is not one of ${EXECUTORS.join(", ")}`;
  const exec = s.exec || "default";
  if (!functions.includes(exec)) throw `${what}.exec: the script exports no function ${JSON.stringify(exec)}`;
  const timeUnitMs = durationMs(s.timeUnit || "1s", `${what}.timeUnit`);
  const perSecond = (rate) => (rate === undefined ? null : (Number(rate) * 1000) / timeUnitMs);
  const vus = count(s.vus, `${what}.vus`);
  const out = {
    name,
    tasks: [exec],
    startMs: s.startTime === undefined ? 0 : durationMs(s.startTime, `${what}.startTime`),
    runTimeMs: null,
    users: null,
    spawnRate: null,
    iterations: null,
    sharedIterations: null,
    stages: [],
    arrivalRate: null,
    maxVus: null,
  };
  const runFor = s.duration !== undefined ? s.duration : s.maxDuration;
  if (runFor !== undefined) out.runTimeMs = durationMs(runFor, `${what}.duration`);
  switch (executor) {
    case "constant-vus":
      out.users = vus === null ? 1 : vus;
      out.spawnRate = AT_ONCE;
      if (out.runTimeMs === null) throw `${what}: constant-vus needs a duration`;
      break;
    case "per-vu-iterations":
      out.users = vus === null ? 1 : vus;
      out.spawnRate = AT_ONCE;
      out.iterations = count(s.iterations, `${what}.iterations`) || 1;
      break;
    case "shared-iterations":
      out.users = vus === null ? 1 : vus;
      out.spawnRate = AT_ONCE;
      out.sharedIterations = count(s.iterations, `${what}.iterations`) || 1;
      break;
    case "ramping-vus": {
      const start = count(s.startVUs, `${what}.startVUs`) || 0;
      out.stages = stagesOf(s.stages, `${what}.stages`);
      if (start > 0) out.stages.unshift({ target: start, durationMs: 0 });
      break;
    }
    case "constant-arrival-rate":
    case "ramping-arrival-rate":
      out.arrivalRate = perSecond(executor === "constant-arrival-rate" ? s.rate : s.startRate || 0);
      if (executor === "constant-arrival-rate" && out.arrivalRate === null) throw `${what}: constant-arrival-rate needs a rate`;
      if (executor === "ramping-arrival-rate") {
        out.stages = stagesOf(s.stages, `${what}.stages`).map((st) => ({ ...st, target: (st.target * 1000) / timeUnitMs }));
      }
      out.users = count(s.preAllocatedVUs, `${what}.preAllocatedVUs`);
      out.maxVus = count(s.maxVUs, `${what}.maxVUs`);
      break;
  }
  return out;
}

/** The plan's options from the script's exported `options` (functions: the exported task names). */
export function optionsOf(options, functions) {
  const o = options || {};
  const out = {
    users: count(o.vus, "options.vus"),
    spawnRate: null,
    runTimeMs: o.duration === undefined ? null : durationMs(o.duration, "options.duration"),
    // Not k6: the target for paths (`http.get("/a")`) when the run gives no --host.
    host: typeof o.host === "string" ? o.host : null,
    thresholds: thresholdsOf(o.thresholds),
    iterations: null,
    sharedIterations: count(o.iterations, "options.iterations"),
    stages: stagesOf(o.stages, "options.stages"),
    arrivalRate: null,
    maxVus: null,
    shape: [],
    scenarios: Object.entries(o.scenarios || {}).map(([name, s]) => scenarioOf(name, s, functions)),
  };
  // k6 starts all VUs at once; the runner's default would be one per second.
  if (out.users !== null) out.spawnRate = AT_ONCE;
  if (out.sharedIterations !== null && out.users === null) out.users = 1;
  return out;
}
