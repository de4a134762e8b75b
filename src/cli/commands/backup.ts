/** `jpki backup DEST` and `jpki restore SRC`: the library's backup/backup.ts and backup/restore.ts. */
import { Command } from "commander";
import type { BackupProgress, BackupReport, RestoreProgress, RestoreReport } from "../../index.js";
import { JpkiError, library } from "../lib.js";
import { Context } from "../context.js";
import type { Io } from "../output.js";

const BACKUP_PHASES: Record<BackupProgress["phase"], string> = {
  store: "copying the store (one consistent snapshot; other processes go on writing)",
  files: "copying config.json, ca/, crl/ and arl/",
  manifest: "writing the manifest",
};

const RESTORE_PHASES: Record<RestoreProgress["phase"], string> = {
  verify: "checking every file against the manifest",
  files: "staging the backup's files",
  store: "restoring the store",
  numbers: "moving CRL numbering past the safety gap",
  swap: "putting the restored workspace in place",
};

function backupSummary(r: BackupReport): string {
  const m = r.manifest;
  const lines = [
    `backup written to ${r.dest}`,
    `  ${m.store} store (schema ${m.schemaVersion}), snapshot taken ${m.takenAt}, ${m.files.length} files, ${r.bytes} bytes, in ${(m.durationMs / 1000).toFixed(1)} s`,
    m.authentication
      ? "  manifest authenticated under the CA passphrase (HMAC-SHA256): a restore with the passphrase refuses it rewritten"
      : "  manifest not authenticated (hashes only): give the CA passphrase (JPKI_PASSPHRASE or --passphrase-file) to authenticate it",
  ];
  const byCa = new Map<string, string[]>();
  for (const c of m.crlNumbers) byCa.set(c.caId, [...(byCa.get(c.caId) ?? []), `${c.scope === "" ? "full" : c.scope} #${c.highest}`]);
  for (const [ca, s] of byCa) lines.push(`  ${ca}: CRL numbers up to ${s.join(", ")}`);
  if (r.swept.length) lines.push(`  removed ${r.swept.length} partial director${r.swept.length === 1 ? "y" : "ies"} left by killed backups: ${r.swept.join(", ")}`);
  lines.push(`check it any time with: jpki restore --verify-only ${r.dest}`);
  return lines.join("\n");
}

function restoreSummary(r: RestoreReport): string {
  const lines = [
    `restored ${r.workspace} from ${r.source}`,
    `  ${r.store} store, backup taken ${r.takenAt}, restored ${r.restoredAt}; manifest ${r.authenticated ? "authenticated under the passphrase" : "not authenticated (hashes only)"}`,
  ];
  for (const c of r.crlNumbers) lines.push(`  ${c.caId}: highest CRL number known #${c.highestKnown} (backup: ${c.highestAtBackup ? `#${c.highestAtBackup}` : "none"}); the next CRL is #${c.next} (gap ${r.crlGap})`);
  const ids = r.statusCheckIds;
  lines.push(`  liveness-check ids: the next is ${ids.next} (backup: ${ids.atBackup}${ids.replaced !== undefined ? `, replaced store: ${ids.replaced}` : ""}), past any given out after the backup`);
  for (const x of r.reRevoked) lines.push(`  revoked again: ${x.caId} ${x.serial} (reason ${x.reason}), revoked after the backup on the previous CRLs`);
  for (const x of r.revokedUnknown) {
    lines.push(
      x.carriedOver
        ? `warning: ${x.caId} ${x.serial} is revoked on the previous CRLs but unknown to the restored store (issued after the backup): its CRL entry was carried over: the next full CRLs and deltas list it, its municipality partition's CRL when the previous CRLs or store placed it, and OCSP answers it revoked; reissue to its resident by hand`
        : `warning: ${x.caId} ${x.serial} is revoked on the previous CRLs but the restored store has no such certificate of ${x.caId} (nor the CA): it will not be on the next CRLs`,
    );
  }
  if (r.previous) lines.push(`  the previous files are in ${r.previous}`);
  if (r.counterAdminKey?.restored) lines.push("  the card administrative key (counter-admin.key) was put back");
  if (r.counterAdminKey?.backupCopy) {
    lines.push(`warning: the workspace's card administrative key (counter-admin.key) differs from the backup's and was kept; the backup's is in ${r.counterAdminKey.backupCopy} (for the cards issued under it)`);
  }
  const why = { crls: "its CRLs were published", store: "the store this restore replaced had a CA of it", retired: "the store this restore replaced had retired it" } as const;
  for (const x of r.retiredCaIds) {
    lines.push(`  retired ${x.id}: ${why[x.why]}, but the backup has no CA ${x.id}; no CA is made under that id again: the next 'jpki ca ${x.by}' of its prefecture and purpose makes ${x.next}`);
  }
  const retired = new Set(r.retiredCaIds.map((x) => x.id));
  for (const ca of r.unknownCas.filter((id) => !retired.has(id))) lines.push(`warning: CRLs under ${ca} were published, but the backup has none of ${ca}, and ${ca} is no CA id a restore retires: check before anything publishes under that name again`);
  for (const f of r.unreadableCrlFiles) lines.push(`warning: ${f} looks like a CRL but could not be read (the time gap covers its number)`);
  lines.push("next: every CRL is due (the restored files carry the backup's numbers): restart jpki serve / jpki watch, which republish them, or now: jpki crl generate --prefecture all --partitions due");
  return lines.join("\n");
}

export function makeBackupCommand(io: Io): Command {
  return new Command("backup")
    .description("take a consistent online backup of the workspace: the store, the published CRLs and CA certificates, and a manifest of hashes")
    .argument("<dest>", "a new directory for the backup (its parent must exist)")
    .addHelpText(
      "after",
      `
Arguments:
  DEST   the backup directory to create; an existing one is refused (ERR_BACKUP_EXISTS), and so is one
         under /proc, /sys or /dev or whose parent is no writable directory (ERR_FILE_UNUSABLE), checked
         before anything is written

What it holds (directories 0700, files 0600 — it has the encrypted CA keys and personal data):
  manifest.json          jpki version, store kind and schema version, when the snapshot was taken, the
                         highest CRL number of every CA and scope, and every file's size and SHA-256;
                         with the CA passphrase, an HMAC of all that under a key derived from it
  store/jpki.db          SQLite: a copy by SQLite's online backup API (one consistent snapshot)
  store/jpki.pgdump      PostgreSQL: pg_dump -Fc from one snapshot (JPKI_STORE; pg_dump must be at least
                         the server's version, found under /usr/lib/postgresql/<version>/bin or JPKI_PG_BIN)
  workspace/…            config.json, ca/, crl/, arl/ and bridge/ as published (certs/ and rejects/ are not kept)

Online: other jpki processes (serve, watch, notices ingest, issue) go on while it runs; the store is copied
from one snapshot, then the files. The backup is written under a temporary name and renamed to DEST when
complete: an interrupted backup never looks like one. What a killed backup left there (.DEST.partial-…) is
removed by the next backup into the same directory once its process is gone (never a running backup's, nor
one another container may still be writing: that one after a day untouched); --json lists them in "swept".

A retired store (one 'jpki store copy' moved the workspace away from) is no longer the workspace's truth: it
is refused (ERR_STORE_RETIRED, exit 3), naming where the workspace's store went.

Authentication: the hashes find damage, not someone who can write the backup and the matching hashes (drop a
revocation from the store, put the hashes right). Given the CA passphrase (JPKI_PASSPHRASE or --passphrase-file;
never prompted for, so a backup from cron without it still runs), the manifest carries an HMAC-SHA256 of itself
under a key derived from the passphrase (HKDF-SHA256 of the key the CA keys are encrypted with: PBKDF2-HMAC-
SHA256, 600,000 iterations), after the passphrase was checked to open a CA key (ERR_PASSPHRASE_WRONG otherwise). 'jpki restore' with the passphrase
then refuses a rewritten manifest, and one whose authentication was removed. Without the passphrase the
backup is as before, and says so.

Progress goes to stderr; --json prints the manifest and the backup's path.

Examples:
  jpki backup /backup/jpki-$(date +%F)
  jpki --passphrase-file /etc/jpki/passphrase backup /backup/jpki-$(date +%F)     # manifest authenticated
  JPKI_STORE=postgres:///jpki?host=/run/postgresql jpki backup /backup/jpki-$(date +%F) --json`,
    )
    .action(async (dest: string, _o: unknown, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const dir = ctx.workspaceDir;
      const { takeBackup } = await library();
      const { resolve } = await import("node:path");
      const passphrase = ctx.givenPassphrase();
      const report = await takeBackup({
        workspaceDir: dir,
        dest: resolve(io.cwd, dest),
        ...(passphrase !== undefined ? { passphrase } : {}),
        ...(ctx.storeUrl ? { storeUrl: ctx.storeUrl } : {}),
        onProgress: (p) => ctx.out.info(`backup: ${BACKUP_PHASES[p.phase]}${p.phase === "files" && p.done ? ` (${p.done})` : ""}`),
      });
      ctx.out.result({ dest: report.dest, bytes: report.bytes, manifest: report.manifest, swept: report.swept }, () => backupSummary(report));
    });
}

export function makeRestoreCommand(io: Io): Command {
  return new Command("restore")
    .description("check a backup against its manifest and restore it as the workspace; CRL numbering moves past a safety gap")
    .argument("<src>", "the backup directory 'jpki backup' made")
    .option("--force", "replace a workspace (or PostgreSQL database) that already holds records: stop every jpki process on it first")
    .option("--verify-only", "only check the backup against its manifest; change nothing")
    .option("--crl-gap <n>", "move CRL numbers on by at least this much (when more were published than the computed gap allows for)")
    .option("--accept-unauthenticated", "with the CA passphrase given, restore a backup whose manifest is not authenticated (one taken without the passphrase)")
    .addHelpText(
      "after",
      `
Arguments:
  SRC    a backup directory made by 'jpki backup'

Checks first, changes nothing unless every check passes:
  - every file against manifest.json: one missing, added or changed is ERR_BACKUP_CORRUPT (exit 21) naming it;
  - the manifest's authentication, under the CA passphrase (JPKI_PASSPHRASE, --passphrase-file or a prompt):
    needed when the backup was taken with it (see 'jpki backup --help'); a manifest that does not authenticate
    is ERR_BACKUP_CORRUPT (rewritten, or another passphrase). With the passphrase given, a manifest without
    authentication is ERR_BACKUP_UNAUTHENTICATED (exit 21) unless --accept-unauthenticated: whoever rewrote a
    backup would remove the authentication rather than leave one that fails;
  - the target (--workspace, and for a PostgreSQL backup the database in JPKI_STORE) holds no workspace or
    records, unless --force (ERR_BACKUP_TARGET_LIVE, exit 3). Stop jpki serve, watch and every other jpki
    process on it first: a restore is not an online operation (a SQLite store another process still has open
    is refused even with --force: ERR_WORKSPACE_LOCKED, exit 3).

CRL numbers never go back (RFC 5280 §5.2.3): CRLs published after the backup was taken had higher numbers,
and verifiers have seen them. Every CA's one numbering (full CRLs, partitions, ARL, deltas) moves to
  highest known + gap + 1
where "highest known" is the largest of the backup's store, the backup's CRL files and the CRL files the
target still holds, and the gap is 1000 + 100 per second since the backup was taken (or --crl-gap, if larger).

Revocations on the target's previous CRLs that the backup's CRLs lack (made after the backup) are made again
in the restored store, with their date and reason: a restore never un-revokes a certificate. A revoked serial
the restored store does not know (issued after the backup) is reported, and its CRL entry is carried over into
its CA's revocation log: the next CRLs still list it and OCSP answers it revoked (revokedUnknown, carriedOver).
Liveness-check ids (a verifier's paging cursor for GET /v1/status/history) move on the same way: the next id
is the larger of the replaced store's next id (when it can be read) and the backup's + 1,000,000 + 1,000,000
per second since the backup, so a verifier paging from a cursor it got after the backup misses no new check.
The target's previous config.json, store file, ca/, crl/, arl/ and bridge/ are kept in before-restore-<time>/.
The card administrative key (counter-admin.key) is put back where the target has none; the target's stays.

--json prints the report (per CA: highest number known, the next number; statusCheckIds: the ids' move).

Examples:
  jpki restore --verify-only /backup/jpki-2026-11-30
  jpki --workspace /srv/jpki restore /backup/jpki-2026-11-30 --force
  JPKI_STORE=postgres:///jpki_new?host=/run/postgresql jpki -w /srv/jpki restore /backup/jpki-2026-11-30`,
    )
    .action(async (src: string, o: { force?: boolean; verifyOnly?: boolean; crlGap?: string; acceptUnauthenticated?: boolean }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      let crlGap: bigint | undefined;
      if (o.crlGap !== undefined) {
        if (!/^\d{1,18}$/.test(o.crlGap)) throw new JpkiError("ERR_USAGE", "--crl-gap must be a whole number (at most 18 digits)");
        crlGap = BigInt(o.crlGap);
      }
      const { resolve } = await import("node:path");
      const source = resolve(io.cwd, src);
      const lib = await library();
      // The passphrase: asked for (a prompt on a terminal) when the manifest is authenticated, else taken where it
      // was given. The manifest is read here only to know which; its own errors are restoreBackup's to report.
      let authenticatedManifest = false;
      try {
        authenticatedManifest = lib.readManifest(source).authentication !== undefined;
      } catch {
        // restoreBackup / verifyBackup say what is wrong with it
      }
      const passphrase = authenticatedManifest ? await ctx.passphrase() : ctx.givenPassphrase();
      const check = { ...(passphrase !== undefined ? { passphrase } : {}), acceptUnauthenticated: Boolean(o.acceptUnauthenticated) };
      if (o.verifyOnly) {
        const m = lib.verifyBackup(source);
        const { authenticated } = await lib.authenticateBackup(source, m, check);
        const how = authenticated ? "the manifest authenticates under the passphrase" : "the manifest is not authenticated (hashes only)";
        ctx.out.result({ source, verified: true, authenticated, manifest: m }, `${source}: every file matches the manifest, ${how} (${m.files.length} files, ${m.store} store, taken ${m.takenAt})`);
        return;
      }
      const report = await lib.restoreBackup({
        ...check,
        source,
        workspaceDir: ctx.workspaceDir,
        ...(ctx.storeUrl ? { storeUrl: ctx.storeUrl } : {}),
        force: Boolean(o.force),
        ...(crlGap !== undefined ? { crlGap } : {}),
        onProgress: (p) => {
          if (!p.moved) ctx.out.info(`restore: ${RESTORE_PHASES[p.phase]}`); // the swap once, not per file moved
        },
      });
      ctx.out.result(report, () => restoreSummary(report));
    });
}
