/**
 * `jpki store copy`: move a workspace between SQLite and PostgreSQL (the library: store/copy.ts). `jpki store check`:
 * what the store holds that no current jpki would have written (Store.sharedCertifiedKeys).
 */
import { Command, Option } from "commander";
import type { SharedCertifiedKey, StoreCopyProgress, WorkspaceStoreCopyReport } from "../../index.js";
import { JpkiError, library } from "../lib.js";
import { Context, withWorkspace } from "../context.js";
import { commandExitCodes, EXIT_KEYS_SHARED, VerdictExit } from "../exit-codes.js";
import { progressBar, type Io } from "../output.js";

const KIND_NAMES: Record<StoreCopyProgress["kind"], string> = {
  cas: "CAs",
  caLinks: "CA key rollover link certificates",
  retiredCaIds: "retired CA ids (never created again)",
  residents: "residents",
  certificates: "certificates",
  revocationOrder: "CRL entries in order",
  notices: "notices",
  residentSequences: "resident sequences",
  crlState: "CRL states",
  crlScopes: "CRL partition and ARL states",
  crls: "CRL rows",
  ocspResponders: "OCSP signing certificates",
  verifierCa: "verifier CA",
  verifiers: "verifiers",
  verifierFetches: "verifier fetch records",
  disclosures: "disclosure records",
  consents: "consents (新旧証明書の紐付け)",
  statusChecks: "liveness checks (現況確認)",
  registryOutbox: "notices pending delivery (registry outbox)",
  auditLog: "audit records",
  auditCheckpoints: "audit checkpoints",
};

/** How often a progress line goes to a stderr that is not a terminal (a log), and not before the copy has run this long. */
const LOG_EVERY_MS = 10_000;

function summary(r: WorkspaceStoreCopyReport): string {
  const f = r.fingerprint;
  const lines = [
    `copied ${r.workspace}`,
    `  from ${r.from.kind} ${r.from.location}`,
    `  to   ${r.to.kind} ${r.to.location}`,
    `  in ${(r.durationMs / 1000).toFixed(1)} s, read back and verified (counts, SHA-256 per kind, revoked serials per CA, CRL numbers)`,
    `  ${(Object.keys(KIND_NAMES) as Array<StoreCopyProgress["kind"]>).map((k) => `${r.counts[k]} ${KIND_NAMES[k]}`).join(", ")}`,
  ];
  for (const ca of [...new Set([...Object.keys(f.revocations), ...Object.keys(f.crls)])].sort()) {
    const rev = f.revocations[ca];
    const crl = f.crls[ca];
    lines.push(
      `  ${ca}: ${rev ? `${rev.count} revoked (sha256 ${rev.sha256.slice(0, 16)}…)` : "none revoked"}, ${crl ? `CRL numbers up to #${crl.highest}${crl.latestPublished ? `, latest published #${crl.latestPublished}` : ""}` : "no CRL yet"}`,
    );
  }
  lines.push(r.switched ? `switched: config.json now names the ${r.to.kind} store` : "not switched: config.json is unchanged");
  for (const n of r.next) lines.push(`next: ${n}`);
  return lines.join("\n");
}

/** The check's words for a person: each key, its certificates, and what to do. */
function checkSummary(at: Date, shared: readonly SharedCertifiedKey[]): string {
  if (!shared.length) return `clean: no public key is certified to more than one resident by certificates live at ${at.toISOString()}`;
  const lines = [`${shared.length} public key${shared.length === 1 ? " is" : "s are"} certified to more than one resident by live certificates (written by a jpki from before the key-in-use check):`];
  for (const k of shared) {
    lines.push(`  key ${k.certifiedKey}:`);
    for (const c of k.certificates) lines.push(`    ${c.caId} ${c.serial} resident ${c.residentCode} ${c.type}, until ${c.notAfter.toISOString()}`);
  }
  lines.push("next: a key in two residents' hands is compromised: revoke them (jpki revoke --serial S --reason key-compromise), then jpki crl generate");
  return lines.join("\n");
}

export function makeStoreCommand(io: Io): Command {
  const store = new Command("store").description("the workspace's store: move it between SQLite and PostgreSQL, check what older releases wrote");
  store
    .command("check")
    .description("find public keys that live certificates certify to more than one resident (written by a jpki from before the key-in-use check)")
    .addHelpText(
      "after",
      `
An issuance refuses a public key the store has certified to another resident (the key-in-use check, on the
certificates' certified_key column). A jpki from before that column, or one still running after the upgrade
that added it until the writer guard (SQLite schema 32, PostgreSQL 29), inserted certificates without it and
checked nothing; the upgrades filled the column from each certificate without a word. This lists the keys
that live certificates (not revoked, not past notAfter) certify to two residents or more, with those
certificates. Keys are compared whole (the column holds 8 octets of a digest); one resident's certificates of
one key (a renewal that kept it) are allowed and not listed.

A resident-code change (住民票コード変更) the store has taken — the registry record closed with its successor code
(jpki registry apply), or the change's notice ingested (jpki notices ingest) — joins the two codes: one person's
certificates under both are not listed. One the store has not taken yet cannot be known here: one person's
certificates under an old and a new code then show as two residents. Before revoking, ingest the notices the
registry has sent and run the check again.

It reads the column's index: the keys held by more than one certificate, then their certificates. Run it once
after upgrading a store an older release wrote to, and after stopping any older jpki process.

${commandExitCodes({
  ok: "clean: no such key",
  verdicts: [[EXIT_KEYS_SHARED, "such keys were found (listed; --json: sharedKeys). No error: no code is printed"]],
  errors: [["ERR_STORE_UNREACHABLE", "the store did not answer"]],
})}

Examples:
  jpki store check
  jpki store check --json | jq '.sharedKeys[].certificates[].serial'`,
    )
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      await withWorkspace(ctx, async (ws) => {
        const at = ws.clock.now();
        const shared = await ws.store.sharedCertifiedKeys({ now: at });
        ctx.out.result(
          { at: at.toISOString(), clean: shared.length === 0, sharedKeys: shared.map((k) => ({ certifiedKey: k.certifiedKey, certificates: k.certificates.map((c) => ({ ...c, notAfter: c.notAfter.toISOString() })) })) },
          () => checkSummary(at, shared),
        );
        if (shared.length) throw new VerdictExit(EXIT_KEYS_SHARED);
      });
    });
  store
    .command("copy")
    .description("copy the whole store to another (SQLite ↔ PostgreSQL), verify it, and switch the workspace to it")
    .requiredOption("--to <target>", "sqlite | sqlite:PATH | postgres (JPKI_STORE) | postgres://user@host/db")
    .option("--no-switch", "copy and verify only: the workspace stays on its current store")
    .addOption(new Option("--chunk-size <n>", "records per chunk (memory stays bounded by it)").default("1000"))
    .addHelpText(
      "after",
      `
Moves everything the workspace's store holds — CAs (their encrypted keys exactly as stored), residents with
their notice sequences, certificates with application ids and revocations, applied and held change notices,
the CA side's notice sequences, CRL rows (numbers, states, revisions) and CRL freshness — record by record,
in chunks, so a store of millions of certificates copies in bounded memory. Published files (ca/, crl/,
certs/) stay where they are: both stores describe the same workspace directory.

Targets:
  --to postgres            the PostgreSQL database in JPKI_STORE (from a SQLite workspace)
  --to postgres://u@h/db   that database; a password in it is refused (the command line is visible to every
                           user of the host): put it in PGPASSWORD or ~/.pgpass
  --to sqlite              back to the workspace's jpki.db (from a PostgreSQL workspace, JPKI_STORE its source)
  --to sqlite:PATH         a standalone SQLite store at PATH, a new file; the workspace is never switched to it

Safety:
  - The target must be empty (a new database, or one 'jpki ca init' never used): else ERR_STORE_NOT_EMPTY.
  - It is loaded in one transaction (a new SQLite file is built under a temporary name and linked into place
    only when verified): a copy killed midway leaves an empty target, never one that looks complete.
  - The source is read from one snapshot, and while the copy runs its writers wait (then fail with
    ERR_WORKSPACE_LOCKED), so no revocation lands behind the copy's back; readers go on.
  - On a switch the old store is retired in that same locked transaction: any later write to it, by a jpki
    process that opened it before (a 'jpki watch', a command waiting for its lock), fails with ERR_STORE
    ("this jpki store is retired…") instead of being lost. Stop such processes first all the same.
  - config.json names the new store only once the old one is retired: a move killed at any point leaves one
    store taking writes, or none, never two. Run the same command again to finish it: a copy already in place
    that matches the store is switched to as it is; a jpki.db in the way (left by a stopped move and older than
    the store now, or retired) is renamed jpki.db.unused-<UTC time>, never deleted, and the copy made afresh.
  - The target is read back and compared: counts and a SHA-256 per kind of record, the revoked serials per
    CA with reasons and sources, the CRL numbers per CA. Any difference: ERR_STORE_COPY_MISMATCH, no switch.
  - CRL order: the target lists each CA's entries in the source's order (its revocation log is rebuilt
    so, and checked).

Switching: a verified copy to PostgreSQL from a SQLite workspace, or to its jpki.db from a PostgreSQL one,
rewrites config.json's "store" (not with --no-switch). Moving to PostgreSQL, the old jpki.db is kept,
read-only, as jpki.db.before-postgres-<UTC time>, and every later command needs JPKI_STORE; moving back, the
PostgreSQL database keeps its records, read-only, for you to drop. Without a switch the source is not
retired. CRL numbers continue above the source's on the new store.

Progress goes to stderr (a bar on a terminal, a line every ${LOG_EVERY_MS / 1000} s otherwise); --json prints the report.

Examples:
  JPKI_STORE=postgres:///jpki?host=/run/postgresql jpki store copy --to postgres
  JPKI_STORE=postgres:///jpki?host=/run/postgresql jpki store copy --to sqlite
  jpki store copy --to sqlite:/backup/jpki-$(date +%F).db --json`,
    )
    .action(async (o: { to: string; switch: boolean; chunkSize: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const chunkSize = Number(o.chunkSize);
      if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > 100_000) throw new JpkiError("ERR_USAGE", "--chunk-size must be a whole number from 1 to 100000");
      const dir = ctx.workspaceDir;
      const { copyWorkspaceStore, parseStoreTarget } = await library();
      const to = parseStoreTarget(o.to, { storeUrl: ctx.storeUrl, cwd: io.cwd });
      const started = Date.now();
      let logged = started;
      const onProgress = (p: StoreCopyProgress) => {
        const what = `${p.phase === "copy" ? "copying" : "verifying"} ${KIND_NAMES[p.kind]} ${p.done}/${p.total}`;
        const fraction = p.allTotal ? p.allDone / p.allTotal : 1;
        if (io.stderr.isTTY && !ctx.out.json) {
          ctx.out.progress(`${progressBar(fraction)}  ${what}`);
        } else if (Date.now() - logged >= LOG_EVERY_MS) {
          logged = Date.now();
          ctx.out.info(`store copy: ${what} (${p.phase} ${Math.floor(fraction * 100)}%, ${Math.round((logged - started) / 1000)} s)`);
        }
      };
      const report = await copyWorkspaceStore(dir, { to, storeUrl: ctx.storeUrl, switch: o.switch, chunkSize, onProgress });
      ctx.out.progressDone();
      ctx.out.result(report, () => summary(report));
    });
  return store;
}
