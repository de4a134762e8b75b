/** `jpki audit`: the tamper-evident audit log (監査ログ) — verify the chain, show records, sign a checkpoint. */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Command, Option } from "commander";
import { JpkiError, checkInputDir, checkInputFile, checkNewOutputFile, checkOutputDir, library, outputExists, readInputFile } from "../lib.js";
import { Context, withWorkspace } from "../context.js";
import { commandExitCodes } from "../exit-codes.js";
import { caNamed, type Io } from "../output.js";
import type { AuditCheckpoint } from "../../index.js";

export function makeAuditCommand(io: Io): Command {
  const audit = new Command("audit").description("the audit log: every CA operation, who did it and when, in a hash chain signed at checkpoints");
  audit.addCommand(
    new Command("verify")
      .description("walk the audit log's hash chain and its signed checkpoints; name the first record altered, removed or reordered")
      .addHelpText(
        "after",
        `
Each record's hash covers the previous record's: an edit, a deletion or a move breaks the chain where it was
made. Checkpoints ('jpki audit checkpoint', and 'jpki crl generate' after publishing) sign the head with a CA
key, so a rewrite of everything up to a checkpoint, hashes recomputed, or a deleted tail is found as well.
Records after the last checkpoint are reported as unanchored.

Checkpoints count only when signed by a CA certificate: by default the store's own; --trust names copies kept
elsewhere (the published CA certificates), so someone able to add a CA row to the database cannot sign for it.

Whoever can write the database can also put the whole store back to an earlier state, its checkpoints with it:
that log verifies. --anchor gives checkpoints kept outside the store ('jpki audit checkpoint --out', files or a
directory of them): a log that ends before one was rolled back, one whose record there is another was rewritten.

${commandExitCodes({
  ok: "the log holds",
  errors: [
    ["ERR_AUDIT_CHAIN_BROKEN", "it does not: the message names the first bad record and why (altered, removed, reordered, checkpoint-invalid, checkpoint-mismatch, rolled-back)"],
    ["ERR_AUDIT_ANCHOR_FORMAT", "an --anchor file is not a checkpoint 'jpki audit checkpoint --out' wrote"],
  ],
})}

Examples:
  jpki audit verify
  jpki audit verify --trust /etc/jpki/trusted/*.pem --json
  jpki audit verify --anchor /mnt/worm/jpki-checkpoints --trust /etc/jpki/trusted/*.pem`,
      )
      .option("--trust <file...>", "CA certificates (PEM or DER) that checkpoints must be signed by, kept apart from the store (default: the store's own CA certificates)")
      .option("--anchor <path...>", "checkpoints kept outside the store ('audit checkpoint --out'): files, or directories of audit-checkpoint-*.json")
      .action(async (o: { trust?: string[]; anchor?: string[] }, cmd: Command) => {
        const ctx = Context.of(io, cmd);
        const { verifyAuditLog, auditBroken, parsePemBlocks } = await library();
        const trusted = o.trust?.flatMap((f) => {
          const bytes = readFileSync(checkInputFile(f, "trusted CA certificate --trust", { cwd: io.cwd }));
          const blocks = parsePemBlocks(bytes.toString("latin1")).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
          return blocks.length ? blocks : [bytes];
        });
        const anchors = o.anchor ? await readAnchors(o.anchor, io.cwd) : undefined;
        await withWorkspace(ctx, async (ws) => {
          const v = await verifyAuditLog(ws.store, { ...(trusted ? { trusted } : {}), ...(anchors ? { anchors } : {}) });
          if (v.failure) throw auditBroken(v);
          ctx.out.result(v, () =>
            v.records === 0
              ? "the audit log is empty"
              : `the audit log holds: ${v.records} records, head ${v.head!.seq} (${v.head!.hash.slice(0, 16)}…), ${v.checkpoints} checkpoint(s), anchored to record ${v.anchoredTo}${v.anchors ? ` (${v.anchors} checkpoint(s) kept outside the store checked)` : ""}; ${v.unanchored} record(s) after the last checkpoint are unanchored`,
          );
        });
      }),
  );
  audit.addCommand(
    new Command("show")
      .description("list audit records, oldest first (JSON Lines with --json, streamed)")
      .option("--since <date>", "records at or after this time (ISO 8601, e.g. 2026-12-01 or 2026-12-01T09:00:00+09:00)")
      .option("--action <action>", "only this action, e.g. cert.revoke, notice.batch, crl.publish, auth.failure")
      .option("--actor <actor>", "only this actor, e.g. os:alice or verifier:v-3f9c0a1b2c4d")
      .option("--subject <subject>", "only this subject: a CA id, a serial, a verifier id")
      .option("--after <seq>", "only records after this sequence number")
      .option("--limit <n>", "at most this many records")
      .addHelpText("after", "\nExamples:\n  jpki audit show --since 2026-12-01 --action cert.revoke\n  jpki audit show --actor os:alice --json | jq .detail")
      .action(async (o: { since?: string; action?: string; actor?: string; subject?: string; after?: string; limit?: string }, cmd: Command) => {
        const ctx = Context.of(io, cmd);
        const since = o.since === undefined ? undefined : new Date(o.since);
        if (since && Number.isNaN(since.getTime())) throw new JpkiError("ERR_USAGE", `--since ${o.since} is not a date: use ISO 8601, e.g. 2026-12-01`);
        const count = (v: string | undefined, what: string) => {
          if (v === undefined) return undefined;
          if (!/^\d+$/.test(v)) throw new JpkiError("ERR_USAGE", `${what} must be a whole number, not ${v}`);
          return Number(v);
        };
        const limit = count(o.limit, "--limit");
        const afterSeq = count(o.after, "--after");
        await withWorkspace(ctx, async (ws) => {
          const q = { ...(since ? { since } : {}), ...(o.action ? { action: o.action } : {}), ...(o.actor ? { actor: o.actor } : {}), ...(o.subject !== undefined ? { subject: o.subject } : {}), ...(limit !== undefined ? { limit } : {}), ...(afterSeq !== undefined ? { afterSeq } : {}) };
          for await (const r of ws.store.auditRecords(q)) {
            // JSON Lines: one compact record per line (toJson indents, for one document)
            // A record edited in the database (a time that is no time, a detail that is no JSON) is shown as it
            // is: 'audit show' is what an operator reads to find out what happened (it crashed on them; found by
            // a helper). 'audit verify' names the record.
            const at = Number.isNaN(r.at.getTime()) ? undefined : r.at.toISOString();
            if (ctx.out.json) io.stdout.write(JSON.stringify({ seq: r.seq, at: at ?? null, actor: r.actor, action: r.action, subject: r.subject, detail: parseDetail(r.detail), prevHash: r.prevHash, hash: r.hash }) + "\n");
            else io.stdout.write(`${String(r.seq).padStart(6)}  ${at ?? "invalid-time"}  ${r.actor}  ${r.action}${r.subject ? ` ${r.subject}` : ""}  ${String(r.detail)}\n`);
          }
        });
      }),
  );
  audit.addCommand(
    new Command("checkpoint")
      .description("sign the audit log's head with a CA key, so a later rewrite of the log up to here is detected")
      .addOption(new Option("--ca <id>", "the CA whose key signs (default: the workspace's first CA)"))
      .option("--force", "sign even when nothing but the last checkpoint's own record came after it")
      .option("--out <path>", "also write the checkpoint to this new file, or into this directory as audit-checkpoint-<record>.json, to keep outside the store ('audit verify --anchor'); with nothing new to sign, the latest checkpoint is written")
      .addHelpText(
        "after",
        `
Run it on a schedule (cron, a systemd timer); 'jpki crl generate' also checkpoints after it publishes.

A checkpoint in the store finds a rewrite of the log, but not the whole store put back to an earlier state with its
checkpoints: --out writes the checkpoint to a file to keep where the database's writers cannot reach (another host,
write-once media), which 'jpki audit verify --anchor' checks the log against. The file holds the record number,
the log's hash there, the time, the CA's certificate and its signature: nothing secret.

${commandExitCodes({ ok: "signed (or nothing new to sign), and written with --out", errors: [["ERR_OUTPUT_EXISTS", "the --out file exists (in a directory: with other contents); the checkpoint is signed and kept in the store"]] })}

Examples:
  JPKI_PASSPHRASE=… jpki audit checkpoint --ca 13-sig
  JPKI_PASSPHRASE=… jpki audit checkpoint --out /mnt/worm/jpki-checkpoints`,
      )
      .action(async (o: { ca?: string; force?: boolean; out?: string }, cmd: Command) => {
        const ctx = Context.of(io, cmd);
        // the path first: nothing is signed for an --out that cannot be written
        const out = o.out === undefined ? undefined : anchorOutput(o.out, io.cwd);
        const passphrase = await ctx.caPassphrase();
        const { checkpointAuditLog } = await library();
        await withWorkspace(ctx, async (ws) => {
          const cp = await checkpointAuditLog(ws, { passphrase, ...(o.ca ? { caId: o.ca } : {}), ...(o.force ? { force: true } : {}) });
          if (cp) {
            const file = out ? await writeAnchor(out, cp) : undefined;
            ctx.out.result(
              { checkpointed: true, seq: cp.seq, hash: cp.hash, at: cp.at.toISOString(), ...caNamed(cp.caId), ...(file ? { file } : {}) },
              `checkpoint: record ${cp.seq} (${cp.hash.slice(0, 16)}…) signed by CA ${cp.caId}${file ? `; written to ${file}` : ""}`,
            );
            return;
          }
          // Said, not left as an empty object: a script must tell "nothing to do" from a failure to report.
          const head = await ws.store.auditHead();
          const why = head ? "at-head" : "empty";
          // --out from a timer: the latest checkpoint is what is to be kept, signed now or before
          const latest = out && head ? (await ws.store.auditCheckpoints()).reduce<AuditCheckpoint | undefined>((a, c) => (!a || c.seq > a.seq ? c : a), undefined) : undefined;
          const file = out && latest ? await writeAnchor(out, latest) : undefined;
          ctx.out.result(
            { checkpointed: false, why, ...(head ? { head: head.seq } : {}), ...(file ? { file, seq: latest!.seq } : {}) },
            (head ? `nothing to checkpoint: the last checkpoint signed record ${head.seq - 1}, and only its own record (${head.seq}) came after it (--force signs anyway)` : "nothing to checkpoint: the audit log is empty") +
              (file ? `; the checkpoint of record ${latest!.seq} written to ${file}` : ""),
          );
        });
      }),
  );
  return audit;
}

/** Where `--out` writes: into a directory that exists, or a new file. */
type AnchorOutput = { readonly dir: string } | { readonly file: string; readonly given: string };

function anchorOutput(path: string, cwd: string): AnchorOutput {
  if (isDirectory(path, cwd)) return { dir: checkOutputDir(path, "checkpoint output directory --out", { cwd }) };
  return { file: checkNewOutputFile(path, "checkpoint output --out", { cwd }), given: path };
}

function isDirectory(path: string, cwd: string): boolean {
  try {
    return statSync(resolve(cwd, path)).isDirectory();
  } catch {
    return false; // nothing there (or not reachable): the path checks that follow say which
  }
}

/**
 * Writes a checkpoint's file whole or not at all (staged, then linked to its name). In a directory, a file of the
 * same record with the same contents is the same checkpoint written before (a timer's second run): kept, not an error.
 */
async function writeAnchor(out: AnchorOutput, cp: AuditCheckpoint): Promise<string> {
  const { auditAnchorFileName, auditAnchorText, writeFailure, writeFileNew } = await library();
  const path = "dir" in out ? join(out.dir, auditAnchorFileName(cp)) : out.file;
  const text = auditAnchorText(cp);
  try {
    writeFileNew(path, text, 0o644);
  } catch (e) {
    const then = `the checkpoint of record ${cp.seq} is signed and kept in the store, but was not written`;
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw writeFailure(e, "the checkpoint file", dirname(path), `${then}; free space there or choose another place`) ?? e;
    let same = false;
    try {
      same = "dir" in out && readFileSync(path, "utf8") === text;
    } catch {
      same = false;
    }
    if (!same) throw outputExists("dir" in out ? path : out.given, "checkpoint output --out", path, `${then}; choose another name`);
  }
  return path;
}

/** The checkpoints kept outside the store that `--anchor` names: files, and the audit-checkpoint-*.json files of directories. */
async function readAnchors(paths: readonly string[], cwd: string): Promise<Array<{ checkpoint: AuditCheckpoint; source: string }>> {
  const { parseAuditAnchor } = await library();
  const files: string[] = [];
  for (const p of paths) {
    if (!isDirectory(p, cwd)) {
      files.push(p);
      continue;
    }
    const dir = checkInputDir(p, "checkpoint directory --anchor", { cwd });
    const named = readdirSync(dir).filter((f) => /^audit-checkpoint-\d+\.json$/.test(f)).sort();
    if (named.length === 0) throw new JpkiError("ERR_USAGE", `checkpoint directory --anchor ${p} holds no audit-checkpoint-*.json file ('jpki audit checkpoint --out' writes them)`);
    files.push(...named.map((f) => join(dir, f)));
  }
  return files.map((f) => ({ checkpoint: parseAuditAnchor(readInputFile(f, "checkpoint file --anchor", { cwd, maxBytes: 64 * 1024 }), f), source: f }));
}

/** A record's detail as JSON, or as the text it holds when that is not JSON (edited outside jpki). */
function parseDetail(detail: unknown): unknown {
  const text = Buffer.isBuffer(detail) ? detail.toString("latin1") : String(detail);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
