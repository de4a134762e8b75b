/** `jpki inspect FILE`: decode any certificate or CRL and list its deviations from the JPKI profile. */
import { Command } from "commander";
import { JpkiError, checkInputFile, inspectLibrary } from "../lib.js";
import { Context } from "../context.js";
import type { Io } from "../output.js";

export function makeInspectCommand(io: Io): Command {
  return new Command("inspect")
    .description("decode a certificate or CRL (PEM or DER, ours or anyone's): fields, the four items in Japanese, profile deviations")
    .argument("<file>", "certificate or CRL file")
    .option("--max-entries <n>", "CRL entries to list: a number or all (default 20 in text, all with --json; 0 for none)")
    .option("--summary", "CRL: the header, counts per reason and the first and last entries instead of a list")
    .addHelpText(
      "after",
      `\nA CRL is read from the file as it is written out, so its size does not matter (a million entries take about as long as openssl crl -text); with --json its entries stream as one JSON document.\n\nExamples:\n  jpki inspect .jpki/ca/13-sig.pem\n  jpki inspect cert.pem --json | jq .fourItems\n  jpki inspect .jpki/crl/13-sig.crl --max-entries 100\n  jpki inspect .jpki/crl/13-sig.crl --summary\n  jpki inspect .jpki/crl/13-sig.crl --json | jq '.entries | length'`,
    )
    .action(async (file: string, o: { maxEntries?: string; summary?: boolean }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const [{ describeCertificate, openForInspection }, { formatCertificate, writeCrl }] = await Promise.all([inspectLibrary(), import("../inspect-format.js")]);
      const path = checkInputFile(file, "input file", { cwd: io.cwd });
      if (o.summary && o.maxEntries !== undefined) throw new JpkiError("ERR_USAGE", "--summary lists no entries: drop --max-entries");
      // Digits only: Number() would read "" as 0, "1e3" as 1000 and "0x10" as 16.
      if (o.maxEntries !== undefined && o.maxEntries !== "all" && !/^\d{1,15}$/.test(o.maxEntries)) throw new JpkiError("ERR_USAGE", "--max-entries must be a whole number ≥ 0 or all");
      const maxEntries = o.maxEntries === undefined ? (ctx.out.json ? Infinity : 20) : o.maxEntries === "all" ? Infinity : Number(o.maxEntries);
      const input = openForInspection(path, `input file ${file}`);
      if (input.kind === "certificate") {
        const d = describeCertificate(input.der);
        ctx.out.result(d, () => formatCertificate(d));
        return;
      }
      try {
        await writeCrl(input.crl, { json: ctx.out.json, summary: Boolean(o.summary), maxEntries }, io.stdout);
      } finally {
        input.crl.close();
      }
    });
}
