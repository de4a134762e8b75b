/**
 * The interim CRL rounds of a notice run: due once the interval ran out, unless the run looks set to end within it,
 * and then at the latest after a second interval. The runs below are driven by a clock of the test's own (Date,
 * moved after each batch), so what they show does not depend on the host's speed.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { CrlUpdater } from "../crl/updater.js";
import { FixedClock } from "../pki/clock.js";
import { makeResidentCode } from "../registry/resident-code.js";
import { Workspace } from "../workspace/workspace.js";
import { runIngest } from "./ingestion.js";
import { interimRoundDue, type InterimRoundState } from "./interim-crl-round.js";
import { initCas } from "./manage.js";
import { prefecture } from "./prefectures.js";

describe("interimRoundDue", () => {
  const at = (s: Partial<InterimRoundState>): boolean =>
    interimRoundDue({ now: 30_000, started: 0, lastRound: 0, intervalMs: 30_000, bytesRead: 500, totalBytes: 1000, ...s });

  it("is not due before the interval ran out", () => {
    expect(at({ now: 29_999, bytesRead: 1 })).toBe(false);
  });

  it("is due once it ran out, when the rest of the input takes at least another interval at the pace so far", () => {
    expect(at({ bytesRead: 500 })).toBe(true); // 30 s for half: 30 s to go
    expect(at({ bytesRead: 100 })).toBe(true);
  });

  it("is left to the round after the last batch when the rest looks shorter than the interval", () => {
    expect(at({ bytesRead: 501 })).toBe(false); // just under 30 s to go
    expect(at({ bytesRead: 1000 })).toBe(false); // all read: the last batches are in hand
  });

  it("is due after a second interval whatever the estimate", () => {
    expect(at({ now: 59_999, bytesRead: 1000 })).toBe(false);
    expect(at({ now: 60_000, bytesRead: 1000 })).toBe(true);
    expect(at({ now: 70_000, lastRound: 10_000, bytesRead: 1000 })).toBe(true);
  });

  it("is due as before with nothing to judge from: a pipe, nothing read yet", () => {
    expect(at({ totalBytes: undefined, bytesRead: 1000 })).toBe(true);
    expect(at({ bytesRead: 0 })).toBe(true);
  });

  it("is due after every batch with an interval of 0", () => {
    expect(at({ now: 5, intervalMs: 0, bytesRead: 1000 })).toBe(true);
  });
});

describe("runIngest's interim CRL rounds", () => {
  // Enough lines that the reading ahead (a 64 KiB chunk or two) is a small part of the file.
  const BATCHES = 20;
  const PER_BATCH = 200;
  let dir: string;
  let ws: Workspace;
  /** each run's own residents (a notice revokes once): the runs' files in turn */
  const files: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "jpki-interim-round-"));
    ws = Workspace.create(join(dir, "ws"), { clock: new FixedClock("2026-05-01T00:00:00Z") });
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
    // A death notice per resident, each revoking the resident's certificate: every batch dirties the CA.
    const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
    const now = ws.clock.now();
    for (let f = 0; f < 3; f++) {
      const codes = Array.from({ length: BATCHES * PER_BATCH }, (_, i) => makeResidentCode(String(100_000 * (f + 1) + i).padStart(10, "0")));
      await ws.store.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      await ws.store.commitIssuances(
        codes.map((residentCode, i) => ({
          serial: (0x1000000 * (f + 1) + i).toString(16),
          caId: "13-sig",
          type: "signature" as const,
          residentCode,
          municipalityCode: "131016",
          fourItems: items,
          notBefore: now,
          notAfter: new Date("2033-01-01T00:00:00Z"),
          issuedAt: now,
          der: Buffer.from([0x30, 0]),
        })),
      );
      const file = join(dir, `notices-${f}.jsonl`);
      const lines = codes.map((residentCode, i) => JSON.stringify({ noticeId: `N-${f}-${i}`, residentCode, kind: "death", effectiveDate: "2026-04-01", sequence: 1, municipalityCode: "131016", before: items }));
      writeFileSync(file, lines.join("\n") + "\n");
      files.push(file);
    }
  }, 120_000);

  afterAll(async () => {
    await ws?.close();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  /**
   * A run of the next file in batches of PER_BATCH, the clock moved by `stepMs(batch)` after each batch's commit;
   * returns the batches (1-based) after which an interim round ran.
   */
  const run = async (intervalMs: number, stepMs: (batch: number) => number): Promise<number[]> => {
    const source = files.shift()!;
    vi.useFakeTimers({ toFake: ["Date"], now: new Date("2026-05-01T00:00:00Z") });
    let batch = 0;
    const rounds: number[] = [];
    // Stands in for the CRL publication: the rounds are what is looked at, not the CRLs.
    const updater = { published: [], regenerate: async () => (rounds.push(batch), []), regenerateDirty: async () => [] } as unknown as CrlUpdater;
    const r = await runIngest(ws, {
      source,
      format: "jsonl",
      rejectPath: `${source}.rejects.jsonl`,
      batchSize: PER_BATCH,
      crlIntervalMs: intervalMs,
      updater,
      readerThread: false,
      onProgress: () => vi.setSystemTime(Date.now() + stepMs(++batch)),
    });
    expect(batch).toBe(BATCHES);
    expect([r.rejected, r.revocations]).toEqual([0, BATCHES * PER_BATCH]);
    return rounds;
  };

  it("leaves a round due near the end of the run to the round after the last batch", async () => {
    // A batch a second, 17 s interval: it runs out after the 17th of 20 batches, with 3 s of the run to go.
    expect(await run(17_000, () => 1000)).toEqual([]);
  }, 60_000);

  it("publishes when the interval runs out early in the run, and then at most every interval", async () => {
    // 5 s interval: due after batch 5, and the rest (15 s at this pace) is longer than it.
    const rounds = await run(5000, () => 1000);
    expect(rounds[0]).toBe(5);
    expect(rounds.every((b, i) => i === 0 || b - rounds[i - 1]! >= 5)).toBe(true);
    // None in the last seconds before the end but after the last batch itself (which leaves the final round nothing).
    expect(rounds.filter((b) => b > 15 && b < BATCHES)).toEqual([]);
  }, 60_000);

  it("publishes after a second interval even when the estimate says the end is near", async () => {
    // Fast until batch 18 (the rest looks short), then a batch takes 30 s: past twice the interval since the start.
    expect(await run(15_000, (b) => (b === 18 ? 30_000 : 100))).toEqual([18]);
  }, 60_000);
});
