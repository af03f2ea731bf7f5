// The generated modules against `rebuff serve` over loopback, in each of the six profiles:
// every error the server can raise decodes into the right class, with its code, request id
// and retry decision; and every code of each catalog, as a service renders it, does too.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  type ApiError, MODULES, PROFILES, SCENARIOS, Server, fill, indistinguishable, prepared, rendered, waitReady,
} from "./support.js";

function check(profile: string, what: string, e: unknown, code: string): ApiError {
  const m = MODULES[profile]!;
  assert.ok(e instanceof m.errorClass(null), `${profile} ${what}: ${String(e)}`);
  const error = e as ApiError;
  const same = indistinguishable(profile, code);
  assert.ok(error.code !== null && same.has(error.code), `${profile} ${what}: ${error.code}, expected one of ${[...same]}`);
  if (same.size === 1) assert.equal(error.code, code, `${profile} ${what}`);
  const cls = m.CODE_CLASSES[error.code!]!;
  assert.equal(Object.getPrototypeOf(error), cls.prototype, `${profile} ${what}: ${error.name}`);
  assert.equal(error.name, cls.name);
  assert.ok(error instanceof m.CATEGORY_CLASSES[error.category!]!, `${profile} ${what}: category ${error.category}`);
  assert.ok(error.requestId?.startsWith("req_"), `${profile} ${what}: request id ${error.requestId}`);
  assert.ok(
    error.envelope === m.DIALECT || (error.envelope === "problem" && ["rebuff", "arize"].includes(m.DIALECT)),
    `${profile} ${what}: ${error.envelope}`,
  );
  return error;
}

for (const profile of PROFILES) {
  describe(profile, () => {
    const m = MODULES[profile]!;

    it("decodes every code, as rendered, into its class", () => {
      for (const code of Object.keys(m.CODE_CLASSES)) {
        const r = rendered(profile, code);
        const e = check(profile, `rendered ${code}`, m.fromResponse(r.status, r.headers, r.body), code);
        assert.equal(e.requestId, "req_rendered");
      }
    });

    it("decodes every error the server raises", async () => {
      const { s, v } = await prepared(profile);
      try {
        for (const raw of SCENARIOS.scenarios) {
          const sc = fill(raw, v);
          if (sc.after_ready) await waitReady(s, v["trained"]!);
          let caught: unknown = null;
          try {
            await m.request(sc.method, s.url(sc.path), {
              headers: sc.headers, json: sc.json, body: sc.body, apiKey: sc.key, policy: { maxAttempts: 1 },
            });
          } catch (e) {
            caught = e;
          }
          const e = check(profile, sc.what, caught, sc.code);
          assert.equal(e.attempts, 1);
          assert.ok(!e.retryable && !m.shouldRetry(e, sc.method), `${profile} ${sc.what}: ${e.retry}`);
          if (sc.fields && profile !== "dataxid") {
            const pointers = e.fieldErrors.map((f) => f.pointer);
            for (const p of sc.fields) assert.ok(pointers.includes(p), `${profile} ${sc.what}: ${pointers}`);
          }
        }
      } finally {
        s.close();
      }
    });

    it("retries the rate limit after the server's delay", async () => {
      const s = await new Server(profile, ["--rate-limit", "2/minute"]).start();
      try {
        const once = { apiKey: s.admin, policy: { maxAttempts: 1 } };
        await m.request("GET", s.url("/v1/projects"), once);
        await m.request("GET", s.url("/v1/projects"), once);
        const caught = await m.request("GET", s.url("/v1/projects"), once).then(() => null, (e: unknown) => e);
        const e = check(profile, "over the rate limit", caught, "rate_limit_exceeded");
        assert.ok(e.retryable && e.retry === "retry_after");
        assert.ok(e.retryAfter !== null && e.retryAfter > 0 && e.retryAfter <= 60, `${e.retryAfter}`);
        assert.ok(m.shouldRetry(e, "GET") && !m.shouldRetry(e, "POST") && m.shouldRetry(e, "POST", true));
      } finally {
        s.close();
      }
    });

    it("retries masked server errors, which keep their request id", () => {
      for (const code of ["internal_error", "database_error", "service_unavailable", "gateway_timeout"]) {
        const r = rendered(profile, code);
        const e = check(profile, code, m.fromResponse(r.status, r.headers, r.body), code);
        assert.ok(e.retryable && m.shouldRetry(e, "GET") && !m.shouldRetry(e, "POST"));
      }
    });
  });
}
