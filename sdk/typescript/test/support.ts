// What the tests of the generated TypeScript modules share: the `rebuff` binary, `rebuff
// serve` in a profile with the keys and accounts the scenarios need, rendered error responses,
// and a scripted fault server. REBUFF_BIN names the binary (default: the debug build in
// $CARGO_TARGET_DIR).

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

import * as apikeys from "../src/apikeys.js";
import * as arize from "../src/arize.js";
import * as dataxid from "../src/dataxid.js";
import * as incidents from "../src/incidents.js";
import * as mlops from "../src/mlops.js";
import * as rebuff from "../src/rebuff.js";

/** What the tests use of a module, the same in every one. */
export interface ApiError extends Error {
  readonly status: number;
  readonly code: string | null;
  readonly wireCode: string | null;
  readonly category: string | null;
  readonly requestId: string | null;
  readonly retryAfter: number | null;
  readonly param: string | null;
  readonly fieldErrors: readonly { pointer: string; message: string }[];
  readonly docUrl: string | null;
  readonly envelope: string;
  readonly retry: string;
  readonly retryable: boolean;
  readonly body: string;
  attempts: number;
}
export type Class = abstract new (...args: never[]) => ApiError;
export interface Api {
  readonly DIALECT: string;
  readonly CODE_CLASSES: Readonly<Record<string, Class>>;
  readonly CATEGORY_CLASSES: Readonly<Record<string, Class>>;
  errorClass(code: null): Class;
  fromResponse(status: number, headers: Record<string, string> | null, body: string | null): ApiError;
  shouldRetry(error: ApiError, method?: string, hasKey?: boolean): boolean;
  request(method: string, url: string, options?: Record<string, unknown>): Promise<Response>;
}

export const MODULES: Readonly<Record<string, Api>> = {
  rebuff: rebuff as unknown as Api,
  arize: arize as unknown as Api,
  dataxid: dataxid as unknown as Api,
  mlops: mlops as unknown as Api,
  incidents: incidents as unknown as Api,
  apikeys: apikeys as unknown as Api,
};
export const PROFILES = Object.keys(MODULES);

const SDK = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..", "..", "..");
export interface Scenario {
  what: string;
  method: string;
  path: string;
  code: string;
  key?: string;
  headers?: Record<string, string>;
  json?: unknown;
  body?: string;
  fields?: string[];
  after_ready?: boolean;
}
export const SCENARIOS: {
  setup_user: { email: string; disabled_email: string; password: string };
  scenarios: Scenario[];
} = JSON.parse(readFileSync(join(SDK, "scenarios.json"), "utf8"));

export function rebuffBin(): string {
  if (process.env["REBUFF_BIN"]) return process.env["REBUFF_BIN"];
  const target = process.env["CARGO_TARGET_DIR"] ?? join(homedir(), ".cache", "rebuff-target");
  return join(target, "debug", "rebuff");
}

export function run(args: string[], stdin?: string): string {
  return execFileSync(rebuffBin(), args, { input: stdin, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}

/** `rebuff serve --profile P` on an ephemeral port, over a fresh SQLite file. */
export class Server {
  readonly dir: string;
  readonly db: string;
  base = "";
  admin = "";
  private proc: ChildProcess | null = null;

  constructor(readonly profile: string, readonly extra: string[] = []) {
    this.dir = mkdtempSync(join(tmpdir(), `rebuff-sdk-ts-${profile}-`));
    this.db = join(this.dir, "api.db");
  }

  async start(): Promise<this> {
    const proc = spawn(
      rebuffBin(),
      ["serve", "--addr", "127.0.0.1:0", "--db", this.db, "--profile", this.profile, "--training-seconds", "1",
        "--monthly-rows", "1000", "--body-limit", "65536", ...this.extra],
      { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, RUST_LOG: "warn" } },
    );
    this.proc = proc;
    const lines = createInterface({ input: proc.stdout! });
    let text = "";
    for await (const line of lines) {
      text += line + "\n";
      if (line.includes(" on http://")) break;
    }
    this.base = "http://" + text.split("on http://")[1]!.split(/\s/)[0];
    this.admin = text.split(/\s+/).find((w) => w.startsWith("rb_test_"))!;
    return this;
  }

  key(...args: string[]): { id: string; key: string } {
    return JSON.parse(run(["keys", "create", "--db", this.db, "--org", "demo", "--json", ...args]));
  }

  url(path: string): string {
    return this.base + path;
  }

  close(): void {
    this.proc?.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function raw(method: string, url: string, headers: Record<string, string>, body?: string) {
  const res = await fetch(url, { method, headers, body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** A server with every key, account and resource the scenarios refer to. */
export async function prepared(profile: string): Promise<{ s: Server; v: Record<string, string> }> {
  const s = await new Server(profile).start();
  const v: Record<string, string> = { admin: s.admin };
  v["reader"] = s.key("--scope", "read").key;
  const revoked = s.key("--scope", "read");
  run(["keys", "revoke", "--db", s.db, "--org", "demo", revoked.id]);
  v["revoked"] = revoked.key;
  v["expired"] = s.key("--scope", "read", "--expires-at", "2001-09-09T01:46:40Z").key;
  v["fenced"] = s.key("--scope", "read", "--allow-ip", "10.0.0.0/8").key;
  const user = SCENARIOS.setup_user;
  run(["users", "create", "--db", s.db, "--org", "demo", "--email", user.email], user.password);
  run(["users", "create", "--db", s.db, "--org", "demo", "--email", user.disabled_email, "--disabled"], user.password);
  const auth = { authorization: `Bearer ${s.admin}`, "content-type": "application/json" };
  const post = (path: string, body: unknown, extra: Record<string, string> = {}) =>
    raw("POST", s.url(path), { ...auth, ...extra }, JSON.stringify(body));
  const login = await raw("POST", s.url("/v1/auth/login"), { "content-type": "application/json" },
    JSON.stringify({ email: user.email, password: user.password }));
  v["cookie"] = (login.headers.get("set-cookie") ?? "").split(";")[0]!;
  await post("/v1/projects", { name: "alpha" });
  v["project"] = JSON.parse((await post("/v1/projects", { name: "beta" })).text).id;
  const model = { name: "m", model_type: "ctgan", config: { batch_size: 32 } };
  v["model"] = JSON.parse((await post("/v1/models", model)).text).id;
  v["trained"] = JSON.parse((await post("/v1/models", model)).text).id;
  await post(`/v1/models/${v["trained"]}/train`, {});
  await post("/v1/projects", { name: "idem" }, { "idempotency-key": "k-1" });
  v["big"] = JSON.stringify({ name: "x".repeat(100 * 1024) });
  v["long_key"] = "k".repeat(300);
  return { s, v };
}

export async function waitReady(s: Server, model: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const res = await raw("GET", s.url(`/v1/models/${model}`), { authorization: `Bearer ${s.admin}` });
    if (JSON.parse(res.text).status === "ready") return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the model never became ready");
}

/** Replaces `$name` strings (and `/$name/` inside paths) with the prepared values. */
export function fill<T>(value: T, v: Record<string, string>): T {
  if (typeof value === "string") {
    if (value.startsWith("$") && value.slice(1) in v) return v[value.slice(1)] as T;
    let out: string = value;
    for (const [name, val] of Object.entries(v)) out = out.replaceAll(`/$${name}/`, `/${val}/`);
    return out as T;
  }
  if (Array.isArray(value)) return value.map((x) => fill(x, v)) as T;
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, fill(x, v)])) as T;
  }
  return value;
}

const RENDERED = new Map<string, { status: number; headers: Record<string, string>; body: string }>();

/** What a service of the profile answers for `code`: `rebuff render` output, parsed. */
export function rendered(profile: string, code: string, ...extra: string[]) {
  const key = `${profile} ${code} ${extra.join(" ")}`;
  let hit = RENDERED.get(key);
  if (hit === undefined) {
    const text = run(["render", "--profile", profile, "--code", code, "--request-id", "req_rendered", ...extra]);
    const at = text.indexOf("\n\n");
    const [statusLine, ...lines] = text.slice(0, at).split("\n");
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const i = line.indexOf(":");
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    hit = { status: Number(statusLine!.split(" ")[1]), headers, body: text.slice(at + 2) };
    RENDERED.set(key, hit);
  }
  return hit;
}

/** The codes a client of the profile cannot tell from `code` (same status, wire code and doc URL). */
export function indistinguishable(profile: string, code: string): Set<string> {
  const m = MODULES[profile]!;
  const form = (c: string): string => {
    const r = rendered(profile, c);
    const e = m.fromResponse(r.status, r.headers, r.body);
    return JSON.stringify([e.status, e.wireCode, e.docUrl]);
  };
  const target = form(code);
  return new Set(Object.keys(m.CODE_CLASSES).filter((c) => form(c) === target));
}

/** A scripted HTTP server: answers each request with the next response and records headers. */
export class FaultServer {
  readonly seen: IncomingHttpHeaders[] = [];
  url = "";
  private server: HttpServer;

  constructor(private readonly script: { status: number; headers: Record<string, string>; body: string }[]) {
    this.server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        this.seen.push(req.headers);
        const next = this.script.shift() ?? { status: 200, headers: {}, body: "{}" };
        res.sendDate = false;
        res.writeHead(next.status, next.headers);
        res.end(next.body);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/things`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A clock that only moves when the code under test sleeps. */
export class FakeTime {
  t = 1_000_000;
  readonly slept: number[] = [];
  now = (): number => this.t;
  sleep = async (ms: number): Promise<void> => {
    this.slept.push(ms);
    this.t += ms;
  };
}
