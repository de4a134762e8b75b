/** `jpki issue`: one application, or a batch file of them, becomes certificates. */
import { lstatSync } from "node:fs";
import { join } from "node:path";
import { Command, Option } from "commander";
import type { IssuanceApplication, IssuedCertificate } from "../../index.js";
import { JpkiError, checkInputFile, checkOutputDir, checkOutputFile, library, readInputFile } from "../lib.js";
import { Context, withStopSignal, withWorkspace } from "../context.js";
import { commandExitCodes } from "../exit-codes.js";
import { batchStdin, caNamed, fileProgress, type Io } from "../output.js";
import { batchFailure, nothingAppliedHelp, stoppedBatch, stoppedExitsHelp, stoppedFields } from "../batch-outcome.js";
import { checkRecordFile } from "../record-argument.js";

interface IssueOptions {
  resident?: string;
  type: "signature" | "authentication";
  publicKey?: string;
  csr?: string;
  counter?: string;
  out?: string;
  der?: boolean;
  force?: boolean;
  batch?: string;
  outDir?: string;
  concurrency?: string;
  applicationId?: string;
  format: "auto" | "jsonl" | "csv";
}

/**
 * The largest --public-key or --csr file read: the card's RSA-2048 key is 294 bytes of DER (≈ 450 as PEM), its
 * request under 1 KB; 256 KiB leaves room for PEM with comments or a chain and refuses, unread, the multi-GB file
 * or the wrong path that was read whole into memory before (and past 2 GiB failed with node's RangeError).
 */
const MAX_KEY_OR_REQUEST_FILE = 256 * 1024;

/** Reads an input file after checking it is one (ERR_FILE_NOT_FOUND / ERR_FILE_UNUSABLE name the option), bounded. */
function readInput(io: Io, path: string, what: string): Buffer {
  return readInputFile(path, what, { cwd: io.cwd, maxBytes: MAX_KEY_OR_REQUEST_FILE });
}

function summary(c: IssuedCertificate, pem: string, path?: string) {
  return {
    serial: c.serial,
    ...caNamed(c.caId),
    type: c.type,
    residentCode: c.residentCode,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    superseded: c.superseded,
    alreadyIssued: c.alreadyIssued,
    ...(path ? { path } : {}),
    pem,
  };
}

export function makeIssueCommand(io: Io): Command {
  return new Command("issue")
    .description("issue certificates bound to the resident's four basic items (基本4情報) from the registry")
    .option("-r, --resident <code>", "resident code (住民票コード, 11 digits)")
    .addOption(new Option("-t, --type <type>", "certificate type").choices(["signature", "authentication"]).default("signature"))
    .option("--public-key <file>", "the card's public key (SubjectPublicKeyInfo, PEM or DER)")
    .option("--csr <file>", "or a PKCS#10 request made by the card (PEM or DER); its signature is checked")
    .option("--counter <id>", "municipal counter id, up to 9 letters/digits (default: municipality code + 000)")
    .option("--application-id <id>", "the counter's id for this application: issuing it again returns the same certificate")
    .option("-o, --out <file>", "write the certificate here (PEM, or DER with --der)")
    .option("--der", "write DER instead of PEM")
    .option("--force", "with -o: replace the file if it exists (without it, an existing file is never replaced)")
    .option("--batch <file>", "applications {residentCode, type, publicKey|csr, counterId, applicationId}, as JSON Lines or CSV with a header row ('-' reads JSON Lines from stdin)")
    .addOption(new Option("--format <format>", "with --batch: the file's format (auto: by its extension, else by its first character)").choices(["auto", "jsonl", "csv"]).default("auto"))
    .option("--out-dir <dir>", "with --batch: also write each certificate as <serial>.pem here")
    .option("--concurrency <n>", "with --batch: signatures in flight, 1–4096 (default 512)")
    .addHelpText(
      "after",
      `
The four items are always taken from the registry record, never from the request. A new certificate of
the same type for the same resident revokes the previous one as superseded. Give each application an
applicationId and a batch re-run (after a crash, say) returns the certificates already issued instead of
issuing them again — while they stand: an application id whose certificate has been revoked since is refused.
In a batch, a resident and type repeated on lines without applicationId (a file given twice) is refused on the
later line (ERR_APPLICATION_INVALID); two applications of one day for the same certificate carry their ids.
A public key is certified to one resident for one type: a key the workspace certified to someone else, for the
other type, or revoked for key compromise is refused (ERR_KEY_IN_USE); renewing a certificate with its key is not.

${commandExitCodes({
  ok: "issued (or, for an applicationId seen before, the certificate issued then)",
  verdicts: stoppedExitsHelp("--batch: the certificates in flight finished and written, the rest not read"),
  errors: [
    ["ERR_OUTPUT_EXISTS", "the -o file exists (and no --force): nothing was issued"],
    [["ERR_RESIDENT_UNKNOWN", "ERR_RESIDENT_CODE_INVALID", "ERR_RESIDENT_NOT_ELIGIBLE"], "no such resident, an invalid code, or a record that allows no issuance"],
    ["ERR_APPLICATION_CERT_REVOKED", "the application id's certificate has been revoked since it was issued: apply under a new id"],
    ["ERR_KEY_IN_USE", "the key is certified already, to another resident or for the other type, or was revoked as compromised: nothing was issued"],
    ["ERR_PARTIAL", "--batch: some applications failed (each reported), the others were issued"],
  ],
})}
${nothingAppliedHelp("applications of a --batch")}
A --batch stopped by SIGTERM or SIGINT reads no further line (also while it waits for the next one on stdin),
finishes the certificates in flight (signed, committed, written to --out-dir), prints what it did ("stopped",
"signal" and "lastLineRead" in --json), says on stderr after which line it stopped, and exits 128 + the signal
(143 SIGTERM, 130 SIGINT): the batch is not done. A second signal ends it at once: what was committed stays in
the store, and a re-run with the same applicationIds writes those certificates again.
Certificates are signed many at once and committed in groups; when the input pauses (a feeder on stdin sending
one application at a time) for 200 ms, what is signed is committed and written then, not once more lines come.

Examples:
  jpki issue --resident 12345678903 --public-key card.pub.pem -o cert.pem
  jpki issue --resident 12345678903 --type authentication --csr card.csr --json
  jpki issue --batch applications.jsonl --out-dir certs/
  jpki issue --batch applications.csv      # header: residentCode,type,publicKey,applicationId (publicKey in base64 DER)`,
    )
    .action(async (o: IssueOptions, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      if (o.batch) {
        if (o.resident || o.publicKey || o.csr || o.out || o.force || o.der || o.counter || o.applicationId) {
          throw new JpkiError("ERR_USAGE", "--batch takes its applications from the file (counterId and applicationId per line): drop --resident/--public-key/--csr/-o/--force/--der/--counter/--application-id");
        }
        return runBatch(ctx, o);
      }
      // Options of the other mode were ignored without a word: --der wrote PEM, --out-dir left the file in certs/.
      if (o.outDir !== undefined || o.concurrency !== undefined || cmd.getOptionValueSource("format") === "cli") {
        throw new JpkiError("ERR_USAGE", "--out-dir, --concurrency and --format go with --batch FILE");
      }
      if (o.der && !o.out) throw new JpkiError("ERR_USAGE", "--der goes with -o FILE: without -o the certificate is written as PEM into the workspace's certs/");
      // The rule a batch line's applicationId follows (ca/issuance.ts parseApplication).
      if (o.applicationId !== undefined && !/^[A-Za-z0-9._:-]{1,64}$/.test(o.applicationId)) throw new JpkiError("ERR_USAGE", "--application-id must be 1–64 letters, digits or . _ : -");
      if (!o.resident) throw new JpkiError("ERR_USAGE", "say whose certificate: --resident CODE (or --batch FILE)");
      if (Boolean(o.publicKey) === Boolean(o.csr)) throw new JpkiError("ERR_USAGE", "give the card's key as exactly one of --public-key FILE or --csr FILE");
      // Every path is checked before the CA key signs: a certificate that cannot be written is never issued.
      if (o.force && !o.out) throw new JpkiError("ERR_USAGE", "--force goes with -o FILE: it allows replacing that file");
      const out = o.out ? checkOutputFile(o.out, "output file -o", { cwd: io.cwd }) : undefined;
      // A certificate file already there (the one issued yesterday, say) is not replaced unless asked: it may be
      // the only copy someone has, and its serial is what a revocation needs.
      if (out && !o.force && pathTaken(out)) throw outputExists(o.out!, out);
      const app: IssuanceApplication = {
        residentCode: o.resident,
        type: o.type,
        ...(o.publicKey ? { publicKey: readInput(io, o.publicKey, "public key file --public-key") } : {}),
        ...(o.csr ? { csr: readInput(io, o.csr, "request file --csr") } : {}),
        ...(o.counter ? { counterId: o.counter } : {}),
        ...(o.applicationId ? { applicationId: o.applicationId } : {}),
      };
      const passphrase = await ctx.caPassphrase();
      const { IssuanceService, toPem, writeFileAtomic, writeFileNew } = await library();
      await withWorkspace(ctx, async (ws) => {
        const certDir = out ? undefined : checkOutputDir(ws.paths.certDir, "certificate directory", { create: true });
        const service = new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase });
        const cert = await service.issue(app);
        const pem = toPem(cert.der, "CERTIFICATE");
        const path = out ?? join(certDir!, `${cert.serial}.pem`);
        if (out && !o.force) {
          try {
            writeFileNew(out, o.der ? cert.der : pem);
          } catch (e) {
            if ((e as NodeJS.ErrnoException)?.code !== "EEXIST") throw e;
            // Created by someone else since the check above, after the certificate was committed: kept where a
            // certificate goes without -o, and said so.
            const kept = join(checkOutputDir(ws.paths.certDir, "certificate directory", { create: true }), `${cert.serial}.pem`);
            writeFileAtomic(kept, pem);
            throw outputExists(o.out!, out, `certificate ${cert.serial} was issued and is written to ${kept} instead`);
          }
        } else writeFileAtomic(path, o.der && out ? cert.der : pem);
        ctx.out.result(summary(cert, pem, path), () =>
          [
            // With -o the certificate is in the file named: printed again, it buried the lines below.
            ...(out ? [] : [pem.trimEnd(), ""]),
            `serial ${cert.serial}  CA ${cert.caId}  ${cert.type}  valid until ${cert.notAfter.toISOString()}${cert.alreadyIssued ? "  (already issued for this application id)" : ""}`,
            `written to ${path}`,
            ...(cert.superseded.length ? [`superseded (revoked, reason superseded): ${cert.superseded.join(", ")}`] : []),
          ].join("\n"),
        );
      });
    });
}

/** Whether anything — a file, or a symbolic link even when dangling — has this name. */
function pathTaken(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function outputExists(given: string, abs: string, then = "nothing was issued"): JpkiError {
  return new JpkiError("ERR_OUTPUT_EXISTS", `output file -o ${given} already exists: ${then}; choose another name, or pass --force to replace it`, { details: { path: abs } });
}

/** Errors that mean the CA key could not be opened at all: no line for that CA can issue. */
const UNLOCK_FAILURES: ReadonlySet<string> = new Set(["ERR_PASSPHRASE_WRONG", "ERR_PASSPHRASE_MISSING", "ERR_PKCS11_PIN_WRONG", "ERR_PKCS11_PIN_MISSING"]);

async function runBatch(ctx: Context, o: IssueOptions): Promise<void> {
  const io = ctx.io;
  const concurrency = o.concurrency ? Number(o.concurrency) : undefined;
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 4096)) {
    throw new JpkiError("ERR_USAGE", "--concurrency must be a whole number from 1 to 4096");
  }
  // Paths first, then the passphrase: nothing is signed for a batch whose input or output cannot be used.
  const stdin = o.batch === "-" ? batchStdin(io, { command: "issue --batch -", items: "applications" }) : undefined;
  const source = stdin ?? checkRecordFile(o.batch!, "batch file --batch", { cwd: io.cwd, pipe: "write it to a file, or pipe it in: jpki issue --batch - < FILE" });
  const outDir = o.outDir ? checkOutputDir(o.outDir, "output directory --out-dir", { create: true, cwd: io.cwd }) : undefined;
  const { DirectoryWriter, IssuanceService, readRecords, releaseStream, sweepStaleTemps, toPem, writeFailure } = await library();
  if (outDir) sweepStaleTemps(outDir); // files half-written by a killed earlier run
  const passphrase = await ctx.caPassphrase();
  // SIGTERM or SIGINT: no line read after it, the certificates in flight finished and written (they were committed
  // and then lost with the process: the operator learnt of them only from a re-run), then the stop's exit.
  await withStopSignal("issue --batch", (signal, stoppedBy) =>
    withWorkspace(ctx, async (ws) => {
      const service = new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase });
      const started = Date.now();
      const progress = fileProgress(source);
      // the certificates' files written off this thread, the directory synced once per group (store/directory-writer.ts)
      const certs = outDir ? new DirectoryWriter(outDir) : undefined;
      // CSV refuses a header naming a column twice, as JSON Lines here refuses a record naming a field twice:
      // which value decides who gets a certificate must never be a guess.
      const format = o.batch === "-" && o.format === "auto" ? "jsonl" : o.format;
      const res = await service.issueBatch(readRecords(source, { format, rejectDuplicateKeys: true, onBytes: progress.onBytes }), {
        ...(concurrency ? { concurrency } : {}),
        onProgress: (p) => {
          const rate = p.issued / Math.max(0.001, (Date.now() - started) / 1000);
          ctx.out.progress(`${progress.bar()}issued ${p.issued}  failed ${p.failed}  read ${p.read}  (${rate.toFixed(0)}/s)`);
        },
        onIssued: certs
          ? (c) =>
              certs.write(`${c.serial}.pem`, toPem(c.der, "CERTIFICATE")).catch((e: unknown) => {
                throw writeFailure(e, `certificate ${c.serial}.pem`, outDir!, "the certificate is issued and kept in the store, its file not written") ?? e;
              })
          : undefined,
        signal,
        // stdin may wait for ever for its next line: the stop ends that wait (the applications read are finished)
        ...(stdin ? { release: releaseStream(stdin) } : {}),
      }).finally(() => certs?.close());
      ctx.out.progressDone();
      const seconds = (Date.now() - started) / 1000;
      const { stopped, ...counts } = res;
      const by = stopped ? (stoppedBy() ?? "SIGTERM") : undefined;
      ctx.out.result({ ...counts, seconds, ...(stopped ? stoppedFields({ by: by!, lastLine: stopped.lastLine }) : {}) }, () =>
        [
          `read ${res.read}, issued ${res.issued}, already issued ${res.alreadyIssued}, failed ${res.failed}, superseded ${res.superseded} in ${seconds.toFixed(1)} s`,
          ...Object.entries(res.byCa).map(([ca, n]) => `  ${ca}: ${n}`),
          ...res.errors.slice(0, 50).map((e) => `  error [${e.code}] ${e.message}`),
          ...(res.errors.length > 50 ? [`  … and ${res.errors.length - 50} more (use --json for all)`] : []),
          ...(outDir ? [`certificates written to ${outDir}`] : []),
        ].join("\n"),
      );
      if (stopped) {
        // Before a locked CA key or a failed line: the batch is not done, which is what a script must learn first.
        throw stoppedBatch(ctx, {
          command: "issue --batch",
          by: by!,
          lastLine: stopped.lastLine,
          done: `${res.issued} issued, ${res.alreadyIssued} already issued, ${res.failed} failed${outDir ? `, every certificate written to ${outDir}` : ""}`,
          goOn: goOn(stopped.lastLine),
        });
      }
      // A CA key that does not open is the batch's failure, not each line's: its own code and exit (5, 19),
      // and the auth.failure audit record withWorkspace writes for it. Lines for other CAs may have issued.
      const locked = res.errors.find((e) => UNLOCK_FAILURES.has(e.code));
      if (locked) {
        throw new JpkiError(locked.code, `${locked.message.replace(/^line \d+: /, "")}: ${res.failed} of ${res.read} applications were not issued${res.issued + res.alreadyIssued > 0 ? `, ${res.issued + res.alreadyIssued} were` : ""}`, { details: { reported: true } });
      }
      if (res.failed > 0) {
        // What became of the others, as counted: a re-run issues nothing new for applications done before.
        const others = [res.issued ? `${res.issued} issued` : "", res.alreadyIssued ? `${res.alreadyIssued} already issued before` : ""].filter(Boolean).join(", ");
        throw batchFailure({
          failed: res.errors,
          applied: res.issued + res.alreadyIssued > 0,
          partial: `${res.failed} of ${res.read} applications failed${others ? `; ${others}` : ""}`,
          none: `none of the ${res.read} applications was issued`,
          details: { reported: true },
        });
      }
    }, {
      signal,
      stopped: () => {
        const by = stoppedBy() ?? "SIGTERM";
        ctx.out.result({ read: 0, issued: 0, alreadyIssued: 0, failed: 0, errors: [], superseded: 0, byCa: {}, ...stoppedFields({ by, lastLine: 0 }) }, "stopped by a signal while the store was opening: nothing was read or issued");
        throw stoppedBatch(ctx, { command: "issue --batch", by, lastLine: undefined, done: "", goOn: "Run the batch again." });
      },
    }),
    { repeated: "kill" },
  );
}

/** How to go on after a batch stopped after `lastLine`, without issuing anything twice. */
function goOn(lastLine: number): string {
  return [
    `To go on, run the batch again: a line with an applicationId is not issued twice (its certificate is returned and written again);`,
    `a line without one is issued anew, superseding (revoking) the certificate issued now — give such a file from line ${lastLine + 1} on.`,
  ].join("\n");
}
