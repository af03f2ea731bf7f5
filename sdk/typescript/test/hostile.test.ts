// An `/errors.json` comes from outside: whatever its strings hold, the generated module
// compiles with `tsc --strict` and decodes the odd codes it lists.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { pathToFileURL } from "node:url";

import { run } from "./support.js";

it("keeps odd strings of an export inside their literals", async () => {
  const nasty = 'q"""\\\n\'x*/ `<>` \u2028 é ${x}';
  const dir = mkdtempSync(join(tmpdir(), "rebuff-sdk-ts-evil-"));
  try {
    const exportFile = join(dir, "errors.json");
    writeFileSync(exportFile, JSON.stringify({
      name: "evil api" + nasty,
      dialect: "incidents",
      errors: [
        { code: "a" + nasty, wire_code: "A" + nasty, status: 400, category: "c" + nasty, title: nasty, retry: "never", type_uri: nasty },
        { code: "second", status: 503, category: "c" + nasty, title: "t", retry: "backoff", sdk_class: "Unavailable" },
      ],
    }));
    const source = join(dir, "evil.ts");
    run(["docs", exportFile, "--format", "typescript", "--out", source]);
    const tsc = join(process.cwd(), "node_modules", "typescript", "bin", "tsc");
    execFileSync(process.execPath, [tsc, "--strict", "--target", "ES2022", "--module", "NodeNext", "--moduleResolution",
      "NodeNext", "--lib", "ES2022,DOM", "--types", "node", "--outDir", dir, source], { stdio: "pipe" });
    const m = await import(pathToFileURL(join(dir, "evil.js")).href);
    assert.equal(m.API_NAME, "evil api" + nasty);
    const e = m.fromResponse(400, null, JSON.stringify({ code: "A" + nasty, message: "m", request_id: "req_1" }));
    assert.equal(e.code, "a" + nasty);
    assert.equal(e.wireCode, "A" + nasty);
    assert.equal(e.name, "AqXXError");
    assert.equal(m.fromResponse(503, null, "").name, "Unavailable");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
