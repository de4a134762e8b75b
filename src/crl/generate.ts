/**
 * `jpki crl generate` as a library service: publishes the full CRL of each CA asked for.
 *
 * It loads only the CRL path — store, builder, key unwrap, signer — not the certificate-profile stack
 * (@peculiar/*, pkijs), and unlocks a CA's key on libuv's thread pool while that CA's entries stream from the
 * store, so neither the module graph nor PBKDF2 adds to the time a million-entry CRL takes. The price: a wrong
 * passphrase is found after the CRL number was reserved, which burns that number (numbers only ever increase;
 * RFC 5280 §5.2.3 asks no more) and leaves the CA due, as any interrupted publication does.
 */
import { existsSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { createAuditCheckpoint } from "../audit/checkpoint.js";
import { compromisedIn } from "../ca/compromised.js";
import { writeCaIndex } from "../ca/generation-index.js";
import { writeFailure } from "../store/files.js";
import { caGeneration, caId, isRetired, parseCaId } from "../ca/ids.js";
import { prefectureList } from "../ca/prefectures.js";
import { isJpkiError, JpkiError } from "../errors.js";
import { certificateParts } from "../pki/der.js";
import { unlockPrivateKey } from "../pki/keys.js";
import { openPkcs11Signer } from "../pki/pkcs11.js";
import { SoftwareSigner, type Signer } from "../pki/signer.js";
import { assertCaCertificate } from "../profile/ca-check.js";
import type { CertificateType } from "../profile/types.js";
import { ARL_SCOPE, DELTA_SCOPE, FULL_SCOPE, type CaRecord } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { arlEntries } from "./arl.js";
import { deltaCadence } from "./delta.js";
import { CrlPublisher, sweepCrlTemps, type CrlIssuer, type PublishedCrl } from "./publisher.js";
import { retiredCrlTerm, retiredCrlWanted } from "./retired.js";
import { dueCrls, refreshMarginMs } from "./schedule.js";

/**
 * A stored CA ready to sign CRLs: checked against the CA profile now, its key unlocking in the background. A token
 * key's module must be one of `pkcs11Modules` (the workspace's config.json).
 */
export function openCrlIssuer(record: CaRecord, passphrase: string, pkcs11Modules: readonly string[]): CrlIssuer {
  assertCaCertificate(record);
  if (record.keyRef) {
    // A token key: the login and key lookup are quick and synchronous; a wrong PIN fails here, before any
    // CRL number is reserved.
    const { subject, spki } = certificateParts(record.certificateDer);
    const s = openPkcs11Signer(record.keyRef, Buffer.from(spki), pkcs11Modules, `the key of CA ${record.id}`);
    return { id: record.id, subjectName: Buffer.from(subject), keyId: record.keyId, signer: Promise.resolve(s), spki: Buffer.from(spki), record };
  }
  if (!passphrase) throw new JpkiError("ERR_PASSPHRASE_MISSING", `no passphrase for the key of CA ${record.id}: set JPKI_PASSPHRASE or pass --passphrase-file`);
  const { subject, spki } = certificateParts(record.certificateDer);
  const signer: Promise<Signer> = unlockPrivateKey(record.encryptedKeyPem, passphrase, `the key of CA ${record.id}`).then((key) => {
    const s = new SoftwareSigner(key);
    if (!s.spki.equals(spki)) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `the key of CA ${record.id} does not match its certificate: the workspace is damaged`);
    return s;
  });
  // Awaited by the builder; until then a failure must not count as unhandled (publish rethrows it).
  signer.catch(() => undefined);
  return { id: record.id, subjectName: Buffer.from(subject), keyId: record.keyId, signer, spki: Buffer.from(spki), record };
}

export interface CrlSelection {
  /** one CA id such as "13-sig" */
  readonly ca?: string;
  /** prefecture codes: "13", "13,27", "01-47" or "all" (only CAs the workspace has) */
  readonly prefecture?: string;
  readonly purposes?: readonly CertificateType[];
}

/**
 * The CA ids a selection names, in order; ERR_CA_UNKNOWN when none of them exists. A prefecture selection names
 * every key generation of its CAs (ca/rollover.ts): the active one and the retired ones, whose CRLs go on while
 * they have certificates that have not expired ({@link retiredAndDone}).
 */
/** Whether a CA file is there as a regular file (a `ca init` killed between its DER and its PEM left only one). */
function isRegularFile(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return false;
  }
}

export async function selectCas(ws: Workspace, sel: CrlSelection): Promise<string[]> {
  if (!sel.prefecture === !sel.ca) throw new JpkiError("ERR_USAGE", "say which CRLs: --prefecture CODES or --ca ID");
  if (sel.ca) {
    const p = parseCaId(sel.ca);
    return [caId(p.prefectureCode, p.purpose, p.generation)];
  }
  const purposes = sel.purposes ?? ["signature", "authentication"];
  const all = await ws.store.listCas();
  const ids = prefectureList(sel.prefecture!).flatMap((p) =>
    purposes.flatMap((pu) =>
      all
        .filter((c) => c.prefectureCode === p.code && c.purpose === pu)
        .map((c) => c.id)
        .sort((a, b) => caGeneration(a) - caGeneration(b)),
    ),
  );
  if (!ids.length) throw new JpkiError("ERR_CA_UNKNOWN", `no CA for ${sel.prefecture} in this workspace: run 'jpki ca init --prefecture ${sel.prefecture}'`);
  return ids;
}

/**
 * Whether a CA is a retired key generation all of whose certificates have expired and left its CRLs: it
 * publishes no more delta or partition CRLs (nothing left to list or to check), and its full CRL and ARL only while
 * a link certificate they cover is in force (crl/retired.ts: verifiers check the links against them; the ARL
 * while asked for, as any CA's). "Left" as the publisher drops
 * entries (crl/publisher.ts): the expiredGraceDays grace (shared/spec/JPKI.md) has passed since the last
 * certificate's notAfter, and a full CRL issued after that notAfter was published (RFC 5280 §3.3). Done at
 * notAfter itself, the last CRL — issued before it — expired with no successor while its revoked entries
 * were still within the grace, and none ever appeared on a CRL issued beyond their validity.
 */
export async function retiredAndDone(ws: Workspace, all: readonly CaRecord[], id: string): Promise<boolean> {
  if (!isRetired(all, id)) return false;
  // Both reads begun together: a watched call's reads are its own only as they begin within it (store/watchdog.ts;
  // crl/finished.ts runs this in jpki serve's /metrics scrape and /crl/index.json). The CRL's read is a small one.
  const [last, latest] = await Promise.all([ws.store.lastCertificateExpiry(id), ws.store.latestCrl(id)]);
  if (last === undefined) return true;
  if (last.getTime() >= ws.clock.now().getTime() - ws.config.expiredGraceDays * 86_400_000) return false;
  return latest === undefined || latest.thisUpdate.getTime() > last.getTime();
}

/**
 * Which partition and ARL CRLs to publish besides each CA's full CRL: none (the default of `jpki crl
 * generate`), those due ("due": never published, with unpublished revocations, or near nextUpdate), or every
 * partition and the ARL ("all").
 */
export type PartitionSelection = "none" | "due" | "all";

/**
 * Publishes the full CRL of each CA — and, when the workspace publishes delta CRLs, a delta on it right after —
 * then (with `partitions`) its municipality partitions and ARL, one CA after the other; `onPublished` sees
 * each CRL as it lands. With `delta`, only the delta of each CA on its latest full CRL (ERR_CRL_NO_BASE when it
 * has none a delta can be built on; ERR_USAGE when the workspace publishes no deltas).
 */
export async function generateCrls(
  ws: Workspace,
  opts: CrlSelection & {
    readonly passphrase: string;
    readonly partitions?: PartitionSelection;
    readonly delta?: boolean;
    readonly onPublished?: (crl: PublishedCrl) => void;
  },
): Promise<PublishedCrl[]> {
  const ids = await selectCas(ws, opts);
  sweepCrlTemps(ws.paths.root); // leftovers of a killed run
  const publisher = new CrlPublisher({ store: ws.store, config: ws.config, clock: ws.clock, crlDir: ws.paths.crlDir, workspaceRoot: ws.paths.root });
  const which = opts.partitions ?? "none";
  if (opts.delta && which !== "none") throw new JpkiError("ERR_USAGE", "--delta publishes the delta CRLs alone: leave out --partitions");
  const deltas = deltaCadence(ws.config) !== undefined;
  if (opts.delta && !deltas) throw new JpkiError("ERR_USAGE", "this workspace publishes no delta CRLs: set deltaCrlIntervalMinutes in config.json (e.g. 5), then publish a full CRL");
  const scopes = await ws.store.crlScopeStatus();
  const due = which === "due" ? dueCrls(scopes, ws.clock.now(), { intervalMs: 0, marginMs: refreshMarginMs(ws.config) }) : [];
  const out: PublishedCrl[] = [];
  const landed = (crl: PublishedCrl) => (out.push(crl), opts.onPublished?.(crl));
  let first: CrlIssuer | undefined;
  const all = await ws.store.listCas();
  // One read of the links for what the run decides before it publishes (the publisher reads them again after each
  // reservation: crl/publisher.ts #linkEntries).
  const links = await ws.store.listCaLinks();
  const compromised = compromisedIn(links); // never the checkpoint's signer
  // An ARL that lists revoked link certificates (a retired key declared compromised: crl/arl.ts) and has not been
  // published since goes out with the full CRLs, --partitions or not: until it does, the link keeps vouching for
  // the stolen key. (Other ARLs list nothing and are left to --partitions and the schedule.)
  const arlDue = (id: string) => {
    const der = all.find((c) => c.id === id)?.certificateDer;
    return scopes.some((s) => s.caId === id && s.scope === ARL_SCOPE && s.dirty) && der !== undefined && arlEntries(links, id, der).length > 0;
  };
  // CA certificates are published with the CRLs: a rollover killed after its commit left its files unwritten.
  // Loaded only when a file is missing or a rollover happened: `crl generate` stays light.
  if (all.some((c) => !isRegularFile(join(ws.paths.caDir, `${c.id}.crt`)) || !isRegularFile(join(ws.paths.caDir, `${c.id}.pem`))) || links.length) {
    await (await import("../ca/rollover.js")).exportMissingCaFiles(ws, all);
  }
  // The index of generations with them (ca/generation-index.ts): written when missing or out of date, as after a
  // rollover made on another host sharing the store. Nothing is written when it is current. A hint to followers: one
  // that cannot be written (a full disk) holds back no CRL, and is raised once they are out.
  let indexFailure: { e: unknown } | undefined;
  if (all.length) {
    try {
      await writeCaIndex(ws, all, links);
    } catch (e) {
      const then = "the CRLs were published; once the cause is gone, run 'jpki crl generate' again";
      indexFailure = { e: writeFailure(e, "ca/index.json", ws.paths.caDir, then) ?? new JpkiError("ERR_FILE_UNUSABLE", `ca/index.json cannot be written in ${ws.paths.caDir} (${(e as NodeJS.ErrnoException).code ?? "error"}): ${then}`, { cause: e }) };
    }
  }
  // One CA after the other; one that fails (its crl/ entry unusable, --delta on a CA without a base) holds back
  // none of the others — a timer running 'crl generate --prefecture all' would otherwise leave every CA after it
  // unpublished, run after run — and the first failure is raised once the others are out. A passphrase that
  // does not open a key stops the run: it is the operator's, and would only burn a number of every CA.
  let failure: { e: unknown } | undefined = indexFailure;
  const publishCa = async (id: string): Promise<void> => {
    const record = all.find((c) => c.id === id);
    if (!record) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${id} in ${ws.paths.root}: 'jpki ca list' shows the CAs, 'jpki ca init' creates them`);
    if (await retiredAndDone(ws, all, id)) {
      // A retired generation whose certificates have all expired: no delta, no partition (nothing left in them), but
      // its full CRL and ARL stay current while a link certificate they cover is in force (crl/retired.ts; as the
      // schedule's updater does) — the full CRL on every run, as any CA's, the ARL when ARLs are asked for or it
      // lists a link revoked since (arlDue). Once the term has run out, nothing: the generation is finished.
      if (opts.delta) return;
      const term = retiredCrlTerm(record, links, ws.clock.now());
      const fullState = term.full ? (await ws.store.crlStatus()).find((s) => s.caId === id) : undefined;
      const arlState = scopes.find((s) => s.caId === id && s.scope === ARL_SCOPE);
      const full = retiredCrlWanted(term.full, fullState?.latest, fullState?.dirty ?? false);
      const arl = (which === "all" || due.some((d) => d.caId === id && d.scope === ARL_SCOPE) || arlDue(id)) && retiredCrlWanted(term.arl, arlState?.latest, arlState?.dirty ?? false);
      if (!full && !arl) return;
      const issuer = openCrlIssuer(record, opts.passphrase, ws.config.pkcs11Modules);
      if (full) landed(await publisher.publish(issuer, { deltas: false })); // no delta follows it: no freshestCRL
      if (arl) landed(await publisher.publishArl(issuer));
      return;
    }
    const issuer = openCrlIssuer(record, opts.passphrase, ws.config.pkcs11Modules);
    if (!compromised.has(id)) first ??= issuer;
    // Its partitions and ARL do not depend on the full CRL: one that fails holds none of them back (raised after).
    let own: { e: unknown } | undefined;
    try {
      if (!opts.delta) landed(await publisher.publish(issuer));
      if (deltas) {
        const delta = await publisher.publishDelta(issuer);
        if (delta) landed(delta);
        else if (opts.delta) throw new JpkiError("ERR_CRL_NO_BASE", `CA ${id} has no full CRL a delta CRL can be built on: run 'jpki crl generate --ca ${id}' first`);
      }
    } catch (e) {
      if (isJpkiError(e, "ERR_PASSPHRASE_WRONG")) throw e;
      own = { e };
    }
    if (which === "none") {
      // A certificate's distribution point names its municipality partition, and a verifier reads that one: a
      // published partition holding revocations the full CRL (or a delta, which has its base's scope and no IDP,
      // so an RFC 5280 verifier cannot combine it with the partition) lists must be republished with it, or it
      // answers "good" for them until its nextUpdate. Found by helpers: after 'crl generate --delta', OpenSSL
      // given the partition, the delta and the base said OK for a certificate revoked since the base; after a
      // plain 'crl generate', the partition alone did. (Partitions never published are left to --partitions and
      // the schedule.)
      const stale = scopes.filter((s) => s.caId === id && s.dirty && s.latest && s.scope !== FULL_SCOPE && s.scope !== ARL_SCOPE && s.scope !== DELTA_SCOPE);
      await publisher.publishPartitions(issuer, stale.map((s) => s.scope), landed);
      try {
        if (!opts.delta && arlDue(id)) landed(await publisher.publishArl(issuer));
      } catch (e) {
        if (isJpkiError(e, "ERR_PASSPHRASE_WRONG")) throw e;
        own ??= { e };
      }
    } else {
      const mine = which === "all" ? scopes.filter((s) => s.caId === id).map((s) => s.scope) : due.filter((d) => d.caId === id).map((d) => d.scope ?? "");
      // Each partition published is reported as it lands (also when a later one fails); the ARL does not depend
      // on them, and a partition that fails holds it back no more than the full CRL does.
      try {
        await publisher.publishPartitions(issuer, mine.filter((s) => s !== ARL_SCOPE && s !== FULL_SCOPE), landed);
      } catch (e) {
        if (isJpkiError(e, "ERR_PASSPHRASE_WRONG")) throw e;
        own ??= { e };
      }
      try {
        if (mine.includes(ARL_SCOPE)) landed(await publisher.publishArl(issuer));
      } catch (e) {
        if (isJpkiError(e, "ERR_PASSPHRASE_WRONG")) throw e;
        own ??= { e };
      }
    }
    if (own) throw own.e;
  };
  for (const id of ids) {
    try {
      await publishCa(id);
    } catch (e) {
      if (isJpkiError(e, "ERR_PASSPHRASE_WRONG") || isJpkiError(e, "ERR_PASSPHRASE_MISSING") || isJpkiError(e, "ERR_CA_UNKNOWN")) throw e;
      failure ??= { e };
    }
  }
  // The Bridge CA's ARL (ca/bridge.ts) goes with the ARLs of a whole selection: every time with "all", when due
  // with "due".
  // Loaded only for a workspace that has a Bridge: `crl generate` stays light (test/integration/cli-startup.test.ts).
  if (which !== "none" && !opts.ca && existsSync(join(ws.paths.root, "bridge"))) {
    const { bridgeArlPublished, refreshBridgeArl } = await import("../ca/bridge.js");
    const arl = await refreshBridgeArl(ws, opts.passphrase, { marginMs: refreshMarginMs(ws.config), force: which === "all" });
    if (arl) landed(bridgeArlPublished(arl));
  }
  // The audit log's head signed with the first CA's key, already unlocked (audit/checkpoint.ts): every
  // publication run anchors what came before it, at the cost of one signature.
  // After a failure, that failure is the one raised (the first CA's key may be what failed).
  try {
    if (out.length && first) await createAuditCheckpoint(ws.store, { caId: first.id, certificateDer: first.record.certificateDer, signer: await first.signer, now: ws.clock.now() });
  } catch (e) {
    if (!failure) throw e;
  }
  if (failure) throw failure.e;
  return out;
}
