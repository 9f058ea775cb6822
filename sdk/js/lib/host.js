// The runner's WIT imports, with the differences between JS component toolchains smoothed
// over: u64 values arrive as Number (QuickJS) or BigInt (SpiderMonkey) and leave as Number;
// an absent option is null or undefined; a failed call throws with the error in `payload`.
import * as wit_http from "wasmload:scenario/http@0.1.0";
import * as wit_vu from "wasmload:scenario/vu@0.1.0";
import * as wit_metrics from "wasmload:scenario/metrics@0.1.0";

export const num = (value) => (value === null || value === undefined ? value : Number(value));
export const some = (value) => (value === null || value === undefined ? null : value);

/** Sends a request; returns { response } or { error: { tag, val } }. */
export function send(request) {
  try {
    return { response: wit_http.send(request) };
  } catch (e) {
    if (e && typeof e === "object" && "payload" in e) return { error: e.payload };
    throw e;
  }
}

export function report(id, failure) {
  wit_http.report(id, failure === null ? { tag: "ok" } : { tag: "err", val: String(failure) });
}

export const vuId = () => num(wit_vu.id());
export const iteration = () => num(wit_vu.iteration());
export const setupData = () => some(wit_vu.setupData());
export const envVars = () => wit_vu.envVars();

export function sleepMs(ms) {
  if (ms > 0) wit_vu.sleep(Math.min(Math.round(ms), 4294967295));
}

export function log(level, message) {
  wit_vu.log(level, String(message));
}

export function check(name, passed) {
  wit_metrics.check(String(name), Boolean(passed));
}

export function addMetric(name, kind, value, tags) {
  wit_metrics.add(String(name), kind, Number(value), pairs(tags));
}

/** [[k, v], ...] from an object (or null). */
export function pairs(object) {
  return object ? Object.entries(object).map(([k, v]) => [String(k), String(v)]) : [];
}
