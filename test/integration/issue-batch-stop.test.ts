/**
 * `jpki issue --batch --out-dir` stopped by SIGTERM (slow: spawns the built CLI). Killed, it lost every
 * certificate it had committed but not yet written (585 in the review's reproduction): in the store, nowhere on
 * disk, nothing said. Now it reads no further line, finishes what is in flight, writes every committed
 * certificate's file, says where it stopped, and exits 143; a re-run finishes the batch without issuing twice.
 */
import { spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { generateResidents } from "../../src/registry/fixtures.js";
import { childOutput } from "../child-output.js";
import { MAIN, cardKey, cardKeys, cli, openWorkspace, storeEnv, tempDir, tokyoWorkspace, writeJsonl } from "./helpers.js";

let dir: string;
let ws: string;
let batch: string;
/**
 * Lines in the batch. The stop comes once the first certificates are on disk (the first group commit, 500 with
 * --concurrency 16); what it lets finish is the signing window (16) and the commits in progress (at most 1,000), so
 * 3,000 leaves most of the file unread when it comes.
 */
const LINES = 3000;

beforeAll(async () => {
  dir = tempDir("jpki-issue-stop-");
  ws = join(dir, "ws");
  await tokyoWorkspace(ws);
  const residents = [...generateResidents({ count: LINES, seed: "issue-stop", prefectures: ["13"] })];
  writeJsonl(join(dir, "residents.jsonl"), residents);
  const imp = await cli(["--workspace", ws, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir });
  expect(imp.code, imp.stderr).toBe(0);
  const key = cardKeys(readFileSync(cardKey(dir, "card").pub, "utf8"));
  batch = writeJsonl(
    join(dir, "apps.jsonl"),
    residents.map((r, i) => ({ applicationId: `stop-${i + 1}`, residentCode: r.residentCode, type: "signature", publicKey: key() })),
  );
}, 300_000);

/** The .pem files in `out` (not the temporary files of a write in progress). */
function pems(out: string): string[] {
  try {
    return readdirSync(out).filter((f) => f.endsWith(".pem"));
  } catch {
    return [];
  }
}

describe("jpki issue --batch stopped by SIGTERM", () => {
  it("finishes what it committed: every certificate in the store has its file, the stop is said, exit 143; a re-run completes it", async () => {
    const out = join(dir, "out");
    const child = spawn(process.execPath, [MAIN, "--workspace", ws, "issue", "--batch", batch, "--out-dir", out, "--concurrency", "16", "--json"], {
      env: { ...process.env, JPKI_PASSPHRASE: "correct horse", ...(await storeEnv(ws)) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output = childOutput(child);
    // a condition, not a time: the first certificates are on disk, so the batch has begun committing
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && child.exitCode === null && pems(out).length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(child.exitCode, output.stderr()).toBeNull();
    child.kill("SIGTERM");
    const end = await output.ended;
    const stderr = output.stderr();
    expect(end, stderr).toEqual({ code: 143, signal: null });

    const report = JSON.parse(output.stdout());
    expect(report).toMatchObject({ stopped: true, signal: "SIGTERM", failed: 0, alreadyIssued: 0 });
    expect(report.issued).toBeGreaterThan(0);
    expect(report.read).toBeLessThan(LINES); // it really stopped mid-file
    expect(report.lastLineRead).toBe(report.read); // one application a line, no blank line
    expect(stderr).toContain(`issue --batch stopped by SIGTERM after line ${report.lastLineRead}: ${report.issued} issued`);

    // every certificate the store holds (the workspace held none before) has its file, and each file parses to it
    const wsp = await openWorkspace(ws);
    let stored: string[];
    try {
      stored = (await wsp.store.findCertificates({ limit: 1_000_000 })).map((c) => c.serial).sort();
    } finally {
      await wsp.close();
    }
    expect(stored.length).toBe(report.issued);
    expect(pems(out).sort()).toEqual(stored.map((s) => `${s}.pem`));
    for (const s of stored) expect(new X509Certificate(readFileSync(join(out, `${s}.pem`))).serialNumber.toLowerCase().replace(/^0+/, "")).toBe(s.toLowerCase().replace(/^0+/, ""));

    // the re-run the note advises: nothing issued twice, the rest issued
    const again = await cli(["--workspace", ws, "issue", "--batch", batch, "--out-dir", join(dir, "again"), "--json"], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ read: LINES, alreadyIssued: report.issued, issued: LINES - report.issued, failed: 0 });
    expect(again.json().stopped).toBeUndefined();
  }, 300_000);
});
