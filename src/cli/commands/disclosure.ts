/**
 * `jpki disclosure --resident CODE`: who checked a resident's certificates through the validation API
 * (`POST /v1/validate` on jpki serve) or a liveness check (`POST /v1/status`), and when — the resident's right to know, as the registry network grants it.
 * Shows the verifier's name and kind, purpose and legal basis, the time, the answer given and whether the
 * resident's current four items went with it. The items themselves are never shown here (nor stored in the log).
 */
import { Command } from "commander";
import { JpkiError, library } from "../lib.js";
import { Context, withWorkspace } from "../context.js";
import type { Io } from "../output.js";

export function makeDisclosureCommand(io: Io): Command {
  return new Command("disclosure")
    .description("who checked a resident's certificates through 'jpki serve' POST /v1/validate or POST /v1/status, and when (the resident's right to know)")
    .requiredOption("--resident <code>", "the resident code (住民票コード), 11 digits")
    .option("--limit <n>", "at most this many records: the newest, listed oldest first (1–100000)", "1000")
    .addHelpText(
      "after",
      `
Each line: when, the verifier (name, kind: government 行政機関 / private 民間認証事業者), the certificate
(serial, CA), the purpose and legal basis named, the answer given, and whether the resident's current four
items were disclosed (government bodies with a legal basis of the Basic Resident Registration Act's tables).
The newest --limit records are listed (oldest of them first); when older ones exist a first line says so
(--json: "truncated": true). A batch of liveness checks naming one certificate many times is one record.
A code the registry has changed (住民票コード変更) lists the checks under the new code too, and says so
(--json: "codeChangedTo").
Nobody having checked is a success (exit 0); an invalid resident code exits 7 (ERR_RESIDENT_CODE_INVALID).

Examples:
  jpki disclosure --resident 12345678903
  jpki --json disclosure --resident 12345678903`,
    )
    .action(async (o: { resident: string; limit: string }, c: Command) => {
      const ctx = Context.of(io, c);
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new JpkiError("ERR_USAGE", `--limit must be a whole number from 1 to 100000, not ${JSON.stringify(o.limit)}`);
      const { disclosuresOf } = await library();
      await withWorkspace(ctx, async (ws) => {
        const listing = await disclosuresOf(ws, o.resident, { limit });
        const entries = listing.entries.map((e) => ({
          at: e.at.toISOString(),
          verifier: { id: e.verifierId, name: e.verifierName ?? null, kind: e.verifierKind ?? null },
          certificate: { serial: e.serial, issuer: e.issuer },
          purpose: e.purpose,
          legalBasis: e.legalBasis ?? null,
          ...(e.legalBasisJa ? { legalBasisJa: e.legalBasisJa } : {}),
          validationTime: e.validationTime.toISOString(),
          answer: e.answer,
          itemsDisclosed: e.itemsDisclosed,
        }));
        const older = listing.truncated ? `older checks are not shown: these are the newest ${limit} (--limit shows more)\n` : "";
        const changed = listing.codeChangedTo ? `resident code ${o.resident} was changed to ${listing.codeChangedTo} (住民票コード変更): the checks under both are listed\n` : "";
        ctx.out.result({ resident: o.resident, ...(listing.codeChangedTo ? { codeChangedTo: listing.codeChangedTo } : {}), disclosures: entries, truncated: listing.truncated }, () =>
          changed + (entries.length
            ? older + entries
                .map(
                  (e) =>
                    `${e.at}  ${e.verifier.name ?? e.verifier.id} (${e.verifier.kind ?? "unregistered"})  ${e.purpose} ${e.certificate.issuer} ${e.certificate.serial}  ` +
                    `${e.legalBasis ? `legal basis ${e.legalBasis} (${e.legalBasisJa ?? "?"})  ` : ""}answer ${e.answer}${e.itemsDisclosed ? "  four items disclosed" : ""}`,
                )
                .join("\n")
            : `nobody has checked the certificates of resident ${o.resident} through the validation API or a liveness check`),
        );
      });
    });
}
