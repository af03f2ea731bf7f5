// The retry rules against a scripted server over loopback: the delays (Retry-After in seconds
// and as an HTTP-date, the RateLimit field, full-jitter backoff and its cap), the deadline,
// and one Idempotency-Key across the attempts of a POST.

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, it } from "node:test";

import * as api from "../src/rebuff.js";
import * as dataxid from "../src/dataxid.js";
import { FakeTime, FaultServer, MODULES, PROFILES, rendered } from "./support.js";

const OK = { status: 200, headers: { "content-type": "application/json" }, body: "{}" };

function unavailable(retryAfter?: string, extra: Record<string, string> = {}) {
  const r = rendered("rebuff", "service_unavailable");
  const headers = Object.fromEntries(Object.entries(r.headers).filter(([k]) => k !== "retry-after"));
  if (retryAfter !== undefined) headers["retry-after"] = retryAfter;
  return { status: r.status, headers: { ...headers, ...extra }, body: r.body };
}

async function send(
  server: FaultServer, t: FakeTime, method = "GET",
  options: { policy?: Partial<api.RetryPolicy>; idempotencyKey?: string; random?: () => number } = {},
): Promise<Response> {
  return api.callWithRetries(
    (a) =>
      api.request(method, server.url, {
        headers: a.idempotencyKey ? { "Idempotency-Key": a.idempotencyKey } : {},
        json: method === "POST" ? { name: "a" } : undefined,
        policy: { maxAttempts: 1 },
      }),
    { method, sleep: t.sleep, now: t.now, ...options },
  );
}

async function scripted<T>(script: ConstructorParameters<typeof FaultServer>[0], body: (s: FaultServer) => Promise<T>): Promise<T> {
  const s = await new FaultServer(script).start();
  try {
    return await body(s);
  } finally {
    await s.close();
  }
}

describe("retries", () => {
  it("waits a Retry-After in seconds exactly", async () => {
    const t = new FakeTime();
    await scripted([unavailable("7"), OK], async (s) => {
      assert.equal((await send(s, t)).status, 200);
      assert.deepEqual(t.slept, [7000]);
      assert.equal(s.seen.length, 2);
    });
  });

  it("waits a Retry-After HTTP-date exactly", async () => {
    const t = new FakeTime();
    const now = 1_800_000_000_000;
    const date = new Date(now).toUTCString();
    const later = new Date(now + 9000).toUTCString();
    await scripted([unavailable(later, { date }), OK], async (s) => {
      assert.equal((await send(s, t)).status, 200);
      assert.deepEqual(t.slept, [9000]);
    });
  });

  it("takes the RateLimit field's reset as a delay", async () => {
    const t = new FakeTime();
    const r = rendered("incidents", "rate_limit_exceeded");
    const headers = Object.fromEntries(Object.entries(r.headers).filter(([k]) => k !== "retry-after"));
    headers["ratelimit"] = '"default";r=0;t=4';
    await scripted([{ status: r.status, headers, body: r.body }, OK], async (s) => {
      assert.equal((await send(s, t)).status, 200);
      assert.deepEqual(t.slept, [4000]);
    });
  });

  it("doubles backoff up to its cap without jitter, and draws below it with", async () => {
    const t = new FakeTime();
    const policy = { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 1500, jitter: false };
    await scripted([unavailable(), unavailable(), unavailable(), unavailable(), OK], async (s) => {
      assert.equal((await send(s, t, "GET", { policy })).status, 200);
      assert.deepEqual(t.slept, [500, 1000, 1500, 1500]);
    });
    const t2 = new FakeTime();
    await scripted([unavailable(), unavailable(), unavailable(), OK], async (s) => {
      await send(s, t2, "GET", { policy: { maxAttempts: 4, baseDelayMs: 1000 }, random: () => 0.25 });
      assert.deepEqual(t2.slept, [250, 500, 1000]);
    });
  });

  it("stops at the deadline", async () => {
    const t = new FakeTime();
    await scripted([unavailable("30"), OK], async (s) => {
      const e = await send(s, t, "GET", { policy: { deadlineMs: 10_000 } }).then(() => null, (e: unknown) => e);
      assert.ok(e instanceof api.ServiceUnavailableError);
      assert.equal(e.attempts, 1);
      assert.equal(e.retryAfter, 30);
      assert.deepEqual(t.slept, []);
    });
    const t2 = new FakeTime();
    await scripted([unavailable("4"), unavailable("4"), unavailable("4"), OK], async (s) => {
      const e = await send(s, t2, "GET", { policy: { maxAttempts: 5, deadlineMs: 10_000 } }).then(() => null, (e: unknown) => e);
      assert.ok(e instanceof api.ServiceUnavailableError);
      assert.equal(e.attempts, 3);
      assert.deepEqual(t2.slept, [4000, 4000]);
    });
  });

  it("does not wait for a delay longer than allowed", async () => {
    const t = new FakeTime();
    await scripted([unavailable("600"), OK], async (s) => {
      const e = await send(s, t, "GET", { policy: { deadlineMs: null } }).then(() => null, (e: unknown) => e);
      assert.ok(e instanceof api.RebuffError);
      assert.equal(e.retryAfter, 600);
      assert.deepEqual(t.slept, []);
    });
  });

  it("keeps one Idempotency-Key across the attempts of a POST", async () => {
    let first = "";
    await scripted([unavailable("1"), unavailable("1"), { status: 201, headers: {}, body: "{}" }], async (s) => {
      assert.equal((await send(s, new FakeTime(), "POST")).status, 201);
      const keys = s.seen.map((h) => h["idempotency-key"]);
      assert.equal(keys.length, 3);
      assert.ok(typeof keys[0] === "string" && keys[0].length > 0);
      assert.equal(new Set(keys).size, 1);
      first = keys[0] as string;
    });
    await scripted([unavailable("1"), OK], async (s) => {
      await send(s, new FakeTime(), "POST");
      assert.notEqual(s.seen[0]!["idempotency-key"], first, "each call gets its own key");
    });
    await scripted([unavailable("1"), OK], async (s) => {
      await send(s, new FakeTime(), "POST", { idempotencyKey: "mine-1" });
      assert.deepEqual(s.seen.map((h) => h["idempotency-key"]), ["mine-1", "mine-1"]);
    });
    // request() does the same on its own.
    await scripted([unavailable("0"), unavailable("0"), { status: 201, headers: {}, body: "{}" }], async (s) => {
      const res = await api.request("POST", s.url, { json: { name: "a" } });
      assert.equal(res.status, 201);
      assert.equal(new Set(s.seen.map((h) => h["idempotency-key"])).size, 1);
      assert.equal(s.seen.length, 3);
    });
  });

  it("does not retry a POST without a key, nor an error that needs a fix", async () => {
    await scripted([unavailable("1"), OK], async (s) => {
      const e = await send(s, new FakeTime(), "POST", { policy: { idempotencyKeys: false } }).then(() => null, (e: unknown) => e);
      assert.ok(e instanceof api.ServiceUnavailableError);
      assert.equal(e.attempts, 1);
    });
    const r = rendered("rebuff", "missing_required_field", "--field", "/name=is required");
    await scripted([r, OK], async (s) => {
      const e = await send(s, new FakeTime(), "PUT").then(() => null, (e: unknown) => e);
      assert.ok(e instanceof api.MissingRequiredFieldError);
      assert.equal(e.attempts, 1);
      assert.deepEqual(e.fieldErrors.map((f) => [f.pointer, f.message]), [["/name", "is required"]]);
    });
  });

  it("retries a connection never made, even for a POST", async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const t = new FakeTime();
    let calls = 0;
    const e = await api
      .callWithRetries(
        () => {
          calls++;
          return api.request("POST", `http://127.0.0.1:${port}/`, { idempotencyKey: "k", policy: { maxAttempts: 1 } });
        },
        { method: "POST", policy: { idempotencyKeys: false, jitter: false }, sleep: t.sleep, now: t.now },
      )
      .then(() => null, (e: unknown) => e);
    assert.ok(e instanceof api.RebuffConnectionError, String(e));
    assert.equal(e.sent, false);
    assert.equal(e.attempts, 3);
    assert.equal(calls, 3);
    assert.deepEqual(t.slept, [500, 1000]);
  });

  it("reports an attempt that takes too long as a timeout", async () => {
    const hang = createServer(() => {});
    await new Promise<void>((resolve) => hang.listen(0, "127.0.0.1", resolve));
    try {
      const port = (hang.address() as { port: number }).port;
      const e = await api
        .request("GET", `http://127.0.0.1:${port}/`, { policy: { maxAttempts: 1, attemptTimeoutMs: 200 } })
        .then(() => null, (e: unknown) => e);
      assert.ok(e instanceof api.RebuffTimeoutError, String(e));
    } finally {
      hang.close();
    }
  });
});

describe("decoding", () => {
  const cases: [number, Record<string, string>, string, string | null, boolean][] = [
    [502, { "content-type": "text/html" }, "<html><body>Bad Gateway</body></html>", "bad_gateway", true],
    [503, {}, "", "service_unavailable", true],
    [500, { "content-type": "application/json" }, '{"error": {"code": "internal', "internal_error", true],
    [429, { "content-type": "text/plain", "retry-after": "3" }, "slow down", "rate_limit_exceeded", true],
    [404, { "content-type": "application/problem+json" }, '{"title": "Not Found", "status": 404}', "resource_not_found", false],
    [418, {}, "[1, 2]", null, false],
  ];
  it("decodes bodies from proxies by their status", () => {
    for (const profile of PROFILES) {
      const m = MODULES[profile]!;
      for (const [status, headers, body, code, retryable] of cases) {
        const e = m.fromResponse(status, headers, body);
        assert.equal(e.status, status);
        assert.equal(e.body, body);
        assert.equal(e.code, code, `${profile} ${status}`);
        assert.equal(e.retryable, retryable, `${profile} ${status}`);
        if (status === 429) {
          assert.equal(e.retryAfter, 3);
          assert.equal(e.message, "slow down");
        }
      }
    }
  });

  it("never throws while decoding, whatever the bytes", () => {
    const pieces = ["{", "}", "[", "]", '"error"', '"code"', ":", ",", '"detail"', "null", "1", '"x"', "\uFFFD", " "];
    let seed = 17;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (const profile of PROFILES) {
      const m = MODULES[profile]!;
      for (let i = 0; i < 400; i++) {
        const body = Array.from({ length: next(13) }, () => pieces[next(pieces.length)]).join("");
        const choices: (Record<string, string> | null)[] = [null, {}, { "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT" }, { ratelimit: "x;r=0;t=a" }];
        const headers = choices[next(4)] ?? null;
        const e = m.fromResponse([0, 400, 418, 503, 999][next(5)]!, headers, body);
        assert.ok(e instanceof m.errorClass(null));
      }
    }
  });

  it("keeps unknown members and reads an upgrade URL", () => {
    const e = dataxid.fromResponse(402, null,
      '{"error": {"type": "quota_exceeded_error", "code": "quota_exceeded", "message": "Over.", "upgrade_url": "https://x.test/up"}, "request_id": "req_1", "plan": "free"}');
    assert.ok(e instanceof dataxid.QuotaExceededError);
    assert.equal(e.upgradeUrl, "https://x.test/up");
    assert.deepEqual(e.extra, { upgrade_url: "https://x.test/up", plan: "free" });
    assert.equal(e.requestId, "req_1");
  });

  it("gives the dataxid classes of the published exception table", () => {
    const table: [string, abstract new (...a: never[]) => unknown][] = [
      ["api_key_missing", dataxid.AuthenticationError], ["api_key_invalid", dataxid.AuthenticationError],
      ["parameter_invalid", dataxid.InvalidRequestError], ["model_not_found", dataxid.NotFoundError],
      ["model_not_ready", dataxid.ModelNotReadyError], ["quota_exceeded", dataxid.QuotaExceededError],
      ["rate_limit_exceeded", dataxid.RateLimitError], ["idempotency_key_in_use", dataxid.ConflictError],
      ["training_service_unavailable", dataxid.APIError], ["internal_error", dataxid.APIError],
    ];
    for (const [code, cls] of table) {
      const e = dataxid.fromResponse(400, null, JSON.stringify({ error: { type: "x", code, message: "m" } }));
      assert.equal(Object.getPrototypeOf(e), cls.prototype, code);
      assert.ok(e instanceof dataxid.DataxidError);
    }
  });
});
