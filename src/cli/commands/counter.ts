/**
 * `jpki counter move-in|move-out|relocate|rename|death|correct|remove|change-code|batch`: the municipal counter
 * (市町村窓口). A thin shell over registry/counter.ts (the procedures and the registry side's comparison) and
 * registry/counter-link.ts (sending the notices to the CA side).
 */
import { Command } from "commander";
import type { ChangeNotice, CounterProcedure, CounterRunResult, IngestRunResult } from "../../index.js";
import { JpkiError, checkInputFile, library } from "../lib.js";
import { Context, withWorkspace } from "../context.js";
import type { Io } from "../output.js";

interface SendOptions {
  spool?: string;
  ingest?: boolean;
  crl: boolean;
  date?: string;
}

const SEND_HELP = `
The record changes at once. When the resident holds a certificate the change affects (as registered at
issuance: 発行情報), the registry side sends the CA side a change notice (異動等情報の通知) in the notice format
of 'jpki notices ingest', numbered per resident; otherwise no notice, and the CA side learns nothing.
Notices go to the workspace's spool directory (<workspace>/spool, taken by 'jpki watch <workspace>/spool'),
or to --spool DIR, or with --ingest straight to ingestion in this process (revocations and CRLs as
'jpki notices ingest'; the passphrase is needed for the CRLs unless --no-crl).`;

function addSendOptions(c: Command): Command {
  return c
    .option("--date <YYYY-MM-DD>", "the change's date (異動日), not after today in Japan (default: today)")
    .option("--spool <dir>", "the CA side's spool directory (default: <workspace>/spool)")
    .option("--ingest", "ingest the notice in this process instead of spooling it")
    .option("--no-crl", "with --ingest: do not regenerate CRLs (the CAs stay due)");
}

function summary(r: CounterRunResult, sent: { spooled?: string | undefined; ingest?: IngestRunResult | undefined }) {
  return {
    done: r.done.map((d) => ({ kind: d.kind, residentCode: d.residentCode, notice: d.notice ? d.notice.noticeId : null, expectedRevocations: d.affected.map((a) => a.serial) })),
    notices: r.notices.length,
    errors: r.errors,
    spooled: sent.spooled ?? null,
    ...(sent.ingest ? { ingest: { applied: sent.ingest.applied, held: sent.ingest.held, rejected: sent.ingest.rejected, revocations: sent.ingest.revocations, crls: sent.ingest.crls.map((c) => ({ ca: c.ca, number: c.number })) } } : {}),
  };
}

/** Runs the procedures, sends the notices, reports. */
async function run(io: Io, cmd: Command, o: SendOptions, procedures: () => Promise<Iterable<CounterProcedure> | AsyncIterable<CounterProcedure>>): Promise<void> {
  const ctx = Context.of(io, cmd);
  if (o.ingest && o.spool) throw new JpkiError("ERR_USAGE", "--ingest and --spool exclude each other: a notice goes to one place");
  const passphrase = o.ingest && o.crl ? await ctx.passphrase() : undefined;
  const lib = await library();
  await withWorkspace(ctx, async (ws) => {
    const updater = passphrase ? new lib.CrlUpdater(ws, passphrase) : undefined;
    await updater?.preflight();
    const r = await lib.runProcedures(ws.store, await procedures(), { now: ws.clock.now() });
    const notices: readonly ChangeNotice[] = r.notices;
    const sent = o.ingest
      ? { ingest: await lib.ingestNotices(ws, notices, updater) }
      : { spooled: lib.spoolNotices(o.spool ?? lib.defaultSpoolDir(ws), notices, ws.clock.now()) };
    const out = summary(r, sent);
    ctx.out.result(out, () =>
      [
        ...r.done.map((d) => `${d.kind} ${d.residentCode}: done; ${d.notice ? `notice ${d.notice.noticeId} (${d.notice.kind})` : "no notice (no certificate affected)"}`),
        ...(sent.spooled ? [`notices written to ${sent.spooled}`] : []),
        ...(sent.ingest ? [`ingested ${sent.ingest.applied}: revocations ${sent.ingest.revocations}${sent.ingest.crls.length ? `; CRLs regenerated: ${sent.ingest.crls.map((c) => `${c.ca} #${c.number}`).join(", ")}` : ""}`] : []),
        ...r.errors.map((e) => `${e.code}: ${e.message}`),
      ].join("\n"),
    );
    if (sent.ingest && sent.ingest.rejected > 0) throw new JpkiError("ERR_PARTIAL", `${sent.ingest.rejected} notices were rejected by the CA side (see ${sent.ingest.rejectFile})`);
    if (r.errors.length === 1 && r.done.length === 0) {
      const e = r.errors[0]!;
      throw new JpkiError(e.code, e.message.replace(/^procedure 1: /, ""));
    }
    if (r.errors.length) throw new JpkiError("ERR_PARTIAL", `${r.errors.length} of ${r.errors.length + r.done.length} procedures failed; the others were done`);
  });
}

export function makeCounterCommand(io: Io): Command {
  const counter = new Command("counter").description("the municipal counter (市町村窓口): change resident records; certificate holders' changes go to the CA side as notices");

  const single = (name: string, description: string, fields: Array<[flags: string, what: string, required: boolean]>, build: (code: string, o: Record<string, string | undefined>) => Record<string, unknown>, example: string) => {
    const c = counter.command(name).description(description).requiredOption("--resident <code>", "the resident code (住民票コード)");
    for (const [flags, what, required] of fields) {
      if (required) c.requiredOption(flags, what);
      else c.option(flags, what);
    }
    addSendOptions(c).addHelpText("after", `${SEND_HELP}\n\nExample:\n  ${example}`);
    c.action(async (o: Record<string, string | undefined> & SendOptions, cmd: Command) => {
      await run(io, cmd, o, async () => {
        const { parseProcedure } = await library();
        const raw = { ...build(o["resident"]!, o), ...(o.date ? { effectiveDate: o.date } : {}) };
        return [parseProcedure(raw)];
      });
    });
  };

  single("move-in", "転入: the resident arrives in MUNICIPALITY from another one (revokes the signature certificate)", [
    ["--municipality <code>", "the municipality arrived in (6-digit code)", true],
    ["--address <address>", "the new address, from the prefecture", true],
  ], (r, o) => ({ kind: "move-in", residentCode: r, municipality: o["municipality"], address: o["address"] }), "jpki counter move-in --resident 12345678906 --municipality 271004 --address 大阪府大阪市北区梅田１丁目１番１号");
  single("move-out", "転出: the resident leaves for MUNICIPALITY (revokes the signature certificate)", [
    ["--municipality <code>", "the municipality left for (6-digit code)", true],
    ["--address <address>", "the address there, from the prefecture", true],
  ], (r, o) => ({ kind: "move-out", residentCode: r, municipality: o["municipality"], address: o["address"] }), "jpki counter move-out --resident 12345678906 --municipality 271004 --address 大阪府大阪市北区梅田１丁目１番１号");
  single("relocate", "転居: a new address within the municipality (revokes the signature certificate)", [
    ["--address <address>", "the new address, from the prefecture", true],
  ], (r, o) => ({ kind: "relocate", residentCode: r, address: o["address"] }), "jpki counter relocate --resident 12345678906 --address 東京都千代田区千代田２番２号 --json");
  single("rename", "氏名変更: a new name, family and given name with one U+3000 between (revokes the signature certificate)", [
    ["--name <name>", "the new name", true],
  ], (r, o) => ({ kind: "rename", residentCode: r, name: o["name"] }), "jpki counter rename --resident 12345678906 --name '佐藤　花子'");
  single("death", "死亡届: the record is closed (revokes both certificates)", [], (r) => ({ kind: "death", residentCode: r }), "jpki counter death --resident 12345678906 --ingest");
  single("remove", "住民票消除, e.g. emigration: the record is closed (revokes both certificates)", [], (r) => ({ kind: "remove", residentCode: r }), "jpki counter remove --resident 12345678906");
  single("correct", "職権修正: the registry corrects any of the four items (revokes the signature certificate unless the certified text stays)", [
    ["--name <name>", "corrected name", false],
    ["--address <address>", "corrected address", false],
    ["--birth-date <YYYY-MM-DD>", "corrected birth date", false],
    ["--gender <gender>", "corrected gender: male, female or unknown", false],
  ], (r, o) => ({ kind: "correct", residentCode: r, name: o["name"], address: o["address"], birthDate: o["birthDate"], gender: o["gender"] }), "jpki counter correct --resident 12345678906 --birth-date 1980-12-30");
  single("change-code", "住民票コード変更: a new resident code; the certificates are kept and re-linked", [
    ["--new-code <code>", "the new resident code (11 digits with check digit)", true],
  ], (r, o) => ({ kind: "change-code", residentCode: r, newCode: o["newCode"] }), "jpki counter change-code --resident 12345678906 --new-code 22345678902");

  const batch = counter
    .command("batch")
    .description("a day at the counter: procedures from a JSON Lines file, one object per line, in order")
    .argument("<file>", "JSON Lines; '-' reads stdin")
    .addHelpText(
      "after",
      `
Each line: {"kind":"relocate","residentCode":"…","address":"…"} with the fields of its kind —
move-in/move-out: municipality, address; relocate: address; rename: name; correct: any of name, address,
birthDate, gender; change-code: newCode; death, remove: none; any: effectiveDate. A line that does not
parse stops the run before anything changes. A procedure that does not fit its record is reported by its
number and changes nothing; the others are done (exit code 13 then).
${SEND_HELP}

Example:
  jpki counter batch today.jsonl --ingest --json`,
    );
  addSendOptions(batch).action(async (file: string, o: SendOptions, cmd: Command) => {
    const source = file === "-" ? (io.stdin ?? process.stdin) : checkInputFile(file, "procedure file", { cwd: io.cwd });
    await run(io, cmd, o, async () => {
      const { parseProcedure, readRecords } = await library();
      const out: CounterProcedure[] = [];
      // Lines that do not parse are refused before anything changes: a day's batch is read whole first.
      for await (const item of readRecords(source, { format: "jsonl" })) {
        if ("error" in item) throw new JpkiError(item.error.code, `line ${item.line}: ${item.error.message}`);
        try {
          out.push(parseProcedure({ ...item.value, ...(o.date && item.value["effectiveDate"] === undefined ? { effectiveDate: o.date } : {}) }));
        } catch (e) {
          if (e instanceof JpkiError) throw new JpkiError(e.code, `line ${item.line}: ${e.message}`);
          throw e;
        }
      }
      return out;
    });
  });
  return counter;
}
