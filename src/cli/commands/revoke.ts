/** `jpki revoke`: manual revocation by serial. */
import { Command } from "commander";
import { REVOCATION_CAUSES, library } from "../lib.js";
import { Context, withWorkspace } from "../context.js";
import type { Io } from "../output.js";

export function makeRevokeCommand(io: Io): Command {
  const causes = Object.entries(REVOCATION_CAUSES)
    .map(([k, v]) => `  ${k.padEnd(17)} → ${v.reason.padEnd(20)} ${v.label}`)
    .join("\n");
  return new Command("revoke")
    .description("revoke a certificate (resident request, loss, key compromise …); the next CRL lists it")
    .requiredOption("-s, --serial <hex>", "serial number as printed by 'jpki issue'")
    .requiredOption("-R, --reason <reason>", "a cause below, or an RFC 5280 reason name")
    .addHelpText("after", `\nCauses and the CRL reason each gets:\n${causes}\n\nExample:\n  jpki revoke --serial 5f3a…c1 --reason loss && jpki crl generate --prefecture 13`)
    .action(async (o: { serial: string; reason: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const { reasonName, revokeCertificate } = await library();
      await withWorkspace(ctx, async (ws) => {
        const row = await revokeCertificate(ws.store, { serial: o.serial, reason: o.reason, at: ws.clock.now() });
        const rev = row.revocation!;
        const data = { serial: row.serial, ca: row.caId, revokedAt: rev.revokedAt.toISOString(), reason: reasonName(rev.reason), reasonCode: rev.reason, source: rev.source };
        ctx.out.result(data, `revoked ${row.serial} (CA ${row.caId}) at ${data.revokedAt}, reason ${data.reason} (${rev.reason})\nCA ${row.caId} is marked for a new CRL: 'jpki watch' publishes it within its --crl-interval, or run 'jpki crl generate --ca ${row.caId}' now`);
      });
    });
}
