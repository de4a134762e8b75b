/**
 * OCSP's fresh answers (a nonce, several CertIDs) read a certificate's status each (ocsp/responder.ts #status). On
 * PostgreSQL each read was a round trip of its own, so concurrent nonce requests queued on the pool one query
 * apiece; the reads of one event-loop turn now share one query (store/coalesce.ts). What each caller gets is the
 * contract's concern (contract.ts, "answers many status reads made at once"); this counts the queries, and checks
 * the rule a restore's carried entries need: revoked first.
 */
import { describe, expect, it } from "vitest";
import { admin, ca, certifiedResidents, queriesDuring } from "../../test/postgres-store-kit.js";
import { usePostgres } from "../../test/use-postgres.js";
import { PostgresStore } from "./postgres.js";

const server = usePostgres();

describe("PostgreSQL status reads", () => {
  it("status reads made in one turn go to the server as one query", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    try {
      await s.putCa(ca);
      const serials = Array.from({ length: 40 }, (_, i) => `0b${i.toString(16).padStart(2, "0")}`);
      await certifiedResidents(s, serials.map((serial) => `r${serial}`), (i) => serials[i]!);
      await s.revoke({ serial: "0b07", revokedAt: new Date(5000), reason: 1, source: "manual" });
      // a carried entry beside an unrevoked row of the same certificate (an older backup brought the row back):
      // revoked, as on the CRLs — carryRevocations refuses this, a restore makes it, so it is written here directly
      const c = await admin(url);
      try {
        await c.query("INSERT INTO carried_revocations (ca_id, serial, municipality_code, revoked_at, reason, not_after) VALUES ('13-sig', '0b03', '131016', 7000, 4, $1)", [Date.UTC(2030, 0, 1)]);
      } finally {
        await c.end();
      }
      const { value: got, calls } = await queriesDuring(() => Promise.all([...serials, "0bff"].map((serial) => s.certificateStatus(serial))));
      const sent = calls.length;
      expect(sent).toBe(1);
      expect(got.filter((x) => x?.revocation).length).toBe(2);
      expect(got[3]).toEqual({ caId: "13-sig", revocation: { revokedAt: new Date(7000), reason: 4 } });
      expect(got[7]).toEqual({ caId: "13-sig", revocation: { revokedAt: new Date(5000), reason: 1 } });
      expect(got[40]).toBeUndefined();
      expect(got.slice(0, 40).every((x) => x?.caId === "13-sig")).toBe(true);
    } finally {
      await s.close();
    }
  });
  it("more serials in one turn than one query takes (the Coalescer's 1,000): a query per thousand, each serial its own status", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    try {
      await s.putCa(ca);
      const issued = Array.from({ length: 30 }, (_, i) => `0c${i.toString(16).padStart(4, "0")}`);
      await certifiedResidents(s, issued.map((serial) => `r${serial}`), (i) => issued[i]!);
      for (const serial of issued.filter((_, i) => i % 7 === 3)) await s.revoke({ serial, revokedAt: new Date(5000), reason: 1, source: "manual" });
      // 2,101 distinct serials, the issued ones spread through them (so in each query), each of those asked twice
      const unknown = Array.from({ length: 2101 - issued.length }, (_, i) => `0d${i.toString(16).padStart(4, "0")}`);
      const asked = unknown.flatMap((serial, i) => (i % 70 === 0 && issued[i / 70] ? [serial, issued[i / 70]!, issued[i / 70]!] : [serial]));
      expect(new Set(asked).size).toBe(2101);
      const { value: got, calls } = await queriesDuring(() => Promise.all(asked.map((serial) => s.certificateStatus(serial))));
      const sent = calls.length;
      expect(sent).toBe(3);
      const revoked = new Set(issued.filter((_, i) => i % 7 === 3));
      expect(got).toEqual(asked.map((serial) => issued.includes(serial)
        ? { caId: "13-sig", revocation: revoked.has(serial) ? { revokedAt: new Date(5000), reason: 1 } : undefined }
        : undefined));
    } finally {
      await s.close();
    }
  });
});
