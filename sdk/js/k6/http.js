// `k6/http`: requests sent and timed by the runner. A request that gets no response
// (refused, timed out, outside the run's allowed hosts) does not throw: as in k6 its
// response has status 0 and `error`/`error_code` say why, and the runner records a failure.
import { num, pairs, report, send } from "../lib/host.js";
import { state } from "../lib/state.js";
import { decode, encode } from "../lib/utf8.js";
import { durationMs } from "../lib/duration.js";

// k6's error codes for requests that got no response.
const ERROR_CODES = { "invalid-request": 1000, connect: 1200, timeout: 1050, protocol: 1000 };

/** Header names as k6 shows them: `content-type` -> `Content-Type`. */
function canonical(name) {
  return name
    .split("-")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1).toLowerCase())
    .join("-");
}

function isBuffer(value) {
  return value instanceof ArrayBuffer || Object.prototype.toString.call(value) === "[object ArrayBuffer]";
}

function formEncode(object) {
  return Object.entries(object)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`.replace(/%20/g, "+"))
    .join("&");
}

/** The body to send and the content type it implies, if any. */
function encodeBody(body) {
  if (body === null || body === undefined) return [null, null];
  if (typeof body === "string") return [encode(body), null];
  if (ArrayBuffer.isView(body)) return [new Uint8Array(body.buffer, body.byteOffset, body.byteLength), null];
  if (isBuffer(body)) return [new Uint8Array(body), null];
  if (typeof body === "object") return [encode(formEncode(body)), "application/x-www-form-urlencoded"];
  return [encode(String(body)), null];
}

/** The values of `expectedStatuses(200, {min: 300, max: 399})`. */
class ExpectedStatuses {
  constructor(list) {
    this.list = list;
  }

  has(status) {
    return this.list.some((s) => (typeof s === "number" ? s === status : status >= s.min && status <= s.max));
  }
}

export function expectedStatuses(...statuses) {
  for (const s of statuses) {
    const ok = typeof s === "number" || (s && typeof s.min === "number" && typeof s.max === "number");
    if (!ok) throw `expectedStatuses takes status codes or {min, max} objects, not ${JSON.stringify(s)}`;
  }
  return new ExpectedStatuses(statuses);
}

let defaultCallback = null;

/** Which statuses count as successes for every later request (`null`: k6's default, < 400). */
export function setResponseCallback(callback) {
  if (callback !== null && !(callback instanceof ExpectedStatuses)) throw "setResponseCallback takes expectedStatuses(...) or null";
  defaultCallback = callback;
}

class Response {
  constructor(request, wit, error, responseType) {
    this.request = request;
    this.url = request.url;
    this.status = wit ? wit.status : 0;
    this.headers = {};
    for (const [name, value] of wit ? wit.headers : []) {
      const key = canonical(name);
      this.headers[key] = key in this.headers ? `${this.headers[key]}, ${value}` : value;
    }
    const bytes = wit ? wit.body : new Uint8Array(0);
    this.body = responseType === "none" ? null : responseType === "binary" ? bytes.buffer : decode(bytes);
    const t = wit ? wit.timings : null;
    const ms = (us) => (us === null || us === undefined ? 0 : num(us) / 1000);
    this.timings = {
      duration: wit ? ms(wit.elapsedUs) : 0,
      blocked: 0,
      connecting: t ? ms(t.connectUs) : 0,
      tls_handshake: 0,
      sending: 0,
      waiting: t ? ms(t.waitingUs) : 0,
      receiving: t ? ms(t.receivingUs) : 0,
    };
    this.error = error ? describe(error) : "";
    this.error_code = error ? ERROR_CODES[error.tag] || 1000 : 0;
  }

  /** The body parsed as JSON; with a selector such as "items.0.id", that part of it. */
  json(selector) {
    if (typeof this.body !== "string") throw "the response has no text body to parse as JSON";
    let value = JSON.parse(this.body);
    if (selector) {
      for (const key of String(selector).split(".")) {
        if (value === null || value === undefined) return undefined;
        value = value[key];
      }
    }
    return value;
  }
}

function describe(error) {
  switch (error.tag) {
    case "timeout":
      return "request timeout";
    case "connect":
      return `dial: ${error.val}`;
    case "invalid-request":
      return `invalid request: ${error.val}`;
    default:
      return String(error.val);
  }
}

/** `http.url\`/posts/${id}\``: the URL, named by its template so all ids share one row. */
export function url(strings, ...values) {
  let name = strings[0];
  let text = strings[0];
  values.forEach((value, i) => {
    name += "${}" + strings[i + 1];
    text += String(value) + strings[i + 1];
  });
  return { url: text, name };
}

export function request(method, target, body, params) {
  const p = params || {};
  const [bytes, impliedType] = encodeBody(body);
  const headers = pairs(p.headers);
  if (impliedType && !headers.some(([k]) => k.toLowerCase() === "content-type")) headers.push(["Content-Type", impliedType]);
  if (p.cookies) headers.push(["Cookie", Object.entries(p.cookies).map(([k, v]) => `${k}=${typeof v === "object" ? v.value : v}`).join("; ")]);
  const tags = Object.assign({}, p.tags || {});
  let name = typeof target === "object" && target ? target.name : null;
  if (tags.name !== undefined) name = String(tags.name);
  delete tags.name;
  if (state.group && tags.group === undefined) tags.group = state.group;
  const callback = p.responseCallback !== undefined ? p.responseCallback : defaultCallback;
  const address = typeof target === "object" && target ? target.url : String(target);
  const wit = {
    method: String(method).toUpperCase(),
    url: address,
    headers,
    body: bytes,
    name,
    timeoutMs: p.timeout === undefined ? null : durationMs(p.timeout, "timeout"),
    tags: pairs(tags),
    catchResponse: callback !== null,
  };
  const sent = send(wit);
  const described = { method: wit.method, url: address, headers: p.headers || {}, body };
  const response = new Response(described, sent.response, sent.error, p.responseType);
  if (sent.response && callback) {
    report(sent.response.id, callback.has(response.status) ? null : `unexpected status ${response.status}`);
  }
  return response;
}

export const get = (target, params) => request("GET", target, null, params);
export const head = (target, params) => request("HEAD", target, null, params);
export const post = (target, body, params) => request("POST", target, body, params);
export const put = (target, body, params) => request("PUT", target, body, params);
export const patch = (target, body, params) => request("PATCH", target, body, params);
export const del = (target, body, params) => request("DELETE", target, body, params);
export const options = (target, body, params) => request("OPTIONS", target, body, params);

/** Sends each request in turn (k6 sends them in parallel; here each is timed on its own). */
export function batch(requests) {
  const one = (r) => {
    if (typeof r === "string") return get(r);
    if (Array.isArray(r)) return request(r[0], r[1], r[2], r[3]);
    return request(r.method || "GET", r.url, r.body, r.params);
  };
  if (Array.isArray(requests)) return requests.map(one);
  return Object.fromEntries(Object.entries(requests).map(([key, r]) => [key, one(r)]));
}

export default { request, get, head, post, put, patch, del, options, batch, url, expectedStatuses, setResponseCallback };
