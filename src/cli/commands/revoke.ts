/** `jpki revoke`: manual revocation by serial, or of everything one CA key issued (--ca --all). */
import { Command } from "commander";
import { JpkiError } from "../../errors.js";
import { REVOCATION_CAUSES, library } from "../lib.js";
import { Context, withWorkspace } from "../context.js";
import { commandExitCodes } from "../exit-codes.js";
import { caNamed, type Io } from "../output.js";

export function makeRevokeCommand(io: Io): Command {
  const causes = Object.entries(REVOCATION_CAUSES)
    .map(([k, v]) => `  ${k.padEnd(17)} → ${v.reason.padEnd(20)} ${v.label}`)
    .join("\n");
  return new Command("revoke")
    .description("revoke a certificate (resident request, loss, key compromise …), or every certificate a CA key issued (--ca --all); the next CRL lists them")
    .option("-s, --serial <hex>", "serial number as printed by 'jpki issue'")
    .option("--ca <id>", "with --all: the CA (key generation) whose certificates to revoke, e.g. 13-sig")
    .option("--all", "with --ca: revoke every unexpired, unrevoked certificate that CA issued (its key compromised)")
    .requiredOption("-R, --reason <reason>", "a cause below, or an RFC 5280 reason name")
    .addHelpText(
      "after",
      `
Causes and the CRL reason each gets:
${causes}

--ca CA --all, the day a CA key is suspected compromised (鍵危殆化): revokes every certificate of that CA
that is neither revoked nor expired, one by one (progress on stderr), and marks the CA for a new CRL. A re-run
revokes only what is left (0 once done). The reason is never assumed: give it (usually ca-compromise). Roll the
CA over first ('jpki ca rollover --compromised') so residents can be issued new certificates.

${commandExitCodes({
  ok: "done (--ca --all: also when nothing was left to revoke)",
  errors: [
    ["ERR_USAGE", "--serial together with --ca/--all, --ca without --all, or a serial that is not hex"],
    ["ERR_REASON_UNKNOWN", "not a cause or reason listed above"],
    ["ERR_CA_UNKNOWN", "--ca names no CA of the workspace"],
    ["ERR_CERT_UNKNOWN", "no certificate with that serial"],
    ["ERR_CERT_ALREADY_REVOKED", "the certificate is already revoked"],
  ],
})}

Examples:
  jpki revoke --serial 5f3a…c1 --reason loss && jpki crl generate --prefecture 13
  jpki revoke --ca 13-sig --all --reason ca-compromise --json && jpki crl generate --ca 13-sig`,
    )
    .action(async (o: { serial?: string; ca?: string; all?: boolean; reason: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      if (o.serial !== undefined && (o.ca !== undefined || o.all)) throw new JpkiError("ERR_USAGE", "give either --serial or --ca with --all, not both");
      if ((o.ca !== undefined) !== (o.all === true)) {
        throw new JpkiError("ERR_USAGE", o.all ? "--all needs --ca: name the CA whose certificates to revoke, e.g. --ca 13-sig" : "--ca needs --all (to revoke one certificate, give --serial)");
      }
      if (o.serial === undefined && o.ca === undefined) throw new JpkiError("ERR_USAGE", "give --serial, or --ca with --all");
      const { reasonName, revokeAllIssuedBy, revokeCertificate } = await library();
      await withWorkspace(ctx, async (ws) => {
        if (o.ca !== undefined) {
          const r = await revokeAllIssuedBy(ws.store, o.ca, { reason: o.reason, at: ws.clock.now(), onProgress: (n) => ctx.out.progress(`revoked ${n} certificates of ${o.ca}`) });
          ctx.out.progressDone();
          ctx.out.result(
            { ...caNamed(r.caId), revoked: r.revoked, expired: r.expired, alreadyRevoked: r.alreadyRevoked },
            `revoked ${r.revoked} certificates of CA ${r.caId}${r.expired ? ` (${r.expired} expired ones left alone)` : ""}` +
              (r.revoked ? `\nCA ${r.caId} is marked for a new CRL: 'jpki watch' publishes it within its --crl-interval, or run 'jpki crl generate --ca ${r.caId}' now` : ""),
          );
          return;
        }
        const row = await revokeCertificate(ws.store, { serial: o.serial!, reason: o.reason, at: ws.clock.now() });
        const rev = row.revocation!;
        const data = { serial: row.serial, ...caNamed(row.caId), revokedAt: rev.revokedAt.toISOString(), reason: reasonName(rev.reason), reasonCode: rev.reason, source: rev.source };
        ctx.out.result(data, `revoked ${row.serial} (CA ${row.caId}) at ${data.revokedAt}, reason ${data.reason} (${rev.reason})\nCA ${row.caId} is marked for a new CRL: 'jpki watch' publishes it within its --crl-interval, or run 'jpki crl generate --ca ${row.caId}' now`);
      });
    });
}
