// `k6/metrics`: custom metrics, shown in the summary and usable in thresholds.
import { addMetric } from "../lib/host.js";

class Metric {
  constructor(name, kind) {
    this.name = name;
    this.kind = kind;
  }

  add(value, tags) {
    addMetric(this.name, this.kind, typeof value === "boolean" ? Number(value) : value, tags);
  }
}

export class Counter extends Metric {
  constructor(name) {
    super(name, "counter");
  }
}

export class Gauge extends Metric {
  constructor(name) {
    super(name, "gauge");
  }
}

export class Rate extends Metric {
  constructor(name) {
    super(name, "rate");
  }
}

export class Trend extends Metric {
  constructor(name) {
    super(name, "trend");
  }
}

export default { Counter, Gauge, Rate, Trend };
