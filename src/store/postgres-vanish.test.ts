/**
 * A PostgreSQL host that vanishes silently (a failover, a NAT entry dropped, a cable pulled: no FIN, no RST) and
 * comes back, seen through jpki serve's store watchdog (store/watchdog.ts). An in-process TCP proxy stands between
 * the store and a throwaway server: vanished, it forwards nothing either way on the connections it holds and
 * answers nothing on new ones; back, new connections are forwarded again while the old ones stay dead, as after a
 * real outage. The proxy's own end answers TCP keepalive, so only jpki itself can free a connection hung on it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { usePostgres } from "../../test/use-postgres.js";
import { PostgresStore } from "./postgres.js";
import { StoreWatchdog } from "./watchdog.js";
import { firstStallHeld } from "../../test/stall-clock.js";
import { DisclosureLog } from "../verifier/disclosure-log.js";
import { crlIndexRecords, everyCrl } from "../server/crl-records.js";
import { VerifierValidationService } from "../verifier/validation-service.js";
import type { Workspace } from "../workspace/workspace.js";
import { OcspResponder } from "../ocsp/responder.js";
import { systemClock } from "../pki/clock.js";
import { VerifierAccess } from "../server/access.js";
import { tokenSha256 } from "../verifier/credentials.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

/**
 * A listener on loopback standing in for the database host: each connection it accepts is handed to `accept` with
 * the server's socket path. The two proxies below differ only in what they do with a connection.
 */
abstract class LoopbackProxy {
  readonly #server: Server = createServer((client) => this.accept(client, this.#target));
  #target = "";
  port = 0;

  protected abstract accept(client: Socket, target: string): void;
  /** the sockets close() destroys */
  protected abstract sockets(): Iterable<Socket>;

  async listen(target: string): Promise<this> {
    this.#target = target;
    await new Promise<void>((r) => this.#server.listen(0, "127.0.0.1", r));
    this.port = (this.#server.address() as { port: number }).port;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.sockets()) s.destroy();
    await new Promise((r) => this.#server.close(r));
  }
}

/** Connections forwarded while `alive`: vanish() ends that for good for those open then. */
interface Pair {
  alive: boolean;
}

class VanishingProxy extends LoopbackProxy {
  #vanished = false;
  readonly #pairs = new Set<Pair>();
  readonly #sockets = new Set<Socket>();

  protected sockets(): Iterable<Socket> {
    return this.#sockets;
  }

  #track(s: Socket): void {
    this.#sockets.add(s);
    s.on("error", () => undefined);
    s.on("close", () => this.#sockets.delete(s));
  }

  protected accept(client: Socket, target: string): void {
    this.#track(client);
    // Vanished: the connection is accepted by the kernel anyway; nothing comes back (a host that does not answer).
    const pair: Pair = { alive: !this.#vanished };
    client.on("data", () => undefined);
    if (!pair.alive) return;
    this.#pairs.add(pair);
    const upstream = connect({ path: target });
    this.#track(upstream);
    client.on("data", (d) => pair.alive && upstream.write(d));
    upstream.on("data", (d) => pair.alive && client.write(d));
    // An end is forwarded only while alive: a vanished host sends no FIN, and one sent to it never arrives.
    client.on("end", () => pair.alive && upstream.end());
    upstream.on("end", () => pair.alive && client.end());
  }

  vanish(): void {
    this.#vanished = true;
    for (const p of this.#pairs) p.alive = false;
    this.#pairs.clear();
  }

  back(): void {
    this.#vanished = false;
  }
}

/**
 * A proxy that loses a connection right after a statement went through: armed with `cutAfter(marker)`, once the client
 * has sent bytes holding `marker` and the server has answered them (so the server carried the statement out), the
 * answer is dropped, the client's side reset (ECONNRESET) and the server's side ended. `refuse()`: connections open
 * now are reset, and new ones reset at once (nothing is sent on them).
 */
class CuttingProxy extends LoopbackProxy {
  #marker: Buffer | undefined;
  #refusing = false;
  readonly #open = new Set<Socket>();

  protected sockets(): Iterable<Socket> {
    return this.#open;
  }

  protected accept(client: Socket, target: string): void {
    client.on("error", () => undefined);
    if (this.#refusing) return void client.resetAndDestroy();
    const upstream = connect({ path: target });
    upstream.on("error", () => undefined);
    this.#open.add(client);
    client.on("close", () => (this.#open.delete(client), upstream.destroy()));
    upstream.on("close", () => client.destroy());
    let sent = false;
    client.on("data", (d) => {
      if (this.#marker && d.includes(this.#marker)) (sent = true), (this.#marker = undefined);
      upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (!sent) return void client.write(d);
      // the server answered the statement: that answer never reaches the client
      client.resetAndDestroy();
      upstream.end();
    });
  }

  cutAfter(marker: string): void {
    this.#marker = Buffer.from(marker);
  }

  refuse(refusing = true): void {
    this.#refusing = refusing;
    if (refusing) for (const s of this.#open) s.resetAndDestroy();
  }
}

const server = usePostgres();

const POOL = 3;
const WAIT_MS = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A migrated database, and the store opened on it through `proxy` (listening from now on), with a pool of `POOL`.
 * `warm`: the pool's connections opened first, as many reads at once as it holds (a vanish then finds them all
 * open); `closeWaitMs`: the store's close cuts connections still out after that long (PostgresStore.open).
 */
async function through<P extends LoopbackProxy>(proxy: P, o: { warm?: boolean; closeWaitMs?: number } = {}): Promise<{ proxy: P; store: PostgresStore }> {
  const url = await server.createDatabase();
  await (await PostgresStore.open(url, { create: true })).close();
  await proxy.listen(join(server.socketDir, ".s.PGSQL.5432"));
  const store = await PostgresStore.open(`postgresql://jpki@127.0.0.1:${proxy.port}/${new URL(url).pathname.slice(1)}`, { poolSize: POOL, connectTimeoutMs: 1000, ...(o.closeWaitMs !== undefined ? { closeWaitMs: o.closeWaitMs } : {}) });
  if (o.warm) await Promise.all(Array.from({ length: POOL }, () => store.listCas()));
  return { proxy, store };
}

/** The store through a VanishingProxy, its pool's connections open, closes cutting at the watchdog's bound. */
const throughProxy = () => through(new VanishingProxy(), { warm: true, closeWaitMs: WAIT_MS });
/** The store through a CuttingProxy. */
const throughCuttingProxy = () => through(new CuttingProxy());

/**
 * A migrated database, the store on it with a pool of one connection (so a hung read holds the only one), a session of
 * its own that takes table locks (`admin`), and a watchdog; `close` ends all three.
 */
async function lockRig(o: { lockTimeoutMs?: number } = {}): Promise<{ store: PostgresStore; admin: pg.Client; dog: StoreWatchdog; close: () => Promise<void> }> {
  const url = await server.createDatabase();
  await (await PostgresStore.open(url, { create: true })).close();
  const store = await PostgresStore.open(url, { poolSize: 1, closeWaitMs: WAIT_MS, ...o });
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const dog = new StoreWatchdog({ waitMs: WAIT_MS });
  return {
    store,
    admin,
    dog,
    close: async () => {
      dog.close();
      await admin.end();
      await store.close();
    },
  };
}

describe("a PostgreSQL host that vanishes without a word and comes back (store/watchdog.ts, postgres.ts)", () => {
  it("probes past the bound while it is gone give their connections up, so once it is back a probe gets a fresh connection and the store answers again within a few bounds", async () => {
    const { proxy, store } = await throughProxy();
    const clock = firstStallHeld();
    const dog = new StoreWatchdog({ waitMs: WAIT_MS, now: clock.now, onStalled: clock.onStalled });
    // The validation API's owner read: the reads of one turn are gathered into one query (coalesce.ts), which is
    // tied to their call all the same.
    let sent = 0;
    const read = () =>
      dog.run("reading the certificate's owner", () => {
        sent++;
        return store.getCertificateOwner("01");
      });
    try {
      expect(await read()).toBeUndefined();
      proxy.vanish();
      // The first probe: its waiter gets 503 at the bound; its own outcome is looked at below.
      let own!: Promise<unknown>;
      await expect(
        dog.run("reading the certificate's owner", () => {
          sent++;
          const p = store.getCertificateOwner("01");
          own = p.catch((e: unknown) => e);
          return p;
        }),
      ).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      // the stall stays: the next call is refused at once, not sent to the host that is gone
      expect(dog.stalled).toBe(true);
      const before = sent;
      await expect(read()).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(sent).toBe(before);
      clock.release();
      // More probes than the pool has connections: each went late on one (or waited for one). Before, each kept
      // its connection hung until TCP keepalive ended it, which the proxy's live end never does; now once the pool
      // has none to give, the one a late call has held longest is cut.
      while (sent <= POOL + 3) {
        await expect(read()).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
        await sleep(WAIT_MS / 4);
      }
      // the first probe's connection was cut so: its own outcome says so, typed (a write on it may have committed)
      expect(await own).toMatchObject({ code: "ERR_STORE_UNRESPONSIVE", details: { lateCall: "connection-closed" } });
      // and that failure, the store's own, did not end the stall: only an answer in time does
      expect(dog.stalled).toBe(true);
      proxy.back();
      await vi.waitFor(() => read(), { timeout: 30_000, interval: WAIT_MS / 4 });
      expect(dog.stalled).toBe(false);
      expect(await read()).toBeUndefined();
      expect(await dog.run("reading the CA certificates", () => store.listCas())).toEqual([]);
    } finally {
      dog.close();
      await store.close();
      await proxy.close();
    }
  }, 180_000);

  it("a disclosure write past the bound: its callers get 503, its connection is cut once the pool needs it, and the stop still counts it as abandoned (it may have committed); once the host is back the log writes again", async () => {
    const { proxy, store } = await throughProxy();
    const dog = new StoreWatchdog({ waitMs: WAIT_MS });
    const log = new DisclosureLog(store, { watchdog: dog });
    const rec = (serial: string) => ({ verifierId: "v-1", serial, issuer: "13-sig", residentCode: "12345678906", purpose: "signature" as const, legalBasis: undefined, at: new Date(1000), validationTime: new Date(1000), answer: "valid", itemsDisclosed: false });
    const writes = vi.spyOn(store, "appendDisclosures");
    try {
      await log.record(rec("01"));
      proxy.vanish();
      await expect(log.record(rec("02"))).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      proxy.back();
      // probes a bound apart: those on the pool's dead connections go late too, until the pool is full and 02's is cut
      await vi.waitFor(() => log.record(rec("03")), { timeout: 30_000, interval: WAIT_MS / 4 });
      expect(dog.stalled).toBe(false);
      // 02's statement never reached the server (the proxy dropped it), nor did those of the probes that went out on
      // the pool's other dead connections; jpki cannot know that: each is abandoned (cut, or still hung: it may have
      // committed), none a write known to have failed, none counted as written. Only 01 and the last 03 were answered.
      expect(writes.mock.calls.length).toBeGreaterThanOrEqual(3);
      expect(await log.close()).toEqual({ abandoned: writes.mock.calls.length - 2, lost: 0 });
      expect(log.written).toBe(2);
      expect((await store.listDisclosures({ residentCode: "12345678906" })).map((d) => d.serial)).toEqual(["01", "03"]);
    } finally {
      dog.close();
      await store.close();
      await proxy.close();
    }
  }, 180_000);
});

describe("one table locked by another session while the rest of the store answers (StoreWatchdog holds)", () => {
  it("the kind of call that waits on the lock is held once the watchdog's own probe answers: refused at once but one probe per bound, its probes late again stall nothing else, and the stall is said once; the lock gone, its probe answers and the hold ends", async () => {
    const { store, admin, close } = await lockRig();
    const stalls: string[] = [];
    const dog = new StoreWatchdog({ waitMs: WAIT_MS, probe: () => store.ping(), onStalled: (e) => stalls.push(e.code) });
    const fetch = { verifierId: "v-1", scope: "crl", path: "/crl/1.crl", status: 200, at: new Date(0), count: 1, lastAt: new Date(0) };
    let sent = 0;
    const write = () => dog.run("recording verifier fetches", (deadline) => (sent++, store.recordVerifierFetches([fetch], { deadline })));
    try {
      await admin.query("BEGIN");
      await admin.query("LOCK TABLE verifier_fetches IN ACCESS EXCLUSIVE MODE");
      await expect(write()).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(dog.stalled).toBe(true);
      // no request: the watchdog's own probe (SELECT 1) answers, which the lock does not stop
      await vi.waitFor(() => expect(dog.stalled).toBe(false), { timeout: 30_000, interval: WAIT_MS / 4 });
      expect(dog.heldKinds).toEqual(["recording verifier fetches"]);
      // the held kind's probe waits on the lock; meanwhile another write is refused without being sent
      const probe = write();
      const before = sent;
      await expect(write()).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(sent).toBe(before);
      // the probe goes late: before, that stalled the whole store again (every route refused, the stall said
      // again), once per cycle for as long as the lock was held
      await expect(probe).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(dog.stalled).toBe(false);
      expect(await dog.run("reading the CA certificates", () => store.listCas())).toEqual([]);
      expect(stalls).toEqual(["ERR_STORE_UNRESPONSIVE"]);
      await admin.query("ROLLBACK");
      await vi.waitFor(() => write(), { timeout: 30_000, interval: WAIT_MS / 4 });
      expect(dog.heldKinds).toEqual([]);
      await write();
      expect(stalls).toEqual(["ERR_STORE_UNRESPONSIVE"]);
    } finally {
      dog.close();
      await close();
    }
  }, 180_000);
});

describe("the watchdog's own probe (StoreWatchdog probe: Store.ping)", () => {
  it("ends the stall once the host is back though no request comes: its probes while the host is gone hang and keep the stall, and give their connections up as requests' probes do", async () => {
    const { proxy, store } = await throughProxy();
    const dog = new StoreWatchdog({ waitMs: WAIT_MS, probe: () => store.ping() });
    try {
      proxy.vanish();
      await expect(dog.run("reading the CA certificates", () => store.listCas())).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      // gone for a few more bounds: the watchdog's probes take the pool's dead connections and hang, one per bound
      await sleep(WAIT_MS * 5);
      expect(dog.stalled).toBe(true);
      proxy.back();
      // nobody asks anything from here on: before, the stall lasted until a request came to probe
      await vi.waitFor(() => expect(dog.stalled).toBe(false), { timeout: 30_000, interval: WAIT_MS / 4 });
      expect(await dog.run("reading the CA certificates", () => store.listCas())).toEqual([]);
    } finally {
      dog.close();
      await store.close();
      await proxy.close();
    }
  }, 180_000);
});

describe("a watched call that gets a pooled connection only after its bound (postgres.ts #tie)", () => {
  it("sends nothing on it: a write past its deadline is not begun (WriteDeadline), fails typed as not sent, and the connection goes back to the pool unharmed", async () => {
    const { store, admin, dog, close } = await lockRig();
    const rec = { verifierId: "v-1", serial: "01", issuer: "13-sig", residentCode: "12345678906", purpose: "signature" as const, legalBasis: undefined, at: new Date(1000), validationTime: new Date(1000), answer: "valid", itemsDisclosed: false };
    try {
      // an unwatched write (a CRL publication, say) holds the pool's one connection, waiting for a lock
      await admin.query("BEGIN");
      await admin.query("LOCK TABLE disclosures IN ACCESS EXCLUSIVE MODE");
      const holder = store.appendDisclosures([{ ...rec, serial: "00" }]);
      await vi.waitFor(async () => expect((await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0]!.n).toBe(1), { timeout: 30_000, interval: 20 });
      // a watched write waits for the connection past its bound
      let own!: Promise<unknown>;
      await expect(
        dog.run("recording disclosures", (deadline) => {
          const p = store.appendDisclosures([rec], { deadline });
          own = p.catch((e: unknown) => e);
          return p;
        }),
      ).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      await admin.query("ROLLBACK");
      await holder;
      expect(await own).toMatchObject({ code: "ERR_STORE_UNRESPONSIVE", details: { lateCall: "not-sent" } });
      // never written, and the store goes on on the same connection
      expect((await store.listDisclosures({ residentCode: "12345678906" })).map((d) => d.serial)).toEqual(["00"]);
    } finally {
      await close();
    }
  }, 180_000);
});

describe("a watched call of several store reads (server/crl-records.ts: the /metrics scrape's, /crl/index.json's)", () => {
  it("ties each read's connection to the call: one that hangs after the first reads answered is cut once the pool needs its connection, and a probe then answers", async () => {
    const { store, admin, dog, close } = await lockRig();
    // each with the table whose read is made to wait for a lock another session holds; the reads before it answer
    const reads: Array<[string, string, () => Promise<unknown>]> = [
      ["the scrape's", "crl_scopes", () => everyCrl({ store, config: { deltaCrlIntervalMinutes: 15 } }, dog)],
      ["the index's", "crl_scopes", () => crlIndexRecords(store, dog, async () => undefined)],
      // a read the index can begin only once its records are in (which retired generations ended), within the call
      ["the index's next step", "verifiers", () => crlIndexRecords(store, dog, () => store.listVerifiers())],
    ];
    try {
      for (const [which, table, read] of reads) {
        await admin.query("BEGIN");
        await admin.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
        await expect(read(), which).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
        expect(dog.stalled, which).toBe(true);
        // the pool's one connection is held by the late call's hung read: cut for the probe, which gets a fresh one
        // (before, a read begun after the call's first await was no call's: never cut, and the probe waited for it)
        await vi.waitFor(() => dog.run("a probe of the store", () => store.ping()), { timeout: 30_000, interval: WAIT_MS / 4 });
        expect(dog.stalled, which).toBe(false);
        await admin.query("ROLLBACK");
        // the late read's kind was held when the probe answered (StoreWatchdog admit): answered now, it is no longer,
        // so the next case's late read stalls the store again. Asked until it answers: on a loaded host (load 20) the
        // read on the probe's fresh connection took longer than the 200 ms bound once, which is the watchdog's to say.
        await vi.waitFor(() => read(), { timeout: 30_000, interval: WAIT_MS / 4 });
        expect(dog.heldKinds, which).toEqual([]);
      }
      expect(await vi.waitFor(() => crlIndexRecords(store, dog, async () => "more"), { timeout: 30_000, interval: WAIT_MS / 4 })).toEqual({ status: [], more: "more" });
    } finally {
      await close();
    }
  }, 180_000);

  it("the validation API's reads of the CA certificates (the compromised generations, then the CAs) likewise", async () => {
    const { store, admin, dog, close } = await lockRig();
    const root = mkdtempSync(join(tmpdir(), "jpki-vanish-"));
    const ws = { store, paths: { root, crlDir: join(root, "crl") }, clock: { now: () => new Date() } } as unknown as Workspace;
    const service = new VerifierValidationService(ws, { watchdog: dog });
    const verifier = { id: "v-1", name: "v", kind: "private" as const, tokenSha256: undefined, certSha256: undefined, certNotAfter: undefined, createdAt: new Date(0), revokedAt: undefined };
    try {
      // the CAs wait for a lock another session holds; the CA links read before them answer
      await admin.query("BEGIN");
      await admin.query("LOCK TABLE cas IN ACCESS EXCLUSIVE MODE");
      await expect(service.validate(verifier, { certificate: Buffer.from([0x30, 0x00]), purpose: "signature" })).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(dog.stalled).toBe(true);
      await vi.waitFor(() => dog.run("a probe of the store", () => store.ping()), { timeout: 30_000, interval: WAIT_MS / 4 });
      expect(dog.stalled).toBe(false);
      await admin.query("ROLLBACK");
    } finally {
      await service.close();
      await close();
      rmSync(root, { recursive: true, force: true });
    }
  }, 180_000);
  it("OCSP's status reads, gathered into one query (a nonce request's fresh answers), likewise: late, each fails typed and the query's connection is cut for the probe; once the lock is gone they answer again", async () => {
    // lock_timeout past the test's time (20 s by default): only the watchdog's cut can free the hung query's connection
    const { store, admin, dog, close } = await lockRig({ lockTimeoutMs: 600_000 });
    const status = (serial: string) => dog.run("an OCSP status read", () => store.certificateStatus(serial));
    try {
      await admin.query("BEGIN");
      await admin.query("LOCK TABLE certificates IN ACCESS EXCLUSIVE MODE");
      // three in one turn, one of them twice: one query, hung on the lock, tied to the first call
      const late = await Promise.allSettled(["0a", "0b", "0a", "0c"].map(status));
      expect(late.map((x) => (x.status === "rejected" ? (x.reason as { code?: string }).code : "answered"))).toEqual(Array(4).fill("ERR_STORE_UNRESPONSIVE"));
      expect(dog.stalled).toBe(true);
      // the pool's one connection is held by the hung query: cut for the probe, which gets a fresh one
      await vi.waitFor(() => dog.run("a probe of the store", () => store.ping()), { timeout: 30_000, interval: WAIT_MS / 4 });
      expect(dog.stalled).toBe(false);
      await admin.query("ROLLBACK");
      // asked until they answer (on a loaded host a read may pass the 200 ms bound, which is the watchdog's to say)
      expect(await vi.waitFor(() => Promise.all(["0a", "0b"].map(status)), { timeout: 30_000, interval: WAIT_MS / 4 })).toEqual([undefined, undefined]);
    } finally {
      await close();
    }
  }, 180_000);
});

describe("the OCSP responder's poll and reload (ocsp/responder.ts), watched as the routes' reads are", () => {
  it("hung on the vanished host, a poll fails at the bound (before, every later poll joined it until TCP gave up: no pre-produced answer meanwhile, a connection lost), says nothing per poll, and once the host is back a poll reads anew", async () => {
    const { proxy, store } = await throughProxy();
    const clock = firstStallHeld();
    const dog = new StoreWatchdog({ waitMs: WAIT_MS, now: clock.now, onStalled: clock.onStalled });
    const errors: unknown[] = [];
    const responder = new OcspResponder({ store, clock: systemClock, passphrase: "ocsp-pw", watchdog: dog, onError: (e) => errors.push(e) });
    try {
      await responder.refresh();
      const polls = vi.spyOn(store, "caRevisions");
      const reloads = vi.spyOn(store, "listCas");
      proxy.vanish();
      // the reload's reads (no responder loaded yet: every poll reloads) take the pool's dead connections and hang
      await responder.refresh();
      expect(dog.stalled).toBe(true);
      // refused while stalled, not sent: a poll a second does not take the pool's connections one by one
      await responder.refresh();
      expect(reloads).toHaveBeenCalledTimes(1);
      clock.release();
      proxy.back();
      await vi.waitFor(
        async () => {
          await responder.refresh();
          expect(dog.stalled).toBe(false);
          expect(polls).toHaveBeenCalled();
        },
        { timeout: 30_000, interval: WAIT_MS / 4 },
      );
      // the stall is the watchdog's to report (once, onStalled), not each poll's
      expect(errors).toEqual([]);
    } finally {
      responder.stop();
      dog.close();
      await store.close();
      await proxy.close();
    }
  }, 180_000);
});

describe("the registered verifiers' re-reads (server/access.ts), watched as the routes' reads are", () => {
  it("reads hung on the vanished host fail at the bound and give their connections up, so once it is back the list is fresh again (before, three hung reads took three connections nothing cut and no read was asked after them: every credential route 503 until TCP gave up)", async () => {
    const { proxy, store } = await throughProxy();
    const dog = new StoreWatchdog({ waitMs: WAIT_MS });
    const errors: string[] = [];
    const access = new VerifierAccess(store, {
      prefix: "",
      openRoutes: [],
      rateLimit: { perSecond: 0, burst: 0 },
      refreshMs: WAIT_MS / 4,
      refreshWaitMs: WAIT_MS,
      maxListAgeMs: WAIT_MS * 2,
      watchdog: dog,
      onError: (_e, what) => errors.push(what),
    });
    await access.start();
    try {
      expect(access.listStale).toBe(false);
      proxy.vanish();
      await vi.waitFor(() => expect(access.listStale).toBe(true), { timeout: 30_000, interval: WAIT_MS / 4 });
      await sleep(WAIT_MS * 3);
      proxy.back();
      await vi.waitFor(() => expect(access.listStale).toBe(false), { timeout: 30_000, interval: WAIT_MS / 4 });
      expect(dog.stalled).toBe(false);
      // the stall is the watchdog's to report (once), not each refused re-read's
      expect(errors).toEqual([]);
    } finally {
      await access.close();
      dog.close();
      await store.close();
      await proxy.close();
    }
  }, 180_000);
});

describe("the verifier fetch records' flush (server/access.ts), watched as the registrations' re-reads are", () => {
  it("a write hung on the vanished host is abandoned at the bound (before, it and every later flush waited until TCP gave up), later flushes are refused while stalled and keep their records, the write whose connection was cut counts as maybe written and is never retried, and once the host is back the rest is written once", async () => {
    const { proxy, store } = await throughProxy();
    const token = "jpkiv_" + "A".repeat(43);
    await store.putVerifier({ id: "v-1", name: "v", kind: "government", tokenSha256: tokenSha256(token), certSha256: undefined, certNotAfter: undefined, createdAt: new Date(0), revokedAt: undefined });
    const clock = firstStallHeld();
    const dog = new StoreWatchdog({ waitMs: WAIT_MS, now: clock.now, onStalled: clock.onStalled });
    const errors: string[] = [];
    const access = new VerifierAccess(store, { prefix: "", openRoutes: [], rateLimit: { perSecond: 0, burst: 0 }, refreshMs: 3_600_000, flushMs: 3_600_000, watchdog: dog, onError: (_e, what) => errors.push(what) });
    await access.start();
    const writes = vi.spyOn(store, "recordVerifierFetches");
    const own = (i: number) => (writes.mock.results[i]!.value as Promise<void>).catch((e: unknown) => e);
    let fetched = 0;
    /** one verifier fetch of a path of its own: one record */
    const fetch = () => {
      const req = { url: `/crl/${++fetched}.crl`, method: "GET", headers: { authorization: `Bearer ${token}` }, rawHeaders: ["Authorization", `Bearer ${token}`], socket: { encrypted: false } } as unknown as IncomingMessage;
      expect(access.admit(req, { writeHead() {}, end() {} } as unknown as ServerResponse)).toBe(true);
      access.record(req, 200);
    };
    try {
      fetch();
      await access.flush();
      expect(access.fetchRecords).toMatchObject({ recorded: 1, queued: 0, unknown: 0 });
      proxy.vanish();
      fetch();
      // settles at the bound, its write abandoned, not waited for
      await access.flush();
      expect(dog.stalled).toBe(true);
      expect(access.fetchRecords).toMatchObject({ recorded: 1, queued: 0, unknown: 1 });
      // refused while stalled: not sent, kept
      fetch();
      await access.flush();
      expect(writes).toHaveBeenCalledTimes(2);
      expect(access.fetchRecords).toMatchObject({ recorded: 1, queued: 1, unknown: 1 });
      clock.release();
      // flushes a bound apart, each the stall's probe, until the pool has no connection to give and the first
      // abandoned write's is cut
      await vi.waitFor(
        async () => {
          fetch();
          await access.flush();
          expect(await Promise.race([own(1), sleep(0).then(() => "pending")])).toMatchObject({ code: "ERR_STORE_UNRESPONSIVE", details: { lateCall: "connection-closed" } });
        },
        { timeout: 30_000, interval: WAIT_MS / 2 },
      );
      proxy.back();
      await vi.waitFor(
        async () => {
          await access.flush();
          expect(access.fetchRecords.queued).toBe(0);
        },
        { timeout: 30_000, interval: WAIT_MS / 2 },
      );
      const { recorded, unknown, dropped, queued } = access.fetchRecords;
      // every record is counted once: written, or in a write abandoned past the bound (it may have committed)
      expect(dropped).toBe(0);
      expect(queued).toBe(0);
      expect(unknown).toBeGreaterThanOrEqual(1);
      expect(recorded + unknown).toBe(fetched);
      // none of the abandoned writes reached the server (the proxy dropped them), and none was sent twice
      const rows = await store.listVerifierFetches({ verifierId: "v-1" });
      expect(rows).toHaveLength(recorded);
      expect(new Set(rows.map((r) => r.path)).size).toBe(rows.length);
      expect(rows.map((r) => r.path)).not.toContain("/crl/2.crl");
      // the stall is the watchdog's to report (once), not each refused or abandoned flush's
      expect(errors).toEqual([]);
    } finally {
      await access.close();
      dog.close();
      await store.close();
      await proxy.close();
    }
  }, 180_000);
});

describe("a write whose connection is lost right after it was sent (ECONNRESET: store/write-outcome.ts)", () => {
  const token = "jpkiv_" + "B".repeat(43);

  it("the fetch-record flush counts its records as maybe written and never sends them again (before, re-queued: the server had committed them, and they were written twice); records whose write was never sent are kept and written once", async () => {
    const { proxy, store } = await throughCuttingProxy();
    await store.putVerifier({ id: "v-1", name: "v", kind: "government", tokenSha256: tokenSha256(token), certSha256: undefined, certNotAfter: undefined, createdAt: new Date(0), revokedAt: undefined });
    const dog = new StoreWatchdog({ waitMs: 5_000 });
    const errors: unknown[] = [];
    const access = new VerifierAccess(store, { prefix: "", openRoutes: [], rateLimit: { perSecond: 0, burst: 0 }, refreshMs: 3_600_000, flushMs: 3_600_000, watchdog: dog, onError: (e) => errors.push(e) });
    await access.start();
    let fetched = 0;
    const fetch = () => {
      const req = { url: `/crl/${++fetched}.crl`, method: "GET", headers: { authorization: `Bearer ${token}` }, rawHeaders: ["Authorization", `Bearer ${token}`], socket: { encrypted: false } } as unknown as IncomingMessage;
      expect(access.admit(req, { writeHead() {}, end() {} } as unknown as ServerResponse)).toBe(true);
      access.record(req, 200);
    };
    const paths = async () => (await store.listVerifierFetches({ verifierId: "v-1" })).map((r) => r.path);
    try {
      fetch();
      await access.flush();
      expect(access.fetchRecords).toMatchObject({ recorded: 1, queued: 0, unknown: 0 });
      // sent, carried out by the server, its answer lost with the connection
      proxy.cutAfter("verifier_fetches");
      fetch();
      await access.flush();
      expect(access.fetchRecords).toMatchObject({ recorded: 1, queued: 0, unknown: 1, dropped: 0 });
      expect(errors).toMatchObject([{ code: "ERR_STORE_UNREACHABLE", details: { connectionLost: "after-sending" } }]);
      expect(await paths()).toEqual(["/crl/1.crl", "/crl/2.crl"]);
      // never sent: the connections are reset while idle and new ones refused, so the write fails to get one
      proxy.refuse();
      await sleep(50);
      fetch();
      await access.flush();
      expect(access.fetchRecords).toMatchObject({ recorded: 1, queued: 1, unknown: 1, dropped: 0 });
      expect(errors.length).toBeGreaterThanOrEqual(2);
      expect(errors.at(-1)).toMatchObject({ code: "ERR_STORE_UNREACHABLE" });
      expect((errors.at(-1) as { details?: object }).details).not.toHaveProperty("connectionLost");
      proxy.refuse(false);
      await vi.waitFor(
        async () => {
          await access.flush();
          expect(access.fetchRecords.queued).toBe(0);
        },
        { timeout: 30_000, interval: 50 },
      );
      expect(access.fetchRecords).toMatchObject({ recorded: 2, queued: 0, unknown: 1, dropped: 0 });
      // each fetch once: the record whose answer was lost is there, and was not written again
      expect(await paths()).toEqual(["/crl/1.crl", "/crl/2.crl", "/crl/3.crl"]);
    } finally {
      await access.close();
      dog.close();
      await store.close();
      await proxy.close();
    }
  }, 180_000);

  it("the disclosure log answers its callers 503 and counts the write as lost at the stop (it may have committed), as one abandoned past the bound", async () => {
    const { proxy, store } = await throughCuttingProxy();
    const dog = new StoreWatchdog({ waitMs: 5_000 });
    const log = new DisclosureLog(store, { watchdog: dog });
    const rec = (serial: string) => ({ verifierId: "v-1", serial, issuer: "13-sig", residentCode: "12345678906", purpose: "signature" as const, legalBasis: undefined, at: new Date(1000), validationTime: new Date(1000), answer: "valid", itemsDisclosed: false });
    try {
      await log.record(rec("01"));
      // one verifier's group: its own statement, its audit record chained in it (schema 32), not jpki_audit_append
      proxy.cutAfter("jpki_disclosures_append_one");
      await expect(log.record(rec("02"))).rejects.toMatchObject({ code: "ERR_STORE_UNREACHABLE", details: { connectionLost: "after-sending" } });
      await log.record(rec("03"));
      // a group of two verifiers' answers: the statement that chains through jpki_audit_append
      proxy.cutAfter("jpki_disclosures_append_owned");
      const two = [log.record(rec("04")), log.record({ ...rec("05"), verifierId: "v-2" })];
      for (const p of two) await expect(p).rejects.toMatchObject({ code: "ERR_STORE_UNREACHABLE", details: { connectionLost: "after-sending" } });
      expect(await log.close()).toEqual({ abandoned: 0, lost: 3 });
      expect(log.written).toBe(2);
      // the server had committed them: records of checks whose answer was 503 (the safe side: disclosure-log.ts)
      expect((await store.listDisclosures({ residentCode: "12345678906" })).map((d) => d.serial)).toEqual(["01", "02", "03", "04", "05"]);
    } finally {
      dog.close();
      await store.close();
      await proxy.close();
    }
  }, 180_000);

  it("a liveness-check write (one transaction): lost after COMMIT was sent, it says it may have committed (and did); lost before, it says nothing of the kind and nothing was written", async () => {
    const { proxy, store } = await throughCuttingProxy();
    const check = (at: number) => ({ verifierId: "v-1", at: new Date(at), caId: "13-sig", serial: `0b${at}`, certificateId: undefined, status: "good" as const, reason: undefined, revokedAt: undefined, replacedBy: undefined });
    try {
      proxy.cutAfter("COMMIT\0");
      await expect(store.recordStatusChecks([check(1)], [])).rejects.toMatchObject({ code: "ERR_STORE_UNREACHABLE", details: { connectionLost: "after-sending" } });
      proxy.cutAfter("INSERT INTO status_checks");
      const before = await store.recordStatusChecks([check(2)], []).catch((e: unknown) => e);
      expect(before).toMatchObject({ code: "ERR_STORE_UNREACHABLE" });
      expect((before as { details?: object }).details).not.toHaveProperty("connectionLost");
      await vi.waitFor(async () => expect((await store.listStatusChecks({ verifierId: "v-1" })).map((c) => c.serial)).toEqual(["0b1"]), { timeout: 30_000, interval: 50 });
    } finally {
      await store.close();
      await proxy.close();
    }
  }, 180_000);
});
