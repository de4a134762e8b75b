/** `jpki crl generate`: build and publish CRLs for prefecture CAs. */
import { Command, Option } from "commander";
import type { CertificateType } from "../../index.js";
import { JpkiError, crlLibrary } from "../lib.js";
import { Context, withWorkspace } from "../context.js";
import type { Io } from "../output.js";

export function makeCrlCommand(io: Io): Command {
  const crl = new Command("crl").description("certificate revocation lists (失効リスト)");
  crl.command("generate")
    .description("build a v2 CRL per CA (CRL number increasing, AKI, reason codes) and write it atomically to the workspace")
    .option("-p, --prefecture <codes>", "prefecture codes: 13, 13,27, 01-47 or all")
    .option("--ca <id>", "one CA id such as 13-sig")
    .addOption(new Option("--purpose <purpose>", "with --prefecture: which CAs").choices(["signature", "authentication", "both"]).default("both"))
    .addHelpText("after", `\nExamples:\n  jpki crl generate --prefecture 13\n  jpki crl generate --ca 13-sig --json\n  openssl crl -inform DER -in .jpki/crl/13-sig.crl -noout -text`)
    .action(async (o: { prefecture?: string; ca?: string; purpose: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const { generateCrls } = await crlLibrary();
      if (!o.prefecture === !o.ca) throw new JpkiError("ERR_USAGE", "say which CRLs: --prefecture CODES or --ca ID");
      const passphrase = await ctx.passphrase();
      await withWorkspace(ctx, async (ws) => {
        const purposes: CertificateType[] = o.purpose === "both" ? ["signature", "authentication"] : [o.purpose as CertificateType];
        const results = await generateCrls(ws, { ...(o.ca ? { ca: o.ca } : { prefecture: o.prefecture! }), purposes, passphrase });
        ctx.out.result(
          { crls: results.map((r) => ({ ...r, number: r.number.toString(), thisUpdate: r.thisUpdate.toISOString(), nextUpdate: r.nextUpdate.toISOString() })) },
          () =>
            results
              .map((r) =>
                r.superseded
                  ? `CRL ${r.caId} #${r.number}: not installed, a higher number was published meanwhile (by another jpki process)`
                  : `CRL ${r.caId} #${r.number}: ${r.entries} entries, next update ${r.nextUpdate.toISOString()}\n  ${r.derPath} (DER)${r.pemPath ? `\n  ${r.pemPath} (PEM)` : ""}`,
              )
              .join("\n"),
        );
      });
    });
  return crl;
}
