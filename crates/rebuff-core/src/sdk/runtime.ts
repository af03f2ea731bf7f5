/** When a request that failed may be sent again (the catalog's retry classes). */
export type RetryClass = "never" | "after_reauth" | "after_fix" | "backoff" | "retry_after";

/**
 * What an error body was recognised as: one of the six envelopes, plain RFC 9457 problem
 * details without a code, other JSON, a body that is not JSON, or no body.
 */
export type Envelope =
  | "rebuff"
  | "arize"
  | "dataxid"
  | "mlops"
  | "incidents"
  | "apikeys"
  | "problem"
  | "other_json"
  | "text"
  | "empty";

/** Response headers: a `Headers`, a record (any case), pairs, or nothing. */
export type HeaderInput = Headers | Readonly<Record<string, string>> | Iterable<readonly [string, string]> | null | undefined;

/** A response body as received. */
export type BodyInput = string | Uint8Array | ArrayBuffer | null | undefined;

/** One invalid field of a request. */
export interface FieldError {
  /** JSON Pointer to the field (`/config/batch_size`); `""` for the whole document. */
  readonly pointer: string;
  /** Where the field is: `body`, `query`, `path` or `header`. */
  readonly location: string;
  /** A machine-readable reason (`required`, `type`, ...), or `""`. */
  readonly reason: string;
  /** What is wrong with it, for humans. */
  readonly message: string;
}

/** What an error is made of; every member is optional. */
export interface ErrorInit {
  status?: number;
  code?: Code | null;
  wireCode?: string | null;
  category?: string | null;
  title?: string | null;
  requestId?: string | null;
  retryAfter?: number | null;
  param?: string | null;
  fieldErrors?: readonly FieldError[];
  docUrl?: string | null;
  instance?: string | null;
  upgradeUrl?: string | null;
  extra?: Readonly<Record<string, unknown>>;
  body?: string;
  jsonBody?: unknown;
  headers?: Readonly<Record<string, string>>;
  envelope?: Envelope;
}

/**
 * Base class of every error of the __API__ API, thrown by {@link request} and
 * {@link callWithRetries} and returned by {@link fromResponse}.
 *
 * Members are decoded from the response and never throw: a member the body lacks is `null`
 * (or empty).
 */
export class __BASE__ extends globalThis.Error {
  /** The HTTP status (0 when no response was received). */
  readonly status: number;
  /** The stable code, as the catalog names it; `null` when the response cannot be identified. */
  readonly code: Code | null;
  /** The code as the response spelled it. */
  readonly wireCode: string | null;
  /** The error's type (`authentication_error`, ...), from the body or the catalog. */
  readonly category: string | null;
  /** The problem type's short summary, or the status's reason phrase. */
  readonly title: string | null;
  /** The request's id: quote it when you contact support. */
  readonly requestId: string | null;
  /**
   * Seconds the server asked to wait (`Retry-After` in either form, the `RateLimit` field's
   * `t`, or the body's `retry_after`).
   */
  readonly retryAfter: number | null;
  /** The parameter at fault. */
  readonly param: string | null;
  /** One entry per invalid field. */
  readonly fieldErrors: readonly FieldError[];
  /** The documentation of this error (`doc_url` or the RFC 9457 `type`). */
  readonly docUrl: string | null;
  /** The RFC 9457 `instance`. */
  readonly instance: string | null;
  /** Where to upgrade the plan, when the response names it (an `upgrade_url` member). */
  readonly upgradeUrl: string | null;
  /** Members of the body that this module does not know, kept as they were. */
  readonly extra: Readonly<Record<string, unknown>>;
  /** The raw response body, as text. */
  readonly body: string;
  /** The body parsed as JSON, or `undefined` when it is not JSON. */
  readonly jsonBody: unknown;
  /** The response headers, names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  /** What the body was recognised as. */
  readonly envelope: Envelope;
  /** How many attempts were made before this error was thrown (1 without retries). */
  attempts: number;

  constructor(message: string, init: ErrorInit = {}) {
    super(message);
    this.name = new.target.name;
    this.status = init.status ?? 0;
    this.code = init.code ?? null;
    this.wireCode = init.wireCode ?? null;
    this.category = init.category ?? null;
    this.title = init.title ?? null;
    this.requestId = init.requestId ?? null;
    this.retryAfter = init.retryAfter ?? null;
    this.param = init.param ?? null;
    this.fieldErrors = init.fieldErrors ?? [];
    this.docUrl = init.docUrl ?? null;
    this.instance = init.instance ?? null;
    this.upgradeUrl = init.upgradeUrl ?? null;
    this.extra = init.extra ?? {};
    this.body = init.body ?? "";
    this.jsonBody = init.jsonBody;
    this.headers = init.headers ?? {};
    this.envelope = init.envelope ?? "empty";
    this.attempts = 1;
  }

  /** When the same request may be sent again, from the catalog's entry for the code. */
  get retry(): RetryClass {
    return retryClass(this.status, this.code);
  }

  /** Whether sending the identical request again may succeed (`backoff` or `retry_after`). */
  get retryable(): boolean {
    return this.retry === "backoff" || this.retry === "retry_after";
  }

  override toString(): string {
    const parts = [this.status ? String(this.status) : "no response"];
    const code = this.code ?? this.wireCode;
    if (code !== null) parts.push(code);
    const id = this.requestId ? ` (request_id: ${this.requestId})` : "";
    return `${this.name}: [${parts.join(" ")}] ${this.message}${id}`;
  }
}

/** No response was received: the connection could not be made, was reset, or failed. */
export class __STEM__ConnectionError extends __BASE__ {
  /** Whether the request may have reached the server (`false` when no connection was made). */
  readonly sent: boolean;

  constructor(message: string, sent = true) {
    super(message);
    this.sent = sent;
  }

  override get retry(): RetryClass {
    return "backoff";
  }
}

/** No response arrived in time (the attempt's timeout or the overall deadline). */
export class __STEM__TimeoutError extends __STEM__ConnectionError {}

/** A constructor of one of this module's error classes. */
export type ErrorClass = new (message: string, init?: ErrorInit) => __BASE__;

interface Row {
  readonly code: Code;
  readonly wireCode: string | null;
  readonly status: number;
  readonly category: Category;
  readonly retry: RetryClass;
  readonly typeUri: string;
  readonly presentedAs: Code | null;
}

// @@GENERATED@@

const ROW_BY_CODE: ReadonlyMap<string, Row> = new Map(ROWS.map((row) => [row.code, row]));
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);
const LOCATIONS: ReadonlySet<string> = new Set(["body", "query", "path", "header", "cookie"]);
const REASONS: Readonly<Record<number, string>> = {
  400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
  404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout",
  409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed",
  413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type",
  422: "Unprocessable Content", 423: "Locked", 425: "Too Early", 428: "Precondition Required",
  429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
  501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
};

/** Whether `code` is one of the API's stable codes. */
export function isCode(code: unknown): code is Code {
  return typeof code === "string" && ROW_BY_CODE.has(code);
}

/**
 * The stable code a response stands for: by the code it carries (preferring the entry that
 * owns that spelling), else by a type URI only one entry has, else the generic code of its
 * status. `null` when the catalog has nothing for that status.
 */
export function identify(status: number, wireCode?: string | null, typeUri?: string | null): Code | null {
  if (wireCode !== null && wireCode !== undefined) {
    const lower = wireCode.toLowerCase();
    const rank = (r: Row): number =>
      (r.presentedAs !== null ? 4 : 0) + (r.code.toLowerCase() !== lower ? 2 : 0) + (r.status !== status ? 1 : 0);
    const candidates = ROWS.filter((r) => r.wireCode === wireCode);
    let best: Row | undefined;
    for (const r of candidates) if (best === undefined || rank(r) < rank(best)) best = r;
    if (best !== undefined) return best.code;
  }
  if (typeUri) {
    const matches = ROWS.filter((r) => r.typeUri === typeUri && r.presentedAs === null);
    if (matches.length === 1 && matches[0] !== undefined) return matches[0].code;
  }
  return STATUS_FALLBACK[status] ?? null;
}

/**
 * The retry class of a code, or, for a response the catalog does not know, of its status:
 * 408 and 5xx (except 501) with backoff, 429 after the server's delay, else never.
 */
export function retryClass(status: number, code?: Code | null): RetryClass {
  const row = code ? ROW_BY_CODE.get(code) : undefined;
  if (row !== undefined) return row.retry;
  if (status === 429) return "retry_after";
  if (status === 408 || (status >= 500 && status !== 501)) return "backoff";
  return "never";
}

/** The class thrown for a stable code; the base class for `null`. */
export function errorClass(code: Code | null): ErrorClass {
  return code === null ? __BASE__ : CODE_CLASSES[code] ?? __BASE__;
}

// ---- decoding ---------------------------------------------------------------------------

function lowerHeaders(headers: HeaderInput): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === null || headers === undefined) return out;
  try {
    const add = (name: string, value: string): void => {
      const key = String(name).toLowerCase();
      out[key] = key in out ? `${out[key]}, ${value}` : String(value);
    };
    if (typeof Headers !== "undefined" && headers instanceof Headers) {
      headers.forEach((value, name) => add(name, value));
    } else if (Symbol.iterator in Object(headers)) {
      for (const [name, value] of headers as Iterable<readonly [string, string]>) add(name, value);
    } else {
      for (const [name, value] of Object.entries(headers as Record<string, string>)) add(name, value);
    }
  } catch {
    // Whatever was read before the failure is kept.
  }
  return out;
}

function text(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function nonNegativeInt(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? Math.floor(value) : null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function pointer(tokens: readonly unknown[]): string {
  return tokens
    .map((t) => "/" + (typeof t === "string" ? t : JSON.stringify(t)).replace(/~/g, "~0").replace(/\//g, "~1"))
    .join("");
}

function except(m: Record<string, unknown>, known: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) if (!known.includes(k)) out[k] = v;
  return out;
}

/**
 * Seconds to wait from `Retry-After` (seconds or an HTTP-date, against the response's `Date`
 * or else `now`, in milliseconds since the epoch), else from the `t` of an IETF `RateLimit`
 * field whose `r` is 0. `null` when the headers say nothing usable.
 */
export function retryAfterSeconds(headers: HeaderInput, now: number = Date.now()): number | null {
  const h = lowerHeaders(headers);
  const value = (h["retry-after"] ?? "").trim();
  if (/^\d+$/.test(value)) return Number(value);
  if (value) {
    const when = Date.parse(value);
    if (!Number.isNaN(when)) {
      const date = h["date"] ? Date.parse(h["date"]) : NaN;
      const base = Number.isNaN(date) ? now : date;
      return Math.max(0, Math.ceil((when - base) / 1000));
    }
  }
  for (const item of (h["ratelimit"] ?? "").split(",")) {
    const params: Record<string, string> = {};
    for (const part of item.split(";").slice(1)) {
      const [key, val] = part.trim().split("=", 2);
      if (key !== undefined && val !== undefined) params[key] = val;
    }
    const t = params["t"];
    if (params["r"] === "0" && t !== undefined && /^\d+$/.test(t)) return Number(t);
  }
  return null;
}

interface Decoded {
  status: number;
  code: string | null;
  category: string | null;
  title: string | null;
  message: string | null;
  typeUri: string | null;
  instance: string | null;
  param: string | null;
  fields: FieldError[];
  requestId: string | null;
  retryAfter: number | null;
  envelope: Envelope;
  extra: Record<string, unknown>;
  jsonBody: unknown;
}

const PROBLEM_MEMBERS = [
  "type", "title", "status", "detail", "instance", "code", "error_code", "request_id", "param", "errors", "retry",
  "retry_after",
];
const STRIPE_MEMBERS = ["type", "code", "message", "doc_url", "param", "request_id"];
const FLAT_MEMBERS = ["code", "message", "details", "request_id"];

function decode(status: number, headers: Record<string, string>, body: string): Decoded {
  const out: Decoded = {
    status, code: null, category: null, title: null, message: null, typeUri: null, instance: null, param: null,
    fields: [], requestId: null, retryAfter: retryAfterSeconds(headers), envelope: "empty", extra: {},
    jsonBody: undefined,
  };
  const trimmed = body.trim();
  const reason = REASONS[status] ?? null;
  if (!trimmed) {
    out.title = reason;
  } else {
    let value: unknown;
    let isJson = true;
    try {
      value = JSON.parse(trimmed);
    } catch {
      isJson = false;
    }
    if (!isJson) {
      out.envelope = "text";
      out.title = reason;
      if ((headers["content-type"] ?? "").toLowerCase().startsWith("text/plain") && trimmed.length <= 512) {
        out.message = trimmed;
      }
    } else if (!isObject(value)) {
      out.envelope = "other_json";
      out.jsonBody = value;
      out.title = reason;
    } else {
      out.jsonBody = value;
      decodeObject(out, headers, value);
    }
  }
  if (out.requestId === null) out.requestId = headers["x-request-id"] ?? null;
  return out;
}

function decodeObject(out: Decoded, headers: Record<string, string>, m: Record<string, unknown>): void {
  const reason = REASONS[out.status] ?? null;
  out.requestId = text(m["request_id"]);
  if (out.retryAfter === null) out.retryAfter = nonNegativeInt(m["retry_after"]);
  const inner = m["error"];
  if (isObject(inner) && ("code" in inner || "message" in inner || "type" in inner)) {
    out.envelope = "dataxid";
    out.code = text(inner["code"]);
    out.category = text(inner["type"]);
    out.message = text(inner["message"]);
    out.typeUri = text(inner["doc_url"]);
    out.param = text(inner["param"]);
    const dot = out.param?.indexOf(".") ?? -1;
    if (out.param !== null && dot > 0) {
      const location = out.param.slice(0, dot);
      if (LOCATIONS.has(location)) {
        out.fields.push({
          pointer: pointer(out.param.slice(dot + 1).split(".")), location, reason: "", message: out.message ?? "",
        });
      }
    }
    if (out.requestId === null) out.requestId = text(inner["request_id"]);
    out.extra = { ...except(inner, STRIPE_MEMBERS), ...except(m, ["error", "request_id"]) };
    return;
  }
  const isProblem = (headers["content-type"] ?? "").trim().toLowerCase().startsWith("application/problem+json");
  const code = text(m["code"]);
  const errorCode = text(m["error_code"]);
  const title = text(m["title"]);
  const typeUri = text(m["type"]);
  if (title !== null || typeUri !== null || isProblem) {
    out.title = title ?? reason;
    out.typeUri = typeUri;
    out.message = text(m["detail"]);
    out.instance = text(m["instance"]);
    out.param = text(m["param"]);
    if (errorCode !== null) {
      out.envelope = "arize";
      out.code = errorCode;
    } else if (code !== null) {
      out.envelope = "rebuff";
      out.code = code;
    } else {
      out.envelope = "problem";
    }
    const errors = m["errors"];
    for (const item of Array.isArray(errors) ? errors : []) {
      if (isObject(item) && typeof item["pointer"] === "string") {
        const place = text(item["location"]) ?? "body";
        out.fields.push({
          pointer: item["pointer"],
          location: LOCATIONS.has(place) ? place : "body",
          reason: text(item["reason"]) ?? "",
          message: text(item["detail"]) ?? "",
        });
      }
    }
    out.extra = except(m, PROBLEM_MEMBERS);
    return;
  }
  if (code === null && "detail" in m) {
    out.envelope = "mlops";
    out.title = reason;
    const detail = m["detail"];
    if (Array.isArray(detail)) {
      for (const item of detail) {
        if (!isObject(item)) continue;
        const loc: unknown[] = Array.isArray(item["loc"]) ? item["loc"] : [];
        const first = loc[0];
        const located = typeof first === "string" && LOCATIONS.has(first);
        out.fields.push({
          pointer: pointer(located ? loc.slice(1) : loc),
          location: located ? first : "body",
          reason: text(item["type"]) ?? "",
          message: text(item["msg"]) ?? "",
        });
      }
    } else {
      out.message = text(detail);
    }
    out.extra = except(m, ["detail", "request_id"]);
    return;
  }
  if (code !== null) {
    out.code = code;
    out.message = text(m["message"]);
    out.title = reason;
    const details = m["details"];
    const upper = code.toUpperCase() === code && code.toLowerCase() !== code;
    if (Array.isArray(details) || (!upper && !isObject(details))) {
      out.envelope = "apikeys";
      for (const item of Array.isArray(details) ? details : []) {
        if (isObject(item) && typeof item["field"] === "string") {
          out.fields.push({
            pointer: pointer(item["field"].split(".")),
            location: "body",
            reason: text(item["code"]) ?? "",
            message: text(item["message"]) ?? "",
          });
        }
      }
    } else {
      out.envelope = "incidents";
      for (const [name, item] of Object.entries(isObject(details) ? details : {})) {
        if (isObject(item) && typeof item["code"] === "string") {
          out.fields.push({
            pointer: pointer(name.split(".")), location: "body", reason: item["code"], message: text(item["message"]) ?? "",
          });
        }
      }
    }
    out.extra = except(m, FLAT_MEMBERS);
    return;
  }
  out.envelope = "other_json";
  out.title = reason;
  out.message = text(m["message"]) ?? text(m["detail"]);
  out.extra = except(m, ["message", "detail", "request_id"]);
}

function bodyText(body: BodyInput): string {
  if (body === null || body === undefined) return "";
  if (typeof body === "string") return body;
  return new TextDecoder("utf-8", { fatal: false }).decode(body);
}

/**
 * The error a response stands for, as an instance of its code's class.
 *
 * Decodes any of the six envelopes, plain RFC 9457 problem details, other JSON and bodies
 * that are not JSON (an HTML page from a proxy, an empty body). Never throws: whatever the
 * bytes, the result is an error with what could be read from them.
 */
export function fromResponse(status: number, headers: HeaderInput, body: BodyInput): __BASE__ {
  try {
    const raw = bodyText(body);
    const h = lowerHeaders(headers);
    const d = decode(Number(status) | 0, h, raw);
    const code = identify(d.status, d.code, d.typeUri);
    const row = code !== null ? ROW_BY_CODE.get(code) : undefined;
    const upgrade = d.extra["upgrade_url"];
    const message = d.message || d.title || REASONS[d.status] || `HTTP ${d.status}`;
    const Class = errorClass(code);
    return new Class(message, {
      status: d.status,
      code,
      wireCode: d.code,
      category: d.category ?? row?.category ?? null,
      title: d.title,
      requestId: d.requestId,
      retryAfter: d.retryAfter,
      param: d.param,
      fieldErrors: d.fields,
      docUrl: d.typeUri,
      instance: d.instance,
      upgradeUrl: typeof upgrade === "string" ? upgrade : null,
      extra: d.extra,
      body: raw,
      jsonBody: d.jsonBody,
      headers: h,
      envelope: d.envelope,
    });
  } catch (e) {
    const name = e instanceof globalThis.Error ? e.name : typeof e;
    return new __BASE__(`undecodable error response (${name})`, { status: Number(status) | 0 });
  }
}

// ---- retries ----------------------------------------------------------------------------

/**
 * When a failed request is sent again, and after how long.
 *
 * A request is retried when the error's retry class is `backoff` or `retry_after` (or no
 * response arrived), the request is safe to send again (an idempotent method, or an
 * `Idempotency-Key`; a connection that was never made is always safe), attempts are left,
 * the server's delay is at most `maxRetryAfterMs`, and the wait ends before the deadline.
 * Without a delay from the server, the wait is full-jitter exponential backoff: uniformly
 * random between zero and `min(maxDelayMs, baseDelayMs * 2 ** (retry - 1))`.
 */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 3). */
  readonly maxAttempts: number;
  /** The first backoff ceiling (default 500 ms). */
  readonly baseDelayMs: number;
  /** The largest backoff ceiling (default 20 s). */
  readonly maxDelayMs: number;
  /** The longest server-requested delay waited for; a longer one ends the retries (default 60 s). */
  readonly maxRetryAfterMs: number;
  /** Time allowed for all attempts and the waits between them; `null` for no limit (default 60 s). */
  readonly deadlineMs: number | null;
  /** Time allowed for one attempt; `null` leaves only the deadline (default `null`). */
  readonly attemptTimeoutMs: number | null;
  /** Randomise backoff (full jitter); `false` waits the whole ceiling (default `true`). */
  readonly jitter: boolean;
  /** Give a `POST` without an `Idempotency-Key` one, the same on all its attempts (default `true`). */
  readonly idempotencyKeys: boolean;
}

/** The default {@link RetryPolicy}. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 3,
  baseDelayMs: 500,
  maxDelayMs: 20_000,
  maxRetryAfterMs: 60_000,
  deadlineMs: 60_000,
  attemptTimeoutMs: null,
  jitter: true,
  idempotencyKeys: true,
});

/** The backoff ceiling, in milliseconds, before retry number `retry` (1 for the first retry). */
export function backoffCeilingMs(policy: RetryPolicy, retry: number): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, Math.min(retry - 1, 62)));
}

/**
 * Milliseconds to wait before retry number `retry` after `error`, or `null` when the request
 * must not be sent again.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  error: __BASE__,
  options: { retry: number; replaySafe: boolean; remainingMs?: number | null; random?: () => number },
): number | null {
  if (error instanceof __STEM__ConnectionError) {
    if (error.sent && !options.replaySafe) return null;
  } else if (!(options.replaySafe && error.retryable)) {
    return null;
  }
  if (options.retry >= policy.maxAttempts) return null;
  let wait: number;
  if (error.retryAfter !== null) {
    wait = error.retryAfter * 1000;
    if (wait > policy.maxRetryAfterMs) return null;
  } else {
    const ceiling = backoffCeilingMs(policy, options.retry);
    wait = policy.jitter ? ceiling * (options.random ?? Math.random)() : ceiling;
  }
  const remaining = options.remainingMs;
  if (remaining !== null && remaining !== undefined && wait >= remaining) return null;
  return wait;
}

/**
 * Whether `error` is worth sending the same request again for (ignoring attempts and time):
 * it is retryable, and the method is idempotent or the request carries a key.
 */
export function shouldRetry(error: __BASE__, method = "GET", hasIdempotencyKey = false): boolean {
  const safe = IDEMPOTENT_METHODS.has(method.toUpperCase()) || hasIdempotencyKey;
  if (error instanceof __STEM__ConnectionError) return safe || !error.sent;
  return safe && error.retryable;
}

/** What {@link callWithRetries} hands to each attempt of a call. */
export interface Attempt {
  /** 1 for the first attempt. */
  readonly number: number;
  /** The key to send as `Idempotency-Key`: the same on every attempt. */
  readonly idempotencyKey: string | null;
  /** Milliseconds this attempt may take: what is left of the deadline, capped by `attemptTimeoutMs`. */
  readonly timeoutMs: number | null;
}

/** One retry about to happen, reported to `onRetry`. */
export interface RetryEvent {
  /** The attempt that failed (1 for the first). */
  readonly attempt: number;
  /** Milliseconds waited before the next attempt. */
  readonly delayMs: number;
  /** What it failed with. */
  readonly error: __BASE__;
}

/** How {@link callWithRetries} runs; every member is optional. */
export interface RetryOptions {
  /** The request's method (default `GET`); a `POST` gets an idempotency key. */
  method?: string;
  /** The key for all attempts; a `POST` without one gets a random UUID. */
  idempotencyKey?: string | null;
  /** Changes to {@link DEFAULT_RETRY_POLICY}. */
  policy?: Partial<RetryPolicy>;
  /** Called before each wait. */
  onRetry?: (event: RetryEvent) => void;
  /** Waits (for tests; default `setTimeout`). */
  sleep?: (ms: number) => Promise<void>;
  /** The clock in milliseconds (for tests; default `performance.now`). */
  now?: () => number;
  /** Uniform random in [0, 1) (for tests; default `Math.random`). */
  random?: () => number;
}

function uuid(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join("");
  return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
}

/**
 * Runs `call` until it resolves, retrying the errors the policy allows.
 *
 * `call` makes one attempt and throws a {@link __BASE__} (as {@link fromResponse} gives) when
 * it fails. A `POST` gets an `Idempotency-Key` (a random UUID unless one is given), handed to
 * every attempt in `attempt.idempotencyKey`, so the server runs it once. The last error is
 * thrown with `attempts` set.
 */
export async function callWithRetries<T>(call: (attempt: Attempt) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.policy };
  const method = (options.method ?? "GET").toUpperCase();
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = options.now ?? (() => performance.now());
  let key = options.idempotencyKey ?? null;
  if (key === null && method === "POST" && policy.idempotencyKeys) key = uuid();
  const replaySafe = IDEMPOTENT_METHODS.has(method) || key !== null;
  const start = now();
  const remaining = (): number | null => (policy.deadlineMs === null ? null : policy.deadlineMs - (now() - start));
  for (let number = 1; ; number++) {
    const left = remaining();
    if (left !== null && left <= 0) {
      throw new __STEM__TimeoutError("the deadline passed before the request could be sent", false);
    }
    let timeoutMs = left;
    if (policy.attemptTimeoutMs !== null) {
      timeoutMs = timeoutMs === null ? policy.attemptTimeoutMs : Math.min(timeoutMs, policy.attemptTimeoutMs);
    }
    try {
      return await call({ number, idempotencyKey: key, timeoutMs });
    } catch (error) {
      if (!(error instanceof __BASE__)) throw error;
      error.attempts = number;
      const wait = retryDelayMs(policy, error, {
        retry: number, replaySafe, remainingMs: remaining(), random: options.random ?? Math.random,
      });
      if (wait === null) throw error;
      options.onRetry?.({ attempt: number, delayMs: wait, error });
      await sleep(wait);
    }
  }
}

/** How {@link request} sends; every member is optional. */
export interface RequestOptions extends Omit<RetryOptions, "method"> {
  /** Request headers. */
  headers?: Readonly<Record<string, string>>;
  /** Sent as `application/json`. */
  json?: unknown;
  /** A raw body. */
  body?: string | Uint8Array;
  /** Sent as `Authorization: Bearer`. */
  apiKey?: string;
}

/**
 * Sends one request with `fetch` and {@link callWithRetries}; a 2xx or 3xx answer is
 * returned, anything else is thrown as its error class.
 */
export async function request(method: string, url: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | Uint8Array | undefined = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    if (!Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) headers["Content-Type"] = "application/json";
  }
  if (options.apiKey !== undefined) headers["Authorization"] = `Bearer ${options.apiKey}`;
  const givenName = Object.keys(headers).find((k) => k.toLowerCase() === "idempotency-key");
  const given = givenName !== undefined ? headers[givenName] ?? null : null;
  const upper = method.toUpperCase();
  return callWithRetries(
    async (attempt) => {
      const h = { ...headers };
      if (attempt.idempotencyKey !== null && given === null) h["Idempotency-Key"] = attempt.idempotencyKey;
      const signal = attempt.timeoutMs !== null ? AbortSignal.timeout(Math.max(1, Math.ceil(attempt.timeoutMs))) : undefined;
      let res: Response;
      try {
        res = await fetch(url, { method: upper, headers: h, body, signal, redirect: "follow" });
      } catch (e) {
        const err = e as { name?: string; cause?: { code?: string } } | null;
        if (err?.name === "TimeoutError" || err?.name === "AbortError") {
          throw new __STEM__TimeoutError(`${upper} ${url}: timed out`);
        }
        const refused = err?.cause?.code === "ECONNREFUSED";
        throw new __STEM__ConnectionError(`${upper} ${url}: ${String(e)}`, !refused);
      }
      if (res.status >= 400) {
        let payload: Uint8Array = new Uint8Array();
        try {
          payload = new Uint8Array(await res.arrayBuffer());
        } catch {
          // A body cut short decodes as far as it went: nothing.
        }
        throw fromResponse(res.status, res.headers, payload);
      }
      return res;
    },
    { ...options, method: upper, idempotencyKey: given ?? options.idempotencyKey ?? null },
  );
}
