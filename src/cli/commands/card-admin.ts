/**
 * `jpki card info` and `jpki card unblock`: the emulated IC card (住基カード) at the municipal counter (市町村窓口).
 * `info` shows what the card tells anyone (label, certificates present, tries left); `unblock` resets a blocked
 * PIN with the municipality's administrative key. Secrets (the administrative key, a new PIN) come from the environment or
 * stdin, never the command line, where `ps` would show them.
 */
import { Command } from "commander";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Workspace } from "../../index.js";
import { JpkiError, isJpkiError } from "../lib.js";
import { Context, withWorkspace } from "../context.js";
import type { Io } from "../output.js";
import { adminKeyFrom, CARD_ENV_HELP, openCardFile, readAdminKeyFile, stdinLines } from "../card-secrets.js";

export function makeCardInfoCommand(io: Io): Command {
  return new Command("info")
    .description("what the card shows without a PIN: card id, token label, certificates and keys present, tries left per PIN")
    .requiredOption("--card <file>", "the card's state file")
    .addHelpText(
      "after",
      `${CARD_ENV_HELP}

Examples:
  jpki card info --card cards/card-0001.card
  jpki --json card info --card cards/card-0001.card`,
    )
    .action(async (o: { card: string }, c: Command) => {
      const ctx = Context.of(io, c);
      const info = (await openCardFile(io, o.card)).info();
      const present = (rec: Readonly<Record<string, boolean>>) => Object.entries(rec).filter(([, v]) => v).map(([k]) => k).join(", ") || "none";
      ctx.out.result(info, () =>
        [
          `card ${info.cardId}  token ${info.tokenLabel}`,
          `certificates: ${present(info.certificates)}`,
          `keys: ${present(info.keys)}`,
          `tries left: ${Object.entries(info.triesLeft).map(([k, v]) => `${k} ${v === undefined ? "not set" : v === 0 ? "0 (blocked)" : v}`).join(", ")}`,
        ].join("\n"),
      );
    });
}

/**
 * Whether `card unblock` runs with a workspace: one named (--workspace, $JPKI_HOME: it must exist), else the
 * default one when it is there — as `jpki verify` finds its trust.
 */
function counterWorkspace(ctx: Context): boolean {
  if (ctx.opts.workspace !== undefined || ctx.io.env.JPKI_HOME) return true;
  return existsSync(join(ctx.workspaceDir, "config.json"));
}

export function makeCardUnblockCommand(io: Io): Command {
  return new Command("unblock")
    .description("set a new PIN with a full retry counter, with the municipality's administrative key (a blocked PIN is reset only at the counter)")
    .requiredOption("--card <file>", "the card's state file")
    .requiredOption("--pin <which>", "signature | authentication | library")
    .option("--admin-key-file <file>", "the municipality's administrative key (hex or raw; else JPKI_CARD_ADMIN_KEY_FILE, JPKI_CARD_ADMIN_KEY, stdin)")
    .addHelpText(
      "after",
      `
Secrets, never on the command line:
  the administrative key   --admin-key-file FILE, else $JPKI_CARD_ADMIN_KEY_FILE, else $JPKI_CARD_ADMIN_KEY (hex),
                           else the first line of stdin ('jpki card issue' made <workspace>/counter-admin.key)
  the new PIN              $JPKI_CARD_NEW_PIN, else the next line of stdin
PIN rules: signature 6–16 of A–Z and 0–9; authentication and library 4 digits.
Run with a workspace (--workspace, $JPKI_HOME, or ./.jpki when it exists) the reset is recorded in its audit log
('card.unblock': the card id and which PIN, never a secret); without one nothing is recorded.
${CARD_ENV_HELP}

Examples:
  printf '%s\\n%s\\n' "$ADMIN_KEY_HEX" 1234 | jpki card unblock --card cards/card-0001.card --pin authentication`,
    )
    .action(async (o: { card: string; pin: string; adminKeyFile?: string }, c: Command) => {
      const ctx = Context.of(io, c);
      if (!["signature", "authentication", "library"].includes(o.pin)) {
        // Not quoted: someone who typed the PIN itself here would find it copied into the error (and the logs).
        throw new JpkiError("ERR_USAGE", "--pin names which PIN to reset: signature, authentication or library (the new PIN itself comes from $JPKI_CARD_NEW_PIN or stdin)");
      }
      const target = await openCardFile(io, o.card);
      const keyFile = o.adminKeyFile ?? io.env.JPKI_CARD_ADMIN_KEY_FILE;
      const keyFromFile = keyFile !== undefined ? await readAdminKeyFile(keyFile, false) : undefined;
      const needStdin = (!keyFromFile && !io.env.JPKI_CARD_ADMIN_KEY) || !io.env.JPKI_CARD_NEW_PIN;
      const lines = needStdin ? await stdinLines(io, "jpki card unblock") : [];
      let adminKey = keyFromFile;
      if (!adminKey) {
        const adminHex = (io.env.JPKI_CARD_ADMIN_KEY ?? lines.shift() ?? "").trim();
        if (!/^([0-9a-fA-F]{2}){16,}$/.test(adminHex)) throw new JpkiError("ERR_USAGE", "the administrative key is hex, at least 16 bytes (--admin-key-file, $JPKI_CARD_ADMIN_KEY or the first line of stdin)");
        adminKey = adminKeyFrom(Buffer.from(adminHex), "the administrative key given");
      }
      const newPin = (io.env.JPKI_CARD_NEW_PIN ?? lines.shift() ?? "").trim();
      if (!newPin) throw new JpkiError("ERR_USAGE", "no new PIN ($JPKI_CARD_NEW_PIN or the next line of stdin)");
      const pin = o.pin as "signature";
      const unblock = async (ws?: Workspace) => {
        target.unblockPin(adminKey, pin, newPin);
        const info = target.info();
        if (ws) {
          // Which card, which PIN, the tries it now has: never the PIN or the key. After the card changed (a refused
          // key records nothing but its auth.failure), so a failure here leaves a reset PIN unrecorded: said so.
          await ws.store.appendAudit({ action: "card.unblock", subject: info.cardId, detail: { pin, triesLeft: info.triesLeft[pin] ?? null } }).catch((e: unknown) => {
            throw new JpkiError(isJpkiError(e) ? e.code : "ERR_STORE", `the ${pin} PIN of card ${info.cardId} was reset, but the workspace's audit log could not record it: ${(e as Error).message}`, { cause: e });
          });
        }
        ctx.out.result({ cardId: info.cardId, pin: o.pin, triesLeft: info.triesLeft[pin] }, `card ${info.cardId}: the ${o.pin} PIN is set, ${info.triesLeft[pin]} tries`);
      };
      // The card is the resident's, the unblock the counter's act: a counter that has a workspace records it in
      // that workspace's audit log (and a wrong administrative key as an auth.failure, withWorkspace). Without one
      // (a card tool beside no CA) there is no log to write to, as before.
      if (counterWorkspace(ctx)) await withWorkspace(ctx, unblock);
      else await unblock();
    });
}
