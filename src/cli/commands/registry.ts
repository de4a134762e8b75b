/**
 * `jpki registry import|show|apply|consent|sweep`: resident records (住民票) as the registry network holds them,
 * and what the registry side keeps beside them (consents, issuance information).
 */
import { resolve } from "node:path";
import { Command, Option } from "commander";
import type { IssuanceSweepEvent, ResidentFileImportSummary } from "../../index.js";
import { JpkiError, checkInputFile, library, type Library } from "../lib.js";
import { checkRecordFile } from "../record-argument.js";
import { Context, stoppedWhileOpening, withStopSignal, withWorkspace } from "../context.js";
import { commandExitCodes } from "../exit-codes.js";
import { batchFailure, nothingAppliedHelp, stoppedBatch, stoppedExitsHelp, stoppedFields } from "../batch-outcome.js";
import { caNamed, type Io } from "../output.js";

export function makeRegistryCommand(io: Io): Command {
  const reg = new Command("registry").description("resident records (住民基本台帳): resident code, municipality and the four basic items");

  reg.command("import")
    .description("import residents from JSON Lines or CSV; every field is validated, bad lines are reported by number")
    .argument("<file>", "JSON Lines (.jsonl) or CSV with a header row; '-' reads JSON Lines from stdin")
    .addOption(new Option("--format <format>", "input format").choices(["auto", "jsonl", "csv"]).default("auto"))
    .addHelpText(
      "after",
      `
Fields: residentCode (11 digits with check digit), municipalityCode (6-digit local government code),
name ("family　given", U+3000 between) or familyName + givenName, address (from the prefecture, no postcode),
birthDate (YYYY-MM-DD), gender (male/female/unknown or 1/2/3), status (active/deceased/removed, default active).
A new code is added. An existing record is replaced only while the CA side does not rely on it (no
certificate, no change notice applied), is active, and no resident-code change closed it; a change to any other is refused
(ERR_RESIDENT_CHANGE_NEEDS_NOTICE) and must come as a change notice ('jpki registry apply'), which the CA side
follows. A line the same as the record held is counted as unchanged. Text is compared and stored in one normal
form: spaces around a field are dropped and names and addresses composed (Unicode NFC; compatibility ideographs
such as U+FA10 kept as they are), so the same residents exported in NFD or with padded fields are unchanged.
A resident code is listed once per file: a later line with the same code is refused (ERR_RESIDENT_DUPLICATE;
"firstLine" in --json names the first) and only the first is imported or refused, also when the
first was refused as malformed (its code still readable): fix that line and import the file again.
Good lines are imported even when others are bad (then ERR_PARTIAL).
${nothingAppliedHelp("lines")}
SIGTERM or SIGINT stops the import once the lines read so far are committed — also while it waits for the
next line on stdin — says on stderr after which line it stopped ("stopped", "signal" and "lastLineRead" in
--json), and exits 128 + the signal (143 SIGTERM, 130 SIGINT): the import is not done. Import the same file
again for the rest (what was imported now then counts as unchanged).

${commandExitCodes({
  ok: "every line imported or unchanged",
  verdicts: stoppedExitsHelp("the lines read were committed, the rest not read; import it again for the rest"),
  errors: [
    ["ERR_IMPORT_FORMAT", "a CSV header row that cannot be read: nothing imported"],
    ["ERR_PARTIAL", "some lines were refused (each reported by number, with its own code), the good ones imported"],
  ],
})}

Examples:
  jpki registry import residents.jsonl
  jpki registry import residents.csv --json`,
    )
    .action(async (file: string, o: { format: "auto" | "jsonl" | "csv" }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const { importResidentFile } = await library();
      const source = file === "-" ? (io.stdin ?? process.stdin) : checkRecordFile(file, "input file", { cwd: io.cwd, pipe: "write it to a file, or pipe it in: jpki registry import - < FILE" });
      const goOn = `To go on, import the same ${file === "-" ? "input" : "file"} again: what was imported now then counts as unchanged.`;
      // "stopped" (with its signal and last line) only when it did: the document of a run to the end stays as it was.
      const report = (r: ResidentFileImportSummary, by: NodeJS.Signals | undefined) => {
        const { read, inserted, updated, unchanged, errors } = r;
        ctx.out.result({ read, imported: inserted + updated, inserted, updated, unchanged, rejected: errors.length, errors, ...(by ? stoppedFields({ by, lastLine: r.lastLine }) : {}) }, () =>
          [
            `read ${read}, imported ${inserted + updated} (${inserted} new, ${updated} replaced), unchanged ${unchanged}, rejected ${errors.length}`,
            ...errors.slice(0, 50).map((e) => `  error [${e.code}] ${e.message}`),
            ...(errors.length > 50 ? [`  … and ${errors.length - 50} more (use --json for all)`] : []),
          ].join("\n"),
        );
      };
      // SIGINT/SIGTERM end the import once the lines read so far are committed, and it exits 128 + n (stoppedBatch);
      // running it again takes the rest.
      await withStopSignal("registry import", (signal, stoppedBy) =>
        withWorkspace(ctx, async (ws) => {
          const r = await importResidentFile(ws.store, source, {
            now: ws.clock.now(),
            format: file === "-" && o.format === "auto" ? "jsonl" : o.format,
            signal,
            onProgress: (p) => ctx.out.progress(`imported ${p.inserted + p.updated}, unchanged ${p.unchanged}, rejected ${p.rejected}`),
          });
          ctx.out.progressDone();
          const by = r.stopped ? (stoppedBy() ?? "SIGTERM") : undefined;
          report(r, by);
          const { read, inserted, updated, unchanged, errors } = r;
          // Before the rejected lines' ERR_PARTIAL: the import is not done, which is what a script must learn first.
          if (by) {
            throw stoppedBatch(ctx, {
              command: "registry import",
              by,
              lastLine: r.lastLine,
              done: `${inserted + updated} imported, ${unchanged} unchanged, ${errors.length} rejected`,
              goOn,
            });
          }
          if (errors.length) {
            throw batchFailure({
              failed: errors,
              applied: inserted + updated + unchanged > 0,
              partial: `${errors.length} of ${read} records were rejected; ${inserted + updated ? `${inserted + updated} were imported` : "nothing was imported"}${unchanged ? `, ${unchanged} unchanged` : ""}`,
              none: `none of the ${read} records was imported`,
            });
          }
        }, {
          signal,
          stopped: () => {
            const by = stoppedBy() ?? "SIGTERM";
            report({ read: 0, inserted: 0, updated: 0, unchanged: 0, errors: [], stopped: true, lastLine: 0 }, by);
            throw stoppedBatch(ctx, { command: "registry import", by, lastLine: undefined, done: "", goOn });
          },
        }),
      );
    });

  reg.command("show")
    .description("show one resident record (personal data: mind who is watching the terminal)")
    .argument("<residentCode>", "11-digit resident code")
    .addHelpText("after", `\nExamples:\n  jpki registry show 12345678903\n  jpki --json registry show 12345678903`)
    .action(async (code: string, _o: unknown, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const lib: Library = await library(); // an assertion function is called through an explicitly typed name
      lib.assertResidentCode(code);
      await withWorkspace(ctx, async (ws) => {
        const r = await ws.store.getResident(code);
        if (!r) throw new JpkiError("ERR_RESIDENT_UNKNOWN", `no resident with code ${code}: import it with 'jpki registry import'`);
        const certs = await ws.store.findCertificates({ residentCode: code });
        const certList = certs.map((c) => ({ serial: c.serial, ...caNamed(c.caId), type: c.type, notAfter: c.notAfter.toISOString(), revoked: c.revocation ? c.revocation.revokedAt.toISOString() : null }));
        ctx.out.result({ ...r, certificates: certList }, () =>
          [
            `resident ${r.residentCode}  municipality ${r.municipalityCode}  ${r.status}`,
            ...(r.successorCode ? [`  住民票コード変更 resident code changed to ${r.successorCode}`] : []),
            `  氏名 name        ${r.fourItems.name}`,
            `  住所 address     ${r.fourItems.address}`,
            `  生年月日 born    ${r.fourItems.birthDate}`,
            `  性別 gender      ${r.fourItems.gender}`,
            ...certList.map((c) => `  cert ${c.serial} ${c.ca} ${c.type} until ${c.notAfter}${c.revoked ? ` REVOKED ${c.revoked}` : ""}`),
          ].join("\n"),
        );
      });
    });
  addRegistryApply(reg, io);
  addRegistryConsent(reg, io);
  addRegistrySweep(reg, io);
  return reg;
}

/**
 * `jpki registry sweep`: the registry side's issuance information no longer needed, deleted now
 * (registry/issuance-sweep.ts; `jpki serve` and `jpki watch` do it daily on their own).
 */
export function addRegistrySweep(reg: Command, io: Io): void {
  reg.command("sweep")
    .description("delete the issuance information (発行情報) of expired and revoked certificates that the registry side still holds")
    .addHelpText(
      "after",
      `
Issuance information (発行情報) is the registry side's copy of what a certificate certified: its serial, the
resident and the four items at issuance, registered when the certificate is issued (電子証明書発行者情報の
登録). A counter procedure compares a change with it to decide whether the CA side must be told (異動等情報の
通知). Rows pile up: an expired certificate's row stays (the comparison ignores it; nothing deletes it at
expiry), and on SQLite a certificate revoked by a notice batch keeps its row as well (no longer registered,
but deleting the row there and then would slow every notice). So the table grows by a row per expiry and,
on SQLite, per revocation.

This deletes the rows of certificates that expired more than a day ago (the day covers procedures in progress
in other processes) and those of revoked certificates. What the registry answers does not change, nor does
anything on the CA side: its own issuance records are kept (ten years after expiry). 'jpki serve' and
'jpki watch' already sweep about once a day (10 minutes after they start, then daily); run this for a clean-up
now, e.g. before a backup. It is safe while they run, in short transactions that keep no writer waiting long.
SIGTERM or SIGINT stops it between two of them; run it again for the rest.

The count is of expired certificates' rows. Revoked certificates' rows go uncounted: the registry had already
withdrawn them (PostgreSQL deletes them when it revokes, so the count is the same on both stores).

Examples:
  jpki registry sweep
  jpki --json registry sweep`,
    )
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const lib = await library();
      await withStopSignal("registry sweep", (signal) =>
        withWorkspace(ctx, async (ws) => {
          const r = await lib.sweepIssuanceInformation(ws.store, { now: ws.clock.now(), signal });
          ctx.out.result({ removed: r.removed, expiredBefore: r.expiredBefore.toISOString(), stopped: r.stopped }, () =>
            [
              `removed the issuance information (発行情報) of ${r.removed} certificate${r.removed === 1 ? "" : "s"} expired before ${r.expiredBefore.toISOString()}, and any left of revoked ones`,
              ...(r.stopped ? ["stopped by a signal before the end: run it again for the rest"] : []),
            ].join("\n"),
          );
        }, { signal, stopped: () => stoppedWhileOpening(ctx, "run it again") }),
      );
    });
}

/** One line for a daily sweep's outcome, as `jpki serve` and `jpki watch` log it (no personal data in it). */
export function sweepLine(e: IssuanceSweepEvent): string {
  const next = `next sweep ${e.nextAt.toISOString()}`;
  if (e.kind === "failed") return `registry sweep failed [${e.error.code}] ${e.error.message} (tried again: ${next})`;
  return `registry sweep: issuance information (発行情報) of ${e.removed} certificate${e.removed === 1 ? "" : "s"} expired before ${e.expiredBefore.toISOString()} removed${e.stopped ? " (stopped: the next sweep takes the rest)" : ""}; ${next}`;
}

/**
 * `jpki registry consent grant|withdraw|list`: the registry side's record of a resident's consent that a
 * verifier learn which certificate replaced one it knows (新旧証明書の紐付け; registry/consent.ts).
 */
export function addRegistryConsent(reg: Command, io: Io): void {
  const consent = reg.command("consent").description("a resident's consent that a verifier learn the old/new certificate link (新旧証明書の紐付け)");
  const show = (c: { residentCode: string; verifierId: string; grantedAt: Date; withdrawnAt: Date | undefined }) => ({
    resident: c.residentCode,
    verifier: c.verifierId,
    grantedAt: c.grantedAt.toISOString(),
    withdrawnAt: c.withdrawnAt?.toISOString() ?? null,
  });
  const line = (c: ReturnType<typeof show>) => `${c.resident}  ${c.verifier}  granted ${c.grantedAt}${c.withdrawnAt ? `  withdrawn ${c.withdrawnAt}` : "  live"}`;
  const help = `
A private certification provider (民間認証事業者) receives the link — which current certificate replaced a
superseded or affiliation-changed one, in POST /v1/status with link: true — only while the resident's consent
for it is live; government bodies (行政機関) receive it without. Granting again while live keeps the first grant.

${commandExitCodes({
  ok: "done",
  errors: [
    [["ERR_RESIDENT_UNKNOWN", "ERR_RESIDENT_CODE_INVALID"], "unknown or invalid resident code"],
    ["ERR_RESIDENT_NOT_ELIGIBLE", "(grant) a closed record: deceased, removed, or a code since changed"],
    [["ERR_VERIFIER_UNKNOWN", "ERR_VERIFIER_REVOKED"], "unknown or revoked verifier"],
    ["ERR_CONSENT_UNKNOWN", "(withdraw) no live consent"],
  ],
})}

Examples:
  jpki registry consent grant --resident 12345678903 --verifier v-3f9c0a1b2c4d
  jpki registry consent withdraw --resident 12345678903 --verifier v-3f9c0a1b2c4d
  jpki --json registry consent list --resident 12345678903`;
  for (const verb of ["grant", "withdraw"] as const) {
    consent
      .command(verb)
      .description(verb === "grant" ? "record the resident's consent for the verifier" : "withdraw the resident's live consent for the verifier")
      .requiredOption("--resident <code>", "resident code (住民票コード, 11 digits)")
      .requiredOption("--verifier <id>", "the registered verifier's id (jpki verifier list)")
      .addHelpText("after", help)
      .action(async (o: { resident: string; verifier: string }, cmd: Command) => {
        const ctx = Context.of(io, cmd);
        const lib = await library();
        await withWorkspace(ctx, async (ws) => {
          const c = show(await (verb === "grant" ? lib.grantConsent : lib.withdrawConsent)(ws, { residentCode: o.resident, verifierId: o.verifier }));
          ctx.out.result(c, () => line(c));
        });
      });
  }
  consent
    .command("list")
    .description("the consents of a resident and/or a verifier, live and withdrawn")
    .option("--resident <code>", "resident code (住民票コード, 11 digits)")
    .option("--verifier <id>", "the registered verifier's id")
    .addHelpText("after", help)
    .action(async (o: { resident?: string; verifier?: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      if (o.resident === undefined && o.verifier === undefined) throw new JpkiError("ERR_USAGE", "give --resident CODE, --verifier ID or both");
      const lib = await library();
      await withWorkspace(ctx, async (ws) => {
        const list = (await lib.listConsents(ws, { ...(o.resident !== undefined ? { residentCode: o.resident } : {}), ...(o.verifier !== undefined ? { verifierId: o.verifier } : {}) })).map(show);
        ctx.out.result({ consents: list }, () => (list.length ? list.map(line).join("\n") : "no consent recorded"));
      });
    });
}

export function addRegistryApply(reg: Command, io: Io): void {
  reg.command("apply")
    .description("update resident records from change notices (the registry's side of the same feed)")
    .argument("<file>", "notices, JSON Lines or CSV ('-' for stdin)")
    .addOption(new Option("--format <format>", "input format").choices(["auto", "jsonl", "csv"]).default("auto"))
    .addHelpText(
      "after",
      `
${commandExitCodes({
  ok: "every notice applied or skipped (already applied, or its record closed)",
  errors: [["ERR_PARTIAL", "some notices could not be applied (each reported), the others were"]],
})}
${nothingAppliedHelp("notices")}

Examples:
  jpki registry apply notices.jsonl
  zcat feed.jsonl.gz | jpki registry apply - --json`,
    )
    .action(async (file: string, o: { format: "auto" | "jsonl" | "csv" }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const { applyNoticesToRegistry, readRecords } = await library();
      await withWorkspace(ctx, async (ws) => {
        const source = file === "-" ? (io.stdin ?? process.stdin) : checkRecordFile(file, "notice file", { cwd: io.cwd, pipe: "write it to a file, or pipe it in: jpki registry apply - < FILE" });
        const r = await applyNoticesToRegistry(ws.store, readRecords(source, { format: file === "-" && o.format === "auto" ? "jsonl" : o.format, rejectDuplicateKeys: true }), ws.clock.now());
        ctx.out.result(r, () =>
          [`read ${r.read}, applied ${r.applied}, skipped ${r.skipped} (already applied or record closed), rejected ${r.errors.length}`, ...r.errors.slice(0, 50).map((e) => `  error [${e.code}] ${e.message}`)].join("\n"),
        );
        if (r.errors.length) {
          throw batchFailure({
            failed: r.errors,
            applied: r.applied + r.skipped > 0,
            partial: `${r.errors.length} of ${r.read} notices could not be applied to the registry`,
            none: `none of the ${r.read} notices could be applied to the registry`,
          });
        }
      });
    });
}
