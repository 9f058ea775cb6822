// The glue `runner build` puts behind a k6-style script: the WIT `scenario` export.
//
// Tasks are the script's `default` function and every function a scenario names in `exec`.
// Each export catches what the script throws and hands the runner a string (the one error
// form every JS component toolchain passes through). Describing runs at build time, so a
// script with bad options fails to build rather than to run.
import { envVars, iteration, log, setupData, vuId } from "./lib/host.js";
import { optionsOf } from "./lib/options.js";
import { install as installRandom } from "./lib/random.js";

function message(e) {
  if (typeof e === "string") return e;
  if (e && typeof e === "object" && typeof e.message === "string") {
    const where = typeof e.stack === "string" ? e.stack.split("\n").map((l) => l.trim()).find((l) => l.startsWith("at ")) : "";
    return `${e.name || "Error"}: ${e.message}${where ? ` (${where})` : ""}`;
  }
  return String(e);
}

/** Runs `fn`, turning anything it throws into the string the runner records. */
function guarded(fn) {
  try {
    return fn();
  } catch (e) {
    throw message(e);
  }
}

function installGlobals() {
  const define = (name, get) => Object.defineProperty(globalThis, name, { get, configurable: true });
  define("__VU", vuId);
  define("__ITER", iteration);
  let env = null;
  define("__ENV", () => (env === null ? (env = Object.fromEntries(envVars())) : env));
  if (typeof globalThis.console === "undefined") {
    const line = (level) => (...args) => log(level, args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
    globalThis.console = { log: line("info"), info: line("info"), debug: line("debug"), warn: line("warn"), error: line("error") };
  }
}

/** The `scenario` export for `script` (the module's namespace). */
export function makeScenario(script) {
  const functions = Object.keys(script).filter((k) => typeof script[k] === "function");
  const tasks = [];
  if (typeof script.default === "function") tasks.push("default");
  for (const s of Object.values((script.options && script.options.scenarios) || {})) {
    const exec = (s && s.exec) || "default";
    if (!tasks.includes(exec)) tasks.push(exec);
  }
  if (tasks.length === 0) throw "the script exports no default function (k6's `export default function () { ... }`)";
  const plan = {
    tasks: tasks.map((name) => ({ name, weight: 1 })),
    waitTime: { tag: "none" },
    options: optionsOf(script.options, functions),
  };
  // As in k6, a function other than `default` runs only in the scenarios whose `exec` names
  // it (weight 0), also when command-line flags replace the scenarios.
  if (tasks[0] === "default") plan.tasks.forEach((t) => (t.weight = t.name === "default" ? 1 : 0));
  installGlobals();
  installRandom();

  let data;
  let dataRead = false;
  const dataOnce = () => {
    if (!dataRead) {
      dataRead = true;
      const text = setupData();
      data = text === null ? undefined : JSON.parse(text);
    }
    return data;
  };

  return {
    describe() {
      return plan;
    },
    onStart() {},
    runTask(index) {
      const name = tasks[Number(index)];
      if (name === undefined) throw `the runner asked for task ${index}, which the plan does not have`;
      guarded(() => script[name](dataOnce()));
    },
    onStop() {},
    setup() {
      if (typeof script.setup !== "function") return null;
      const value = guarded(() => script.setup());
      return value === undefined ? null : JSON.stringify(value);
    },
    teardown(text) {
      if (typeof script.teardown !== "function") return;
      guarded(() => script.teardown(text === null || text === undefined ? undefined : JSON.parse(text)));
    },
  };
}
