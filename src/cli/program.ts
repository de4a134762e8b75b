/**
 * The jpki program: noun-then-verb commands over the library (STYLE.md §15). `run` is what main calls
 * and what tests call in-process; it returns the exit code instead of exiting.
 */
import { Command, CommanderError } from "commander";
import { ERROR_CODES, JpkiError, isJpkiError } from "../index.js";
import { makeCaCommand } from "./commands/ca.js";
import { makeCrlCommand } from "./commands/crl.js";
import { makeDemoCommand } from "./commands/demo.js";
import { makeInspectCommand } from "./commands/inspect.js";
import { makeIssueCommand } from "./commands/issue.js";
import { makeRegistryCommand } from "./commands/registry.js";
import { makeRevokeCommand } from "./commands/revoke.js";
import { makeNoticesCommand } from "./commands/notices.js";
import { makeWatchCommand } from "./commands/watch.js";
import { makeFixturesCommand } from "./commands/fixtures.js";
import { DEFAULT_WORKSPACE } from "./context.js";
import { EXIT_USAGE, exitCodesHelp } from "./exit-codes.js";
import { toJson, type Io } from "./output.js";

export const VERSION = "0.1.0";

export function makeProgram(io: Io): Command {
  const program = new Command("jpki")
    .description("Japan's public personal authentication service (公的個人認証サービス, JPKI): prefecture CAs, registry-bound certificates, revocation, CRLs")
    .version(VERSION)
    .option("-w, --workspace <dir>", `workspace directory (default: $JPKI_HOME or ./${DEFAULT_WORKSPACE})`)
    .option("--json", "write one JSON document to stdout (diagnostics stay on stderr)")
    .option("--passphrase-file <file>", "file holding the CA key passphrase (else $JPKI_PASSPHRASE, else a prompt)")
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      `
Start here:
  jpki demo                      a complete run in ./jpki-demo: CAs, residents, certificates, a revocation, CRLs
  jpki ca init --prefecture 13   create Tokyo's signature and authentication CAs

${exitCodesHelp()}`,
    );
  for (const make of [makeDemoCommand, makeCaCommand, makeRegistryCommand, makeIssueCommand, makeRevokeCommand, makeCrlCommand, makeNoticesCommand, makeWatchCommand, makeFixturesCommand, makeInspectCommand]) {
    program.addCommand(make(io));
  }
  const configure = (c: Command) => {
    c.exitOverride();
    if (c !== program && c.commands.length === 0) {
      c.addHelpText("after", "\nExit codes: 0 success, 2 usage, 13 partially applied; every error prints its code (jpki --help lists them all).");
    }
    c.configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
    c.commands.forEach(configure);
  };
  configure(program);
  return program;
}

/** Runs the CLI with user arguments (no node/script prefix); resolves to the exit code. */
export async function run(args: readonly string[], io: Io): Promise<number> {
  const program = makeProgram(io);
  const json = args.includes("--json");
  try {
    await program.parseAsync([...args], { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    const err = isJpkiError(e) ? e : new JpkiError("ERR_INTERNAL", `unexpected failure: ${(e as Error)?.stack ?? String(e)}`, { cause: e });
    if (json) io.stderr.write(toJson({ error: err.toJSON() }) + "\n");
    else io.stderr.write(`jpki: error [${err.code}] ${err.message}\n`);
    return ERROR_CODES[err.code].exit;
  }
}
