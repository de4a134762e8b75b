/**
 * Issuance benchmark: certificates issued per second end to end (registry lookup, TBS, RSA-2048 signature,
 * profile check, commit with the issuance record) next to raw RSA-2048 signatures per second with
 * node:crypto, measured in the same run with the same parallelism. Target ratio ≥ 0.8. Run on each backend
 * (bench/backends.ts): the store differs, the baseline is the same measurement taken again in that section.
 */
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IssuanceService } from "../src/ca/issuance.js";
import { initCas } from "../src/ca/manage.js";
import { prefecture } from "../src/ca/prefectures.js";
import { generateResidents } from "../src/registry/fixtures.js";
import { parseResidentRecord } from "../src/registry/resident.js";
import { type Backend } from "./backends.js";

export interface BenchResult {
  readonly name: string;
  readonly ours: number;
  readonly baseline: number;
  readonly unit: string;
  readonly baselineName: string;
  readonly target: number;
  /** extra lines printed under the ratio (absolute goals, breakdowns) */
  readonly note?: string;
  /** absolute goals beside the ratio (printed in the note), counted with the targets */
  readonly goals?: ReadonlyArray<{ readonly label: string; readonly ok: boolean }>;
  /** µs per unit of work (per notice, per CRL entry): what scale mode compares across sizes */
  readonly perUnitUs?: number;
}

async function rawSignsPerSecond(n: number, concurrency: number): Promise<number> {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const data = Buffer.alloc(1200, 7); // about the size of a JPKI TBSCertificate
  const one = () => new Promise<void>((res, rej) => sign("sha256", data, privateKey, (e) => (e ? rej(e) : res())));
  for (let i = 0; i < 50; i++) await one();
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < n) await one();
  }));
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

export async function benchIssue(backend: Backend, opts: { count?: number } = {}): Promise<BenchResult> {
  const count = opts.count ?? 4000;
  const concurrency = Number(process.env.JPKI_BENCH_CONCURRENCY ?? 64);
  const dir = mkdtempSync(join(tmpdir(), "jpki-bench-issue-"));
  const { ws } = await backend.workspace(dir);
  try {
    const passphrase = "bench";
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase });
    const now = ws.clock.now();
    const residents = [...generateResidents({ count, seed: "bench-issue", prefectures: ["13"] })].map((r) => parseResidentRecord(r, { now }));
    await ws.store.upsertResidents(residents);
    // Card keys are made on cards, not by the CA: a few stand in for all of them.
    const keys = Array.from({ length: 16 }, () =>
      generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" }),
    );
    const service = new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase });
    async function* apps() {
      let line = 0;
      for (const r of residents) yield { line: ++line, value: { residentCode: r.residentCode, type: "signature", publicKey: keys[line % keys.length]!.toString("base64") } };
    }
    // warm-up: JIT, CA key, statement caches
    await service.issueBatch((async function* () { yield { line: 1, value: { residentCode: residents[0]!.residentCode, type: "signature", publicKey: keys[0]!.toString("base64") } }; })());
    const baseline = await rawSignsPerSecond(count, concurrency);
    const t0 = process.hrtime.bigint();
    const res = await service.issueBatch(apps(), { concurrency });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (res.failed) throw new Error(`bench issuance failed: ${JSON.stringify(res.errors.slice(0, 3))}`);
    return { name: `issuance (${count} signature certificates) [${backend.name}]`, ours: res.issued / secs, baseline, unit: "certs/s", baselineName: "raw RSA-2048 signs/s (node:crypto, same concurrency)", target: 0.8 };
  } finally {
    await ws.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
