/**
 * The OCSP signing certificates' renewal (RFC 6960 §4.2.2.2) against `jpki ca rewrap`: a process that opened the
 * CA keys before a rewrap to a new passphrase must not renew after it, for the key it would store is wrapped
 * under the old passphrase and no longer opens once the server restarts with the new one (OCSP answers tryLater).
 * The clock is injected: days of a schedule run in a few seconds.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { FixedClock } from "../pki/clock.js";
import { decryptPrivateKey } from "../pki/keys.js";
import { openCrlSchedule } from "../server/serve.js";
import type { OcspResponderRecord } from "../store/types.js";
import { Workspace } from "../workspace/workspace.js";
import { CertificationAuthority } from "./authority.js";
import { rewrapCaKeys } from "./manage.js";
import { OcspSignerRenewal, checkOwnResponderPassphrase, renewOcspSigners } from "./ocsp-signer.js";
import { rolloverCas } from "./rollover.js";
import { copyOfTemplate, tokyoCasTemplate } from "../../test/ca-template.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const codeOf = async (p: Promise<unknown>) => p.then(() => "accepted", (e) => (e as { code?: string }).code);
/** Whether `passphrase` opens every OCSP signing key stored now. */
const openWith = (recs: readonly OcspResponderRecord[], passphrase: string) =>
  recs.every((r) => {
    try {
      return decryptPrivateKey(r.encryptedKeyPem, passphrase).asymmetricKeyType === "rsa";
    } catch {
      return false;
    }
  });

const START = "2026-04-01T00:00:00Z";
let clock: FixedClock;
let ws: Workspace;
/** Tokyo's two CAs made once at START (test/ca-template.ts); each test opens a copy (the tests rewrap and renew). */
let template: string;
beforeAll(async () => {
  template = await tokyoCasTemplate("ocsp-signer", START);
});
beforeEach(() => {
  clock = new FixedClock(START);
  const root = copyOfTemplate(template, "ocsp-signer");
  ws = Workspace.open(root, { clock });
});
afterEach(async () => {
  await ws.close();
});

const openCa = async (id: string) => CertificationAuthority.open((await ws.store.listCas()).find((r) => r.id === id)!, "pw", ws.config);

/** A schedule's renewal (4-day certificates, renewed at half-life): what `jpki serve` runs with `passphrase`. */
const renewal = (caPassphrase: string, responderPassphrase = caPassphrase) => new OcspSignerRenewal(ws, { caPassphrase, responderPassphrase });

/** Ticks every `stepMs` for `ms`: what each tick issued and the codes of those that failed, with when. */
async function run(r: OcspSignerRenewal, ms: number, stepMs = 10 * MINUTE) {
  const issued: string[] = [];
  const failed: Array<{ at: number; code: string | undefined }> = [];
  for (let t = 0; t < ms; t += stepMs) {
    clock.advance(stepMs);
    try {
      issued.push(...(await r.tick()).map((x) => x.caId));
    } catch (e) {
      failed.push({ at: clock.now().getTime(), code: (e as { code?: string }).code });
    }
  }
  return { issued, failed };
}

describe("OcspSignerRenewal and ca rewrap", () => {
  it("renews without a rewrap, and across one that keeps the passphrase; after one to a new passphrase it stores nothing and says so at once, then hourly", async () => {
    const r = renewal("pw");
    expect((await r.preflight()).map((x) => x.caId)).toEqual(["13-sig", "13-auth"]);
    // no rewrap: each certificate renewed at half-life (2 days), under the passphrase
    expect((await run(r, 2 * DAY + HOUR)).issued).toEqual(["13-sig", "13-auth"]);
    expect(openWith(await ws.store.ocspResponders(), "pw")).toBe(true);

    // a rewrap under the same passphrase (the KDF upgrade): every key re-encrypted, each still opens with it
    await rewrapCaKeys(ws, { passphrase: "pw" });
    const kept = await run(r, 2 * DAY);
    expect(kept).toEqual({ issued: ["13-sig", "13-auth"], failed: [] });
    expect(openWith(await ws.store.ocspResponders(), "pw")).toBe(true);

    await rewrapCaKeys(ws, { passphrase: "pw", newPassphrase: "new" });
    const rewrapped = await ws.store.ocspResponders();
    const head = await ws.store.auditHead();
    // past the next renewal (due within 2 days): nothing issued, nothing stored
    const rewrapAt = clock.now().getTime();
    const after = await run(r, 3 * DAY);
    expect(after.issued).toEqual([]);
    expect(await ws.store.ocspResponders()).toEqual(rewrapped);
    expect(await ws.store.auditHead()).toEqual(head);
    // said at the first look after the rewrap, before any renewal was due, then once an hour
    expect(after.failed[0]).toEqual({ at: rewrapAt + 10 * MINUTE, code: "ERR_KEYS_REWRAPPED" });
    expect(after.failed.every((f) => f.code === "ERR_KEYS_REWRAPPED")).toBe(true);
    expect(after.failed.slice(1).map((f, i) => f.at - after.failed[i]!.at)).toEqual(Array(after.failed.length - 1).fill(HOUR));
    expect(after.failed.at(-1)!.at).toBeGreaterThan(rewrapAt + 3 * DAY - HOUR);
    expect(await r.tick()).toEqual([]); // within the hour: silent
    clock.advance(HOUR);
    const again = await r.tick().then(() => undefined, (e: unknown) => e);
    expect(isJpkiError(again, "ERR_KEYS_REWRAPPED")).toBe(true);
    expect((again as Error).message).toContain("restart 'jpki serve' with the new passphrase");
    expect((again as Error).message).toContain("'jpki ca rewrap'");

    // restarted with the new passphrase: renews what fell due, under it
    expect((await renewal("new").preflight()).map((x) => x.caId)).toEqual(["13-sig", "13-auth"]);
    expect(openWith(await ws.store.ocspResponders(), "new")).toBe(true);
  });

  it("a rewrap committing between a renewal's read and its write: the store refuses the key and nothing is stored", async () => {
    await renewal("pw").preflight();
    const cas = (await ws.store.listCas()).map((rec) => CertificationAuthority.open(rec, "pw", ws.config));
    const before = await ws.store.ocspResponders();
    clock.advance(3 * DAY); // both due
    rewrapBeforeFirstWrite();
    const err = await renewOcspSigners(ws.store, cas, { now: clock.now(), passphrase: "pw" }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_KEYS_REWRAPPED", details: { caId: "13-sig", changed: "the key of CA 13-sig" } });
    // the rewrap's keys, as it left them: the same certificates, under the new passphrase
    const now = await ws.store.ocspResponders();
    expect(now.map((x) => x.serial)).toEqual(before.map((x) => x.serial));
    expect(openWith(now, "new")).toBe(true);
  });

  it("the schedule's renewal caught in that race stops on the same round, and says so", async () => {
    const r = renewal("pw");
    const before = await r.preflight();
    clock.advance(3 * DAY);
    rewrapBeforeFirstWrite();
    expect(await codeOf(r.tick())).toBe("ERR_KEYS_REWRAPPED");
    const now = await ws.store.ocspResponders();
    expect(now.map((x) => x.serial).sort()).toEqual(before.map((x) => x.serial).sort());
    expect(openWith(now, "new")).toBe(true);
    clock.advance(10 * MINUTE);
    expect(await r.tick()).toEqual([]);
  });

  it("under a passphrase of their own (JPKI_OCSP_PASSPHRASE) the OCSP keys stay where they were, and renewal goes on", async () => {
    const r = renewal("pw", "ocsp-pw");
    await r.preflight();
    await rewrapCaKeys(ws, { passphrase: "pw", newPassphrase: "new", ocspPassphrase: "ocsp-pw" });
    expect(await run(r, 3 * DAY)).toEqual({ issued: ["13-sig", "13-auth"], failed: [] });
    expect(openWith(await ws.store.ocspResponders(), "ocsp-pw")).toBe(true);
  });

  it("serve's schedule loop reports it as an error, hourly, and goes on publishing CRLs", async () => {
    const controller = new AbortController();
    const errors: Array<{ at: number; code: string | undefined }> = [];
    let crlsAfter = 0;
    let rewrapAt = 0;
    const start = clock.now().getTime();
    const loop = await openCrlSchedule(ws, {
      passphrase: "pw",
      signal: controller.signal,
      ocsp: { responderPassphrase: "pw" },
      onError: (e) => errors.push({ at: clock.now().getTime(), code: (e as { code?: string }).code }),
      onCrl: () => void (rewrapAt && crlsAfter++),
      sleep: async () => {
        clock.advance(20 * MINUTE);
        if (!rewrapAt && clock.now().getTime() - start >= HOUR) {
          await rewrapCaKeys(ws, { passphrase: "pw", newPassphrase: "new" });
          rewrapAt = clock.now().getTime();
        }
        if (clock.now().getTime() - start >= 3 * DAY) controller.abort();
      },
    });
    await loop();
    // at the first round after the rewrap, before any renewal was due
    expect(errors[0]).toEqual({ at: rewrapAt, code: "ERR_KEYS_REWRAPPED" });
    expect(errors.every((e) => e.code === "ERR_KEYS_REWRAPPED")).toBe(true);
    expect(errors.slice(1).map((e, i) => e.at - errors[i]!.at)).toEqual(Array(errors.length - 1).fill(HOUR));
    expect(errors.at(-1)!.at).toBeGreaterThanOrEqual(start + 3 * DAY - HOUR); // to the end, not once only
    expect(crlsAfter).toBeGreaterThan(0); // the daily CRLs, signed with the keys it holds
    expect(openWith(await ws.store.ocspResponders(), "new")).toBe(true);
  });
});

describe("a CA rolled over under a running schedule", () => {
  it("gets its OCSP signing certificate at the round that publishes its first CRL, not at the minute's look", async () => {
    const controller = new AbortController();
    const issued: Array<{ caId: string; afterMs: number }> = [];
    let rolledAt = 0;
    let newId = "";
    let round = 0;
    const loop = await openCrlSchedule(ws, {
      passphrase: "pw",
      signal: controller.signal,
      ocsp: { responderPassphrase: "pw", onIssued: (r) => issued.push({ caId: r.caId, afterMs: clock.now().getTime() - rolledAt }) },
      // a poll a second, as serve runs it
      sleep: async () => {
        clock.advance(1000);
        if (++round === 3) {
          rolledAt = clock.now().getTime();
          newId = (await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" }))[0]!.current.id;
        }
        if (round === 10) controller.abort();
      },
    });
    await loop();
    // the round after the rollover publishes the new CA's CRL, and the renewal after it issues its signer then
    expect(issued.filter((i) => i.caId === newId)).toEqual([{ caId: newId, afterMs: 0 }]);
    expect((await ws.store.ocspResponders()).map((r) => r.caId)).toContain(newId);
  });
});

// JPKI_OCSP_PASSPHRASE set from a file with its newline wrapped the OCSP signing keys under "pass\n": they opened only
// from a variable set just so, never under the same passphrase exported by hand (nor as the CA one it was meant to be).
describe("checkOwnResponderPassphrase (JPKI_OCSP_PASSPHRASE)", () => {
  const refusal = async (value: string) => checkOwnResponderPassphrase(ws.store, value).then(() => undefined, (e: Error & { code?: string }) => e);
  it("a workspace without OCSP signing keys refuses a value ending with a line break or holding U+FFFD, never naming it", async () => {
    for (const bad of ["s3cret-ocsp\n", "s3cret-ocsp\r\n", "s3cret-ocsp\uFFFD"]) {
      const e = await refusal(bad);
      expect(e?.code, JSON.stringify(bad)).toBe("ERR_USAGE");
      expect(e!.message).toContain("JPKI_OCSP_PASSPHRASE");
      expect(e!.message).not.toContain("s3cret");
    }
    expect(await refusal("s3cret-ocsp")).toBeUndefined();
    expect(await refusal("line\nbreak inside")).toBeUndefined();
  });

  it("keys already wrapped under such a value still go by it; keys under another passphrase do not make it acceptable", async () => {
    await renewOcspSigners(ws.store, [await openCa("13-sig")], { now: clock.now(), passphrase: "legacy\n", ownPassphrase: true });
    expect(await refusal("legacy\n")).toBeUndefined();
    expect((await refusal("other\n"))?.code).toBe("ERR_USAGE");
  });
});

/** The next OCSP signer written waits for `ca rewrap --new-passphrase-file` (pw → new) to commit first. */
function rewrapBeforeFirstWrite(): void {
  const put = ws.store.putOcspResponder.bind(ws.store);
  let first = true;
  ws.store.putOcspResponder = async (rec, o) => {
    if (first) {
      first = false;
      await rewrapCaKeys(ws, { passphrase: "pw", newPassphrase: "new" });
    }
    return put(rec, o);
  };
}
