/**
 * `jpki counter move-in|move-out|relocate|rename|death|correct|remove|change-code|batch|deliver`: the municipal
 * counter (市町村窓口). A thin shell over registry/counter.ts (the procedures and the registry side's comparison)
 * and registry/counter-link.ts (delivering the notices to the CA side through the registry's outbox).
 */
import { existsSync, writeFileSync } from "node:fs";
import { Command } from "commander";
import type { CounterProcedure, CounterRunResult, DeliveryTarget, IngestRunResult, OutboxDelivery } from "../../index.js";
import { JpkiError, checkOutputDir, library } from "../lib.js";
import { Context, withWorkspace } from "../context.js";
import { commandExitCodes } from "../exit-codes.js";
import { batchFailure, nothingAppliedHelp } from "../batch-outcome.js";
import { batchStdin, crlLabel, type Io } from "../output.js";
import { checkRecordFile } from "../record-argument.js";
import type { Workspace } from "../../workspace/workspace.js";

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
'jpki notices ingest'; the passphrase is needed for the CRLs unless --no-crl).
A notice is kept in the registry's outbox (送信待ち) with the record change and removed once delivered: a
command killed in between leaves it there, and every counter command first delivers what an earlier one left
('jpki counter deliver' does only that). A notice may thus arrive twice; the CA side applies it once.`;

/** What a counter command exits with; `batch` for the one that runs many procedures. */
const counterExits = (batch: boolean) =>
  commandExitCodes({
    ok: "done, and the notices delivered",
    errors: [
      ...(batch ? [] : [[["ERR_RESIDENT_UNKNOWN", "ERR_COUNTER_PROCEDURE_INVALID"], "no such resident, or the procedure does not fit the record"] as const]),
      ["ERR_PARTIAL", batch ? "some procedures failed (reported by number) and the others were done, or the CA side rejected notices (--ingest)" : "the CA side rejected notices (--ingest)"],
      ["ERR_NOTICES_UNDELIVERED", "the records changed, but their notices wait in the outbox for 'jpki counter deliver': do not repeat the procedures"],
    ],
  });

function addSendOptions(c: Command): Command {
  return c
    .option("--date <YYYY-MM-DD>", "the change's date (異動日), not after today in Japan (default: today)")
    .option("--spool <dir>", "the CA side's spool directory (default: <workspace>/spool)")
    .option("--ingest", "ingest the notice in this process instead of spooling it")
    .option("--no-crl", "with --ingest: do not regenerate CRLs (the CAs stay due)");
}

/**
 * The options that carry one of the four items (基本4情報), and what a terminal prompt asks for. Each also takes
 * '-': read the value from standard input. A command line is no place for them: every user of the machine reads
 * it while the command runs (`ps`, /proc/PID/cmdline) and the shell keeps it in its history.
 */
const ITEM_OPTIONS = [
  { key: "name", flag: "--name", prompt: "name (氏名, family　given)" },
  { key: "address", flag: "--address", prompt: "address (住所)" },
  { key: "birthDate", flag: "--birth-date", prompt: "birth date (生年月日, YYYY-MM-DD)" },
  { key: "gender", flag: "--gender", prompt: "gender (性別: male, female or unknown)" },
] as const;
type ItemOption = (typeof ITEM_OPTIONS)[number];

const ITEMS_HELP = (flags: readonly string[]) => `
Keep the four items (基本4情報) off the command line: every user of this machine can read it while the command
runs (ps, /proc/PID/cmdline), and the shell keeps it in its history. Give ${flags.length > 1 ? "an item's option" : flags[0]} as '-' and its
value comes from standard input: one line of UTF-8 (its line end and a byte order mark are not part of it); at
a terminal jpki asks for it on stderr.${flags.length > 1 ? ` One option per command reads standard input: for several items at
once pipe one JSON line to 'jpki counter batch -'.` : ""}`;

/** An address is a few hundred bytes at most: more on standard input is the wrong file, not a value. */
const MAX_STDIN_VALUE = 4096;

/**
 * The value of the one item option given as '-', from standard input, before anything else happens (the CA key
 * passphrase prompt included). It then goes through the same parse path as a value on the command line. Neither
 * the value nor any part of the input appears in an error.
 */
async function itemFromStdin(io: Io, o: Record<string, unknown>): Promise<Record<string, string>> {
  const dashed = ITEM_OPTIONS.filter((x) => o[x.key] === "-");
  if (!dashed.length) return {};
  if (dashed.length > 1) {
    const names = dashed.map((x) => x.flag);
    throw new JpkiError(
      "ERR_USAGE",
      `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are ${dashed.length === 2 ? "both" : "all"} '-', but standard input carries one value: for several items at once pipe one JSON line to 'jpki counter batch -' (see its help)`,
    );
  }
  const item = dashed[0]!;
  return { [item.key]: await readItemValue(io, item) };
}

/**
 * One line on stderr for each item given on the command line rather than as '-': it is taken (scripts rely on
 * it), but every user of the machine could read it in `ps` while the command ran, and the shell's history keeps
 * it. Said after the fact, so the operator moves the next one to standard input. The value is never repeated.
 * Not with --json, whose stderr is the one JSON error document scripts parse.
 */
function warnItemsOnCommandLine(io: Io, o: Record<string, unknown>): void {
  for (const x of ITEM_OPTIONS) {
    if (typeof o[x.key] !== "string" || o[x.key] === "-") continue;
    io.stderr.write(`jpki: warning: ${x.flag} was given on the command line, which other users can read (ps, /proc/PID/cmdline) and the shell's history keeps: give ${x.flag} - and the value on standard input\n`);
  }
}

async function readItemValue(io: Io, item: ItemOption): Promise<string> {
  const pipe = `pipe it in: jpki counter … ${item.flag} - < FILE`;
  const stdin = io.stdin;
  if (!stdin) throw new JpkiError("ERR_USAGE", `${item.flag} -: there is no standard input to read the value from; ${pipe}`);
  if (stdin.isTTY) {
    // Typed at a prompt the value stays out of argv and out of the shell's history, which a pipe from printf does
    // not. Without a terminal on stderr nobody would see the prompt: refused rather than left waiting silently.
    if (!io.stderr.isTTY) throw new JpkiError("ERR_USAGE", `${item.flag} -: standard input is a terminal and stderr is not, so there is nowhere to ask for the value; ${pipe}`);
    return oneLine(await promptLine(stdin, io, `${item.prompt}: `, item), item);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stdin as AsyncIterable<Buffer | string>) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
    size += b.length;
    if (size > MAX_STDIN_VALUE) throw new JpkiError("ERR_USAGE", `${item.flag} -: standard input is longer than ${MAX_STDIN_VALUE} bytes, but it carries one value on one line (the wrong file?)`);
    chunks.push(b);
  }
  // Bytes that are not UTF-8 decode to U+FFFD, which the registry's checks refuse as it does from a file.
  return oneLine(Buffer.concat(chunks).toString("utf8"), item);
}

/** The value without one line end and one leading byte order mark (a file saved by a Windows editor). */
function oneLine(text: string, item: ItemOption): string {
  const v = text.replace(/^\uFEFF/, "").replace(/\r?\n$/, "");
  // A second line is refused, not dropped: it means the input is not the one value it was meant to be.
  if (/[\r\n]/.test(v)) throw new JpkiError("ERR_USAGE", `${item.flag} -: standard input holds more than one line, but it carries one value`);
  return v;
}

/**
 * How long after the line end typed at the prompt further input still counts as part of the same paste. A
 * terminal delivers a pasted text one line per read, each right after the other, while a clerk cannot type again
 * within it; so lines arriving in this window were pasted with the value, not typed after it.
 */
const PASTE_WINDOW_MS = 200;

/**
 * One line typed at the terminal; the terminal echoes it (the clerk checks what was typed), jpki does not. A
 * paste of several lines (an address copied with its line break) is refused, not cut to its first line: the
 * rest would be dropped or left for the next prompt, and a truncated value certified. Empty lines after it are
 * let through, since a terminal turns a pasted CRLF into two line ends.
 */
function promptLine(stdin: NodeJS.ReadableStream, io: Io, prompt: string, item: ItemOption): Promise<string> {
  return new Promise((resolveP, rejectP) => {
    io.stderr.write(prompt);
    const chunks: Buffer[] = [];
    let lineEnd = -1;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      stdin.off("data", onData);
      stdin.off("end", finish);
      stdin.off("error", onError);
      stdin.pause();
      const all = Buffer.concat(chunks);
      // End of input (Ctrl-D) before a line end gives what was typed, an empty value the checks refuse as missing.
      if (lineEnd < 0) return resolveP(all.toString("utf8"));
      if (/[^\r\n]/.test(all.subarray(lineEnd + 1).toString("utf8"))) {
        return rejectP(new JpkiError("ERR_USAGE", `${item.flag} -: more than one line was entered at the prompt, but the value is one line; paste it without its line breaks, or pipe it in: jpki counter … ${item.flag} - < FILE`));
      }
      resolveP(all.subarray(0, lineEnd).toString("utf8"));
    };
    const onError = (e: unknown) => {
      clearTimeout(timer);
      stdin.off("data", onData);
      stdin.off("end", finish);
      rejectP(e);
    };
    const onData = (c: Buffer | string) => {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
      if (lineEnd < 0) {
        // A terminal without CR-to-NL translation ends the line with a CR alone.
        const i = b.findIndex((x) => x === 0x0a || x === 0x0d);
        if (i >= 0) {
          lineEnd = chunks.reduce((n, x) => n + x.length, 0) + i;
          timer = setTimeout(finish, PASTE_WINDOW_MS);
        }
      }
      chunks.push(b);
    };
    stdin.on("data", onData);
    stdin.once("end", finish);
    stdin.once("error", onError);
  });
}

/** What the ingestion runs of one command did, added up. */
function ingestTotals(runs: readonly IngestRunResult[]) {
  if (!runs.length) return undefined;
  const sum = (k: "applied" | "duplicates" | "held" | "rejected" | "revocations") => runs.reduce((n, r) => n + r[k], 0);
  return {
    applied: sum("applied"),
    duplicates: sum("duplicates"),
    held: sum("held"),
    rejected: sum("rejected"),
    revocations: sum("revocations"),
    // Each CRL with its scope, as 'notices ingest' reports them: "13-sig #5, 13-sig #6" read as two full CRLs of one
    // CA where the second was its municipality partition.
    crls: runs.flatMap((r) =>
      r.crls.map((c) => ({
        caId: c.caId,
        ca: c.caId,
        scope: c.scope,
        ...(c.municipality !== undefined ? { municipality: c.municipality } : {}),
        ...(c.baseNumber !== undefined ? { baseNumber: c.baseNumber } : {}),
        number: c.number,
        entries: c.entries,
      })),
    ),
    rejectFiles: runs.flatMap((r) => (r.rejectFile ? [r.rejectFile] : [])),
  };
}

function deliveryLines(d: OutboxDelivery, what: string): string[] {
  const ingest = ingestTotals(d.ingested);
  return [
    ...d.spooled.map((f) => `${what} written to ${f}`),
    // A held notice (its predecessor still in a spool file, say) is said: "ingested 0: revocations 0" alone read as done.
    ...(ingest ? [`${what} ingested ${ingest.applied}${ingest.held ? `, held ${ingest.held} (waiting for an earlier notice of the resident: 'jpki notices pending')` : ""}: revocations ${ingest.revocations}${ingest.crls.length ? `; CRLs regenerated: ${ingest.crls.map((c) => `${crlLabel(c)} #${c.number} (${c.entries})`).join(", ")}` : ""}`] : []),
  ];
}

/** The CA side's rejections are reported after the delivery (its notices are delivered and acknowledged). */
function checkRejected(runs: readonly IngestRunResult[]): void {
  const t = ingestTotals(runs);
  if (t && t.rejected > 0) throw new JpkiError("ERR_PARTIAL", `${t.rejected} notices were rejected by the CA side (see ${t.rejectFiles.join(", ")})`);
}

/** Where this command delivers, with the CRL updater ingestion needs (its passphrase asked for before anything). */
async function deliveryTarget(io: Io, ctx: Context, o: SendOptions): Promise<(ws: Workspace) => Promise<DeliveryTarget>> {
  if (o.ingest && o.spool) throw new JpkiError("ERR_USAGE", "--ingest and --spool exclude each other: a notice goes to one place");
  const passphrase = o.ingest && o.crl ? await ctx.caPassphrase() : undefined;
  const lib = await library();
  return async (ws) => {
    // Checked (and made when missing) before any procedure runs or anything is delivered, whether or not a
    // notice is pending: a --spool under /proc passed unseen while nothing was, and hung once something was.
    if (!o.ingest) {
      const spool = o.spool !== undefined ? checkOutputDir(o.spool, "spool directory --spool", { create: true, cwd: io.cwd }) : checkOutputDir(lib.defaultSpoolDir(ws), "spool directory", { create: true });
      return { spool };
    }
    const updater = passphrase ? new lib.CrlUpdater(ws, passphrase) : undefined;
    await updater?.preflight();
    return { ingest: true, updater };
  };
}

/**
 * Test-only (test/integration/counter-crash.test.ts): with JPKI_TEST_COUNTER_HALT=FILE the command, once the
 * records and their outbox rows have committed and before it delivers, writes FILE and waits (up to a minute) so
 * the test can SIGKILL it at exactly that point. Unset, as always outside that test, nothing happens.
 */
function haltForTest(io: Io): void {
  const file = io.env["JPKI_TEST_COUNTER_HALT"];
  if (!file) return;
  writeFileSync(file, String(process.pid), { mode: 0o600 });
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 1200 && !existsSync(`${file}.release`); i++) Atomics.wait(pause, 0, 0, 50);
}

function summary(r: CounterRunResult, earlier: OutboxDelivery, sent: OutboxDelivery) {
  const ingest = ingestTotals([...earlier.ingested, ...sent.ingested]);
  return {
    done: r.done.map((d) => ({ kind: d.kind, residentCode: d.residentCode, notice: d.notice ? d.notice.noticeId : null, expectedRevocations: d.affected.map((a) => a.serial) })),
    notices: r.notices.length,
    errors: r.errors,
    /** the spool file with this command's notices (null: none sent) */
    spooled: sent.spooled[0] ?? null,
    /** notices delivered from the outbox: left by earlier commands, and after this one's procedures */
    delivered: { earlier: earlier.delivered, now: sent.delivered },
    spoolFiles: [...earlier.spooled, ...sent.spooled],
    ...(ingest ? { ingest } : {}),
  };
}

/** Delivers what earlier commands left pending, runs the procedures, delivers their notices, reports. */
async function run(io: Io, cmd: Command, o: SendOptions, procedures: () => Promise<Iterable<CounterProcedure> | AsyncIterable<CounterProcedure>>): Promise<void> {
  const ctx = Context.of(io, cmd);
  const targetOf = await deliveryTarget(io, ctx, o);
  const lib = await library();
  await withWorkspace(ctx, async (ws) => {
    const to = await targetOf(ws);
    // Earlier notices first: a resident's must reach the CA side in sequence order.
    const earlier = await lib.deliverOutbox(ws, to);
    const r = await lib.runProcedures(ws.store, await procedures(), { now: ws.clock.now() });
    haltForTest(io);
    let sent: OutboxDelivery;
    try {
      sent = await lib.deliverOutbox(ws, to);
    } catch (e) {
      // The records have changed and cannot be put back; their notices are safe in the outbox. Say so, rather
      // than leave the operator to think the procedures failed and do them again.
      throw new JpkiError(
        "ERR_NOTICES_UNDELIVERED",
        `${r.done.length} procedure${r.done.length === 1 ? " is" : "s are"} done, but the notices could not be delivered (${e instanceof Error ? e.message : String(e)}); they are kept in the registry's outbox: 'jpki counter deliver' sends them`,
        { cause: e },
      );
    }
    const out = summary(r, earlier, sent);
    // One procedure that failed is the command's error, said once on stderr (it was also printed here).
    const alone = r.errors.length === 1 && r.done.length === 0;
    const lines = [
      ...(earlier.delivered ? [`delivered ${earlier.delivered} notices left pending by an earlier command`, ...deliveryLines(earlier, "  they were")] : []),
      ...r.done.map((d) => `${d.kind} ${d.residentCode}: done; ${d.notice ? `notice ${d.notice.noticeId} (${d.notice.kind})` : "no notice (no certificate affected)"}`),
      ...deliveryLines(sent, "notices"),
      ...(alone ? [] : r.errors.map((e) => `${e.code}: ${e.message}`)),
    ];
    if (ctx.out.json || lines.length) ctx.out.result(out, () => lines.join("\n"));
    checkRejected([...earlier.ingested, ...sent.ingested]);
    if (alone) {
      const e = r.errors[0]!;
      throw new JpkiError(e.code, e.message.replace(/^procedure 1: /, ""), e.details ? { details: { ...e.details } } : undefined);
    }
    if (r.errors.length) {
      throw batchFailure({
        failed: r.errors,
        applied: r.done.length > 0,
        partial: `${r.errors.length} of ${r.errors.length + r.done.length} procedures failed; the others were done`,
        none: `none of the ${r.errors.length} procedures was done`,
      });
    }
  });
}

export function makeCounterCommand(io: Io): Command {
  const counter = new Command("counter").description("the municipal counter (市町村窓口): change resident records; certificate holders' changes go to the CA side as notices");

  const single = (name: string, description: string, fields: Array<[flags: string, what: string, required: boolean]>, build: (code: string, o: Record<string, string | undefined>) => Record<string, unknown>, examples: string[]) => {
    const c = counter.command(name).description(description).requiredOption("--resident <code>", "the resident code (住民票コード)");
    const items: string[] = [];
    for (const [flags, what, required] of fields) {
      const item = ITEM_OPTIONS.some((x) => flags.startsWith(`${x.flag} `));
      if (item) items.push(flags.split(" ")[0]!);
      const help = item ? `${what} ('-': read it from standard input)` : what;
      if (required) c.requiredOption(flags, help);
      else c.option(flags, help);
    }
    addSendOptions(c).addHelpText("after", `${items.length ? `${ITEMS_HELP(items)}\n` : ""}${SEND_HELP}\n\n${counterExits(false)}\n\nExample${examples.length > 1 ? "s" : ""}:\n${examples.map((e) => `  ${e}`).join("\n")}`);
    c.action(async (o: Record<string, string | undefined> & SendOptions, cmd: Command) => {
      if (!cmd.optsWithGlobals().json) warnItemsOnCommandLine(io, o);
      const fromStdin = await itemFromStdin(io, o);
      await run(io, cmd, o, async () => {
        const { parseProcedure } = await library();
        const raw = { ...build(o["resident"]!, { ...o, ...fromStdin }), ...(o.date ? { effectiveDate: o.date } : {}) };
        return [parseProcedure(raw)];
      });
    });
  };

  single("move-in", "転入: the resident arrives in MUNICIPALITY from another one (revokes the signature certificate)", [
    ["--municipality <code>", "the municipality arrived in (6-digit code)", true],
    ["--address <address>", "the new address, from the prefecture", true],
  ], (r, o) => ({ kind: "move-in", residentCode: r, municipality: o["municipality"], address: o["address"] }), [
    "jpki counter move-in --resident 12345678903 --municipality 271004 --address - < new-address.txt",
    "jpki counter move-in --resident 12345678903 --municipality 271004 --address -     (asks for it at a terminal)",
  ]);
  single("move-out", "転出: the resident leaves for MUNICIPALITY (revokes the signature certificate)", [
    ["--municipality <code>", "the municipality left for (6-digit code)", true],
    ["--address <address>", "the address there, from the prefecture", true],
  ], (r, o) => ({ kind: "move-out", residentCode: r, municipality: o["municipality"], address: o["address"] }), [
    "jpki counter move-out --resident 12345678903 --municipality 271004 --address - < new-address.txt",
    "jpki counter move-out --resident 12345678903 --municipality 271004 --address -     (asks for it at a terminal)",
  ]);
  single("relocate", "転居: a new address within the municipality (revokes the signature certificate)", [
    ["--address <address>", "the new address, from the prefecture", true],
  ], (r, o) => ({ kind: "relocate", residentCode: r, address: o["address"] }), [
    "jpki counter relocate --resident 12345678903 --address - --json < new-address.txt",
    "jpki counter relocate --resident 12345678903 --address -     (asks for it at a terminal)",
  ]);
  single("rename", "氏名変更: a new name, family and given name with one U+3000 between (revokes the signature certificate)", [
    ["--name <name>", "the new name", true],
  ], (r, o) => ({ kind: "rename", residentCode: r, name: o["name"] }), [
    "jpki counter rename --resident 12345678903 --name - < new-name.txt",
    "jpki counter rename --resident 12345678903 --name -     (asks for it at a terminal)",
  ]);
  single("death", "死亡届: the record is closed (revokes both certificates)", [], (r) => ({ kind: "death", residentCode: r }), ["jpki counter death --resident 12345678903 --ingest"]);
  single("remove", "住民票消除, e.g. emigration: the record is closed (revokes both certificates)", [], (r) => ({ kind: "remove", residentCode: r }), ["jpki counter remove --resident 12345678903"]);
  single("correct", "職権修正: the registry corrects any of the four items (revokes the signature certificate unless the certified text stays)", [
    ["--name <name>", "corrected name", false],
    ["--address <address>", "corrected address", false],
    ["--birth-date <YYYY-MM-DD>", "corrected birth date", false],
    ["--gender <gender>", "corrected gender: male, female or unknown", false],
  ], (r, o) => ({ kind: "correct", residentCode: r, name: o["name"], address: o["address"], birthDate: o["birthDate"], gender: o["gender"] }), [
    "jpki counter correct --resident 12345678903 --birth-date - < birth-date.txt",
    "jpki counter batch - < correction.jsonl     (several items: {\"kind\":\"correct\",\"residentCode\":\"…\",\"name\":\"…\",\"address\":\"…\"})",
  ]);
  single("change-code", "住民票コード変更: a new resident code; the certificates are kept and re-linked", [
    ["--new-code <code>", "the new resident code (11 digits with check digit)", true],
  ], (r, o) => ({ kind: "change-code", residentCode: r, newCode: o["newCode"] }), ["jpki counter change-code --resident 12345678903 --new-code 22345678909"]);

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
${nothingAppliedHelp("procedures")}
FILE '-' reads the lines from standard input. A file or a pipe keeps the four items off the command line, which
every user of this machine can read while the command runs (ps) and the shell keeps in its history: it is also
the way to give several of one resident's items at once (one line, e.g. a correct procedure).
${SEND_HELP}

${counterExits(true)}

Examples:
  jpki counter batch today.jsonl --ingest --json
  jpki counter batch - --json < correction.jsonl`,
    );
  addSendOptions(batch).action(async (file: string, o: SendOptions, cmd: Command) => {
    const source =
      file === "-"
        ? batchStdin(io, { command: "counter batch -", items: "procedures" })
        : checkRecordFile(file, "procedure file", { cwd: io.cwd, pipe: "write it to a file, or pipe it in: jpki counter batch - < FILE" });
    await run(io, cmd, o, async () => {
      const { parseProcedure, readRecords } = await library();
      const out: CounterProcedure[] = [];
      // Lines that do not parse are refused before anything changes: a day's batch is read whole first. A field named
      // twice is such a line: JSON.parse keeps the last, so {"kind":"relocate","kind":"death",…} recorded a death.
      for await (const item of readRecords(source, { format: "jsonl", rejectDuplicateKeys: true })) {
        // readRecords' messages already name their line.
        if ("error" in item) throw new JpkiError(item.error.code, item.error.message.startsWith(`line ${item.line}`) ? item.error.message : `line ${item.line}: ${item.error.message}`);
        try {
          out.push(parseProcedure({ ...item.value, ...(o.date && item.value["effectiveDate"] === undefined ? { effectiveDate: o.date } : {}) }));
        } catch (e) {
          // Its details (field, problem: never a value) kept, with the line: what a script reads from --json.
          if (e instanceof JpkiError) throw new JpkiError(e.code, `line ${item.line}: ${e.message}`, { details: { ...e.details, line: item.line } });
          throw e;
        }
      }
      return out;
    });
  });

  const deliver = counter
    .command("deliver")
    .description("deliver the notices still pending in the registry's outbox (送信待ち) to the CA side, oldest first, and nothing else")
    .option("--spool <dir>", "the CA side's spool directory (default: <workspace>/spool)")
    .option("--ingest", "ingest the notices in this process instead of spooling them")
    .option("--no-crl", "with --ingest: do not regenerate CRLs (the CAs stay due)")
    .addHelpText(
      "after",
      `
A counter command keeps each notice it decides in the registry's outbox, in the transaction that changes the
record, and removes it once delivered. A command killed in between leaves the notice pending; any later
counter command delivers it before its own, and this one only does that (e.g. from a timer). Prints how
many it delivered (0: nothing pending). A notice delivered twice is applied once by the CA side.

${commandExitCodes({ ok: "every pending notice delivered (or none pending)", errors: [["ERR_PARTIAL", "--ingest: the CA side rejected some notices"]] })}

Example:
  jpki counter deliver --ingest --json`,
    );
  deliver.action(async (o: SendOptions, cmd: Command) => {
    const ctx = Context.of(io, cmd);
    const targetOf = await deliveryTarget(io, ctx, o);
    const lib = await library();
    await withWorkspace(ctx, async (ws) => {
      const d = await lib.deliverOutbox(ws, await targetOf(ws));
      const ingest = ingestTotals(d.ingested);
      ctx.out.result({ delivered: d.delivered, spoolFiles: d.spooled, ...(ingest ? { ingest } : {}) }, () =>
        [`delivered ${d.delivered} pending notice${d.delivered === 1 ? "" : "s"}`, ...deliveryLines(d, "notices")].join("\n"),
      );
      checkRejected(d.ingested);
    });
  });
  return counter;
}
