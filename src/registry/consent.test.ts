import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { SqliteStore } from "../store/sqlite.js";
import type { Store } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { grantConsent, withdrawConsent } from "./consent.js";
import { changeResidentCode } from "./counter.js";
import { makeResidentCode } from "./resident-code.js";

const NOW = new Date(Date.UTC(2026, 4, 1, 3));
const A = makeResidentCode("5000000001");
const D = makeResidentCode("5000000002");
const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };

async function setup(): Promise<SqliteStore> {
  const s = SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-consent-")), "jpki.db"), { create: true });
  await s.upsertResidents([{ residentCode: A, municipalityCode: "131016", fourItems: items, status: "active" }]);
  await s.putVerifier({ id: "v-01", name: "Example Bank", kind: "private", tokenSha256: "ab".repeat(32), certSha256: undefined, certNotAfter: undefined, createdAt: new Date(1000), revokedAt: undefined });
  return s;
}

const ws = (store: Store) => ({ store, clock: { now: () => NOW } }) as unknown as Workspace;

describe("grantConsent", () => {
  it("a resident-code change landing between the check and the grant: refused, and no live consent left under the old code", async () => {
    const s = await setup();
    // The counter changes the code after grantConsent has read the record (active) and before it records.
    let raced = false;
    const racing = new Proxy(s, {
      get(target, prop, receiver) {
        if (prop === "grantConsent") {
          return async (c: Parameters<Store["grantConsent"]>[0]) => {
            if (!raced) {
              raced = true;
              await changeResidentCode(s, A, D, { now: NOW });
            }
            return s.grantConsent(c);
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    }) as Store;
    await expect(grantConsent(ws(racing), { residentCode: A, verifierId: "v-01" })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_RESIDENT_NOT_ELIGIBLE"));
    expect(raced).toBe(true);
    // "granted" under a closed code would have been used never: nothing live is left there
    expect(await s.liveConsents("v-01", [A, D])).toEqual(new Set());
    // granted under the new code, it holds
    await grantConsent(ws(s), { residentCode: D, verifierId: "v-01" });
    expect(await s.liveConsents("v-01", [A, D])).toEqual(new Set([D]));
    await s.close();
  });

  it("withdrawing under the old code of a resident-code change says where the consent went, and withdraws nothing", async () => {
    const s = await setup();
    await grantConsent(ws(s), { residentCode: A, verifierId: "v-01" });
    await changeResidentCode(s, A, D, { now: NOW });
    const e = await withdrawConsent(ws(s), { residentCode: A, verifierId: "v-01" }).catch((x: unknown) => x);
    expect(isJpkiError(e, "ERR_CONSENT_UNKNOWN")).toBe(true);
    // "no live consent" alone reads as "nothing to withdraw": the resident's consent is still live, under D
    expect((e as Error).message).toMatch(/removed.*new code/);
    expect(await s.liveConsents("v-01", [A, D])).toEqual(new Set([D]));
    await s.close();
  });
});
