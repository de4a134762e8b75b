/** `jpki inspect FILE`: decode any certificate or CRL and list its deviations from the JPKI profile. */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { JpkiError, checkInputFile, inspectLibrary } from "../lib.js";
import { Context } from "../context.js";
import type { Io } from "../output.js";

export function makeInspectCommand(io: Io): Command {
  return new Command("inspect")
    .description("decode a certificate or CRL (PEM or DER, ours or anyone's): fields, the four items in Japanese, profile deviations")
    .argument("<file>", "certificate or CRL file")
    .option("--max-entries <n>", "CRL entries to list (default 20; 0 for none)", "20")
    .addHelpText("after", `\nExamples:\n  jpki inspect .jpki/ca/13-sig.pem\n  jpki inspect cert.pem --json | jq .fourItems\n  jpki inspect .jpki/crl/13-sig.crl --max-entries 100`)
    .action(async (file: string, o: { maxEntries: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const [{ describeCertificate, describeCrl, detectAndDecode }, { formatCertificate, formatCrl }] = await Promise.all([inspectLibrary(), import("../inspect-format.js")]);
      const path = checkInputFile(file, "input file", { cwd: io.cwd });
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch (e) {
        throw new JpkiError("ERR_FILE_UNUSABLE", `input file ${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? "error"})`, { cause: e });
      }
      const maxEntries = Number(o.maxEntries);
      if (!Number.isInteger(maxEntries) || maxEntries < 0) throw new JpkiError("ERR_USAGE", "--max-entries must be a whole number ≥ 0");
      const { kind, der } = detectAndDecode(bytes);
      if (kind === "certificate") {
        const d = describeCertificate(der);
        ctx.out.result(d, () => formatCertificate(d));
      } else {
        const d = describeCrl(der, { maxEntries });
        ctx.out.result(d, () => formatCrl(d));
      }
    });
}
