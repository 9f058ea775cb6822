// `k6`: check, sleep, group, fail.
import { check as recordCheck, sleepMs } from "../lib/host.js";
import { state } from "../lib/state.js";

/** Runs each named predicate on `value`, records each as a check, and returns whether all passed. */
export function check(value, sets, _tags) {
  let all = true;
  for (const [name, predicate] of Object.entries(sets || {})) {
    const passed = Boolean(typeof predicate === "function" ? predicate(value) : predicate);
    recordCheck(name, passed);
    all = all && passed;
  }
  return all;
}

/** Waits `seconds` on the runner (the VU holds no thread meanwhile). */
export function sleep(seconds) {
  sleepMs(Number(seconds) * 1000);
}

/** Runs `fn` with its requests tagged `group: ::name` (nested groups join with `::`). */
export function group(name, fn) {
  const outer = state.group;
  state.group = `${outer}::${name}`;
  try {
    return fn();
  } finally {
    state.group = outer;
  }
}

/** Ends the iteration with an error. */
export function fail(message) {
  throw String(message === undefined ? "fail() called" : message);
}

export default { check, sleep, group, fail };
