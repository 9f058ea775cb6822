// k6 durations: "30s", "1m30s", "250ms", "2h", or a number of milliseconds.
const UNITS = { ms: 1, s: 1000, m: 60000, h: 3600000 };

export function durationMs(value, what) {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return Math.round(value);
  if (typeof value === "string") {
    const text = value.replace(/\s+/g, "");
    const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
    if (parts.length && parts.map((p) => p[0]).join("") === text) {
      return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]], 0));
    }
  }
  throw `${what}: ${JSON.stringify(value)} is not a duration such as "30s", "1m30s" or "250ms"`;
}
