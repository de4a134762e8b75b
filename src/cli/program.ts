/**
 * The jpki program: noun-then-verb commands over the library (STYLE.md §15). `run` is what main calls
 * and what tests call in-process; it returns the exit code instead of exiting. Building the program needs
 * only commander and the light part of cli/lib.ts; each command's action loads the library when it runs.
 * When the command line names a command, only that command's module is loaded (COMMANDS): loading all ~30
 * of them is most of a command's fixed start-up cost (issue 8 point 9).
 */
import type { EventEmitter } from "node:events";
import { Command, CommanderError, Help, type Option } from "commander";
import { ERROR_CODES, JpkiError, isJpkiError } from "./lib.js";
import { DEFAULT_WORKSPACE } from "./context.js";
import { EXIT_USAGE, GENERIC_EXIT_CODES, VerdictExit, exitCodesHelp } from "./exit-codes.js";
import { toJson, type Io } from "./output.js";
import { VERSION } from "../version.js";

export { VERSION };

type CommandMaker = (io: Io) => Command;

/**
 * The top-level commands in help order: name → its module, loaded when the command line names it (or all, for
 * the top-level help and unknown commands). The name is the command's own (test/integration/cli-startup.test.ts
 * checks each against what its module builds).
 */
const COMMANDS: ReadonlyArray<readonly [name: string, load: () => Promise<CommandMaker>]> = [
  ["demo", async () => (await import("./commands/demo.js")).makeDemoCommand],
  ["ca", async () => (await import("./commands/ca.js")).makeCaCommand],
  ["registry", async () => (await import("./commands/registry.js")).makeRegistryCommand],
  ["counter", async () => (await import("./commands/counter.js")).makeCounterCommand],
  ["issue", async () => (await import("./commands/issue.js")).makeIssueCommand],
  ["revoke", async () => (await import("./commands/revoke.js")).makeRevokeCommand],
  ["crl", async () => (await import("./commands/crl.js")).makeCrlCommand],
  ["notices", async () => (await import("./commands/notices.js")).makeNoticesCommand],
  ["watch", async () => (await import("./commands/watch.js")).makeWatchCommand],
  ["fixtures", async () => (await import("./commands/fixtures.js")).makeFixturesCommand],
  ["inspect", async () => (await import("./commands/inspect.js")).makeInspectCommand],
  ["store", async () => (await import("./commands/store.js")).makeStoreCommand],
  ["serve", async () => (await import("./commands/serve.js")).makeServeCommand],
  ["verifier", async () => (await import("./commands/verifier.js")).makeVerifierCommand],
  ["disclosure", async () => (await import("./commands/disclosure.js")).makeDisclosureCommand],
  ["provider", async () => (await import("./commands/provider.js")).makeProviderCommand],
  ["verify", async () => (await import("./commands/verify.js")).makeVerifyCommand],
  ["verify-signature", async () => (await import("./commands/verify-signature.js")).makeVerifySignatureCommand],
  ["card", async () => (await import("./commands/card.js")).makeCardCommand],
  ["backup", async () => (await import("./commands/backup.js")).makeBackupCommand],
  ["restore", async () => (await import("./commands/backup.js")).makeRestoreCommand],
  ["audit", async () => (await import("./commands/audit.js")).makeAuditCommand],
];

/** The names of the top-level commands, in help order. */
export const COMMAND_NAMES: readonly string[] = COMMANDS.map(([name]) => name);

/**
 * The whole program, every command registered; with `only`, just that top-level command (what `run` builds
 * when the command line names one: the same command, its help and its errors, without loading the others).
 */
export async function makeProgram(io: Io, only?: string): Promise<Command> {
  const program = makeRoot();
  const wanted = only === undefined ? COMMANDS : COMMANDS.filter(([name]) => name === only);
  for (const make of await Promise.all(wanted.map(([, load]) => load()))) program.addCommand(make(io));
  const configure = (c: Command) => {
    c.exitOverride((e) => {
      throw usageError(e, c);
    });
    // A command whose help lists its own exit codes keeps that list alone; the others get the generic one.
    if (c !== program && c.commands.length === 0 && !/^Exit codes:/m.test(helpAfter(c))) c.addHelpText("after", `\n${GENERIC_EXIT_CODES}`);
    // commander's error text is not printed: usageError carries it to run, which prints it as every error.
    c.configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s), outputError: () => undefined });
    c.options.forEach((o) => onceOnly(o, c));
    c.configureHelp({ optionDescription: optionDescription });
    c.commands.forEach(configure);
  };
  configure(program);
  return program;
}

/**
 * An option's description in the help, as commander writes it but for its "(default: …)" where that says nothing
 * or says it twice: a repeatable option's [] (the list it collects into: "(default: [])" read as a value to give),
 * and a default the description states in words already ("(default 6) (default: \"6\")").
 */
function optionDescription(o: Option): string {
  const own = (Array.isArray(o.defaultValue) && o.defaultValue.length === 0) || /\(default\b/.test(o.description ?? "");
  return Help.prototype.optionDescription.call(new Help(), own ? Object.assign(Object.create(Object.getPrototypeOf(o) as object) as Option, o, { defaultValue: undefined }) : o);
}

/**
 * The text a command's help prints after its options (what addHelpText("after") gave it), asked for as commander's
 * outputHelp asks: a Command is an EventEmitter and each such text a listener of "afterHelp" (bin/help-cache.cjs
 * reads the top-level help the same way). The typings leave the EventEmitter out.
 */
function helpAfter(c: Command): string {
  let text = "";
  (c as unknown as EventEmitter).emit("afterHelp", { error: false, command: c, write: (s: string) => (text += s) });
  return text;
}

/**
 * An option of one value is given once. commander keeps the last of `--resident A --resident B`, so the certificate
 * went to B, and `counter death --resident A --resident B` recorded B's death: which value was meant is a guess, as a
 * field named twice in a batch line is (refused there too). Options that collect (variadic, or a repeatable one whose
 * default is a list) and flags stay repeatable. The values are not quoted back: they may be personal data.
 */
function onceOnly(o: Option, c: Command): void {
  if (!(o.required || o.optional) || o.variadic || Array.isArray(o.defaultValue)) return;
  const parse = o.parseArg;
  let given = false;
  o.parseArg = <T>(value: string, previous: T): T => {
    if (given) {
      const path: string[] = [];
      for (let p: Command | null = c; p; p = p.parent) path.unshift(p.name());
      throw new JpkiError("ERR_USAGE", `option '${o.flags}' is given more than once: which value is meant is ambiguous; give it once (see '${path.join(" ")} --help')`);
    }
    given = true;
    return (parse ? parse.call(o, value, previous) : value) as T;
  };
}

/** What commander reports when it showed help or the version: no error (run exits 0). */
const NOT_ERRORS: ReadonlySet<string> = new Set(["commander.helpDisplayed", "commander.help", "commander.version"]);

/**
 * A usage error commander found (an unknown option, a required option or argument missing, too many arguments, a
 * value not among the choices) as ERR_USAGE, the same error as an unknown command: one line with the code on
 * stderr, the JSON document under --json, exit 2, so a script can tell it from any other failure. commander's
 * text is kept (it names the option), on one line, with where to look. Help and version pass through as they are.
 */
function usageError(e: CommanderError, c: Command): Error {
  if (NOT_ERRORS.has(e.code)) return e;
  const path: string[] = [];
  for (let p: Command | null = c; p; p = p.parent) path.unshift(p.name());
  const text = e.message.replace(/^error: /, "").replace(/\s*\n\s*/g, " ");
  return new JpkiError("ERR_USAGE", `${text} (see '${path.join(" ")} --help')`);
}

/** The root command: its options and help text, no subcommands yet. */
function makeRoot(): Command {
  return new Command("jpki")
    .description("Japan's public personal authentication service (公的個人認証サービス, JPKI): prefecture CAs, registry-bound certificates, revocation, CRLs")
    .version(VERSION)
    .option("-w, --workspace <dir>", `workspace directory (default: $JPKI_HOME or ./${DEFAULT_WORKSPACE})`)
    .option("--json", "write one JSON document to stdout (diagnostics stay on stderr)")
    .option("--passphrase-file <file>", "owner-only file holding the CA key passphrase, without one leading UTF-8 BOM and one final line break (else $JPKI_PASSPHRASE, else a prompt)")
    .option("--pkcs11-pin-file <file>", "file holding the user PIN of the PKCS#11 token with the CA keys (else $JPKI_PKCS11_PIN)")
    .addHelpText(
      "after",
      `
Start here:
  jpki demo                      a complete run in ./jpki-demo: CAs, residents, certificates, a revocation, CRLs
  jpki ca init --prefecture 13   create Tokyo's signature and authentication CAs

Environment:
  JPKI_HOME         the workspace directory (instead of --workspace)
  JPKI_PASSPHRASE   the CA key passphrase (instead of --passphrase-file or a prompt)
  JPKI_PKCS11_PIN   the user PIN of the PKCS#11 token holding the CA keys (or JPKI_PKCS11_PIN_FILE, or
                    --pkcs11-pin-file; never an argument)
  JPKI_STORE        postgres://… connection of a PostgreSQL workspace (never on the command line, where
                    other users see it; passwords via PGPASSWORD or ~/.pgpass)

${exitCodesHelp()}`,
    );
}

/**
 * What the CLI says of a failure that is none of ours (a bug): ERR_INTERNAL with the error's name and message. The
 * stack trace only with JPKI_DEBUG=1: an operator's terminal and logs get one line, as for every other error, and
 * whoever reports the bug can ask for where it happened.
 */
export function unexpectedFailure(e: unknown, debug: boolean): JpkiError {
  const what = e instanceof Error ? (debug && e.stack ? e.stack : `${e.name}: ${e.message}`) : String(e);
  return new JpkiError("ERR_INTERNAL", `unexpected failure (a bug in jpki: please report it${debug ? "" : "; JPKI_DEBUG=1 shows where it happened"}): ${what}`, { cause: e });
}

/** Runs the CLI with user arguments (no node/script prefix); resolves to the exit code. */
export async function run(args: readonly string[], io: Io): Promise<number> {
  const program = await makeProgram(io, namedCommand(makeRoot(), args));
  const json = args.includes("--json");
  try {
    const unknown = unknownCommand(program, args);
    if (unknown) throw unknown;
    await program.parseAsync([...args], { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof VerdictExit) return e.exit;
    // Help and version; commander's usage errors arrive as ERR_USAGE (usageError).
    if (e instanceof CommanderError) return NOT_ERRORS.has(e.code) || e.exitCode === 0 ? 0 : EXIT_USAGE;
    const err = isJpkiError(e) ? e : unexpectedFailure(e, io.env.JPKI_DEBUG === "1");
    if (json) io.stderr.write(toJson({ error: err.toJSON() }) + "\n");
    else io.stderr.write(`jpki: error [${err.code}] ${err.message}\n`);
    return ERROR_CODES[err.code].exit;
  }
}

/**
 * The top-level command the arguments name, when commander would run it: the first word after the root's
 * options (and their values) is in COMMANDS, and no --help or --version comes before it. Anything else
 * (help, an unknown word, no command) gets the whole program, for its help and its "unknown command" error.
 */
function namedCommand(root: Command, args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("-") || a === "-") return COMMAND_NAMES.includes(a) ? a : undefined;
    const opt = root.options.find((o) => o.short === a || o.long === a || (o.long !== undefined && a.startsWith(`${o.long}=`)));
    if (!opt || opt.long === "--version") return undefined; // an unknown option, or --version: commander decides
    if (opt.required && !a.includes("=")) i++;
  }
  return undefined;
}

/**
 * The first command-line word that names no command, checked before commander parses: commander shows help
 * for `jpki no-such-command --help` and exits 0, so a typo in a script would pass silently. Walks the command
 * tree the way commander does (options of the command and its parents, with their values, are skipped;
 * `help X` checks X) and stops at the first command without subcommands, whose words are its arguments. A group
 * left without its command is refused too.
 */
function unknownCommand(program: Command, args: readonly string[]): JpkiError | undefined {
  const find = (c: Command, name: string) => c.commands.find((s) => s.name() === name || s.aliases().includes(name));
  let cmd = program;
  let scope: readonly Command[] = [program];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") return undefined;
    if (a.startsWith("-") && a !== "-") {
      const opt = scope.flatMap((c) => c.options).find((o) => o.short === a || o.long === a);
      if (opt && !a.includes("=") && (opt.required || (opt.optional && !args[i + 1]?.startsWith("-")))) i++;
      continue;
    }
    if (cmd.commands.length === 0) return undefined;
    let word = a;
    if (a === "help" && !find(cmd, "help")) {
      // Commander's help command ignores options it does not know: `jpki help --bogus` printed help and exited 0.
      const known = scope.flatMap((c) => c.options);
      const stray = args.slice(i + 1).find((x) => x.startsWith("-") && x !== "-" && !known.some((o) => o.short === x || o.long === x.split("=")[0]));
      if (stray !== undefined) return new JpkiError("ERR_USAGE", `unknown option '${stray}' for 'help' (see '${scope.map((c) => c.name()).join(" ")} --help')`);
      const target = args.slice(i + 1).find((x) => !x.startsWith("-"));
      if (target === undefined || find(cmd, target)) return undefined;
      word = target;
    }
    const sub = find(cmd, word);
    if (!sub) {
      const where = scope.map((c) => c.name()).join(" ");
      const near = cmd.commands.map((c) => c.name()).filter((n) => editDistance(n, word) <= 2);
      return new JpkiError(
        "ERR_USAGE",
        `unknown command '${word}'${cmd === program ? "" : ` for '${where}'`}${near.length ? ` (did you mean ${near.map((n) => `'${n}'`).join(" or ")}?)` : ""} (see '${where} --help')`,
      );
    }
    cmd = sub;
    scope = [...scope, sub];
  }
  // A command group named without one of its commands (`jpki crl`): commander shows the group's help as an error
  // (its exit 1), which run passed as help, exit 0 — a script's `jpki crl "$WHAT"` with WHAT unset did nothing and
  // succeeded. Asked for with --help or -h, the help is no error.
  if (cmd !== program && cmd.commands.length > 0) {
    const end = args.indexOf("--");
    if (!(end < 0 ? args : args.slice(0, end)).some((a) => a === "--help" || a === "-h")) {
      const where = scope.map((c) => c.name()).join(" ");
      return new JpkiError("ERR_USAGE", `missing command for '${where}': one of ${cmd.commands.map((c) => c.name()).join(", ")} (see '${where} --help')`);
    }
  }
  return undefined;
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}
