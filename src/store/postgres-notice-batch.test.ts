/**
 * A PostgreSQL notice batch reads its residents' certificates without row-locking them (commitNoticeBatch): a manual
 * revocation, which takes no resident lock, can come in between that read and the batch's own revocations. The
 * batch must then start again from a fresh read, so what it records (its notices' revocation counts) is what it
 * revoked. The manual revocation is made to land in that window for certain: a connection of the test holds it
 * uncommitted until the batch's update waits on its row, never by timing.
 */
import { describe, expect, it } from "vitest";
import { admin, ca, items } from "../../test/postgres-store-kit.js";
import { until } from "../../test/until.js";
import { usePostgres } from "../../test/use-postgres.js";
import { PostgresStore } from "./postgres.js";
import type { NoticeContext } from "./types.js";

const server = usePostgres();

describe("PostgreSQL notice batch and a manual revocation in between", () => {
  it("starts again from a fresh read when a certificate it revokes was revoked since it read it", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const manual = await admin(url);
    const watch = await admin(url);
    try {
      await s.putCa(ca);
      const code = "r1";
      await s.upsertResidents([{ residentCode: code, municipalityCode: "131016", fourItems: items, status: "active" as const }]);
      const serials = ["0e01", "0e02"];
      // one of each type: a second certificate of one type would supersede (revoke) the first
      await s.commitIssuances(serials.map((serial, i) => ({
        serial, caId: "13-sig", type: i ? ("authentication" as const) : ("signature" as const), residentCode: code, municipalityCode: "131016", fourItems: items,
        notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, 0]),
      })));
      // The manual revocation of the first certificate, begun and holding its row, not yet committed: the batch's
      // read still sees both certificates unrevoked.
      await manual.query("BEGIN");
      await manual.query("UPDATE certificates SET revoked_at = 5000, reason = 1, revocation_source = 'manual' WHERE serial = $1", [serials[0]]);
      const seen: number[] = [];
      const batch = s.commitNoticeBatch({ noticeIds: ["n1"], residentCodes: [code] }, (ctx: NoticeContext) => {
        const live = ctx.certificates.get(code) ?? [];
        seen.push(live.length);
        return {
          commit: {
            at: new Date(6000),
            notices: [{ noticeId: "n1", residentCode: code, sequence: 1, kind: "death", body: '{"noticeId":"n1"}', status: "applied" as const, revocations: live.length }],
            sequences: [{ residentCode: code, last: 1 }],
            revocations: live.map((x) => ({ serial: x.serial, reason: 5, source: "notice:n1", residentCode: code })),
            relinks: [],
            dirtyCas: live.length ? ["13-sig"] : [],
          },
        };
      });
      // The batch's update waits on the row the manual revocation holds; then that commits.
      await until(async () => (await watch.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0]!.n === 1, "the batch waiting on the manual revocation's row");
      await manual.query("COMMIT");
      const done = await batch;
      // Decided twice: on the read from before the manual revocation (two certificates), then on a fresh one (one).
      expect(seen).toEqual([2, 1]);
      expect(done.revoked).toBe(1);
      expect((await s.getNotice("n1"))?.revocations).toBe(1);
      const rows = (await watch.query<{ serial: string; reason: number; revocation_source: string }>("SELECT serial, reason, revocation_source FROM certificates ORDER BY serial")).rows;
      expect(rows).toEqual([
        { serial: serials[0], reason: 1, revocation_source: "manual" },
        { serial: serials[1], reason: 5, revocation_source: "notice:n1" },
      ]);
    } finally {
      await manual.query("ROLLBACK").catch(() => undefined);
      await manual.end();
      await watch.end();
      await s.close();
    }
  });
});
