/**
 * `jpki card serve --vpcd [HOST:PORT] --card FILE`: puts an emulated card into pcscd's virtual reader
 * (vsmartcard's vpcd), so OpenSC and every other PC/SC program use it like a card in a reader. A thin shell over
 * serveVpcd (card/vpcd.ts). Kept apart from the other `jpki card` verbs: one function adds it to the group.
 */
import { Command } from "commander";
import { JpkiError, checkInputFile } from "../lib.js";
import { Context, withStopSignal } from "../context.js";
import type { Io } from "../output.js";

const DEFAULT_VPCD = "127.0.0.1:35963";

/** HOST:PORT, [v6]:PORT, a bare PORT (then on this machine) or a bare HOST (then on vpcd's port 35963). */
export function parseVpcdAddress(s: string | true): { host: string; port: number } {
  const text = s === true ? DEFAULT_VPCD : s;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (m) {
    const port = Number(m[3]);
    if (port >= 1 && port <= 65535) return { host: m[1] ?? m[2]!, port };
  } else if (/^\d{1,5}$/.test(text)) {
    const port = Number(text);
    if (port >= 1 && port <= 65535) return { host: "127.0.0.1", port };
  } else if (/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)$/.test(text)) {
    return { host: text.replace(/^\[|\]$/g, ""), port: 35963 };
  }
  throw new JpkiError("ERR_USAGE", `--vpcd ${text}: give host:port, [ipv6]:port, a port or a host (default ${DEFAULT_VPCD})`);
}

interface ServeOpts {
  vpcd?: string | true;
  card?: string;
}

/** Adds `serve` to the `jpki card` group. */
export function addCardServeCommand(card: Command, io: Io): Command {
  return card
    .command("serve")
    .description("connect a card to pcscd's virtual reader (vsmartcard vpcd), for OpenSC and other PC/SC middleware")
    .option("--vpcd [host:port]", `vpcd's address: where pcscd's vpcd reader waits for the card (default ${DEFAULT_VPCD})`)
    .option("--card <file>", "the card's state file (made by 'jpki card issue')")
    .addHelpText(
      "after",
      `
The card connects to vpcd as a TCP client and stays until SIGINT or SIGTERM. While pcscd (or its vpcd reader)
is not up it retries, backing off to one attempt every 5 s; when pcscd restarts the card is "removed" (its
session — verified PINs, selected files — is gone) and inserted again. PIN counters and keys live in the card
file as always, encrypted under the chip secret ($JPKI_CARD_CHIP_KEY_FILE, else
$XDG_CONFIG_HOME/jpki/card-chip.key). Nothing that passes through is logged: a VERIFY carries a PIN.

vpcd comes with Debian's vsmartcard-vpcd package (/etc/reader.conf.d/vpcd: port 35963, and a second slot on
35964). OpenSC's JPKI driver then sees the card: opensc-tool -n, pkcs15-tool -D,
pkcs11-tool --module /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so -L. Expect seconds per OpenSC command with
Debian 12's vpcd: it sends each message in two pieces, and TCP's Nagle and delayed-ACK rules then hold every
APDU ~40 ms (vsmartcard fixed this upstream in 2023).

Examples:
  jpki card serve --vpcd --card alice.card
  jpki card serve --vpcd 192.0.2.7:35963 --card alice.card`,
    )
    .action(async (o: ServeOpts, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      if (o.vpcd === undefined) throw new JpkiError("ERR_USAGE", "jpki card serve needs a transport: --vpcd [host:port]");
      if (!o.card) throw new JpkiError("ERR_USAGE", "jpki card serve needs --card FILE");
      const { host, port } = parseVpcdAddress(o.vpcd);
      const cardFile = checkInputFile(o.card, "card file --card", { cwd: io.cwd });
      const [{ EmulatedCard }, { fileCardStorage, defaultChipKeyFile }, { serveVpcd }] = await Promise.all([
        import("../../card/card.js"),
        import("../../card/card-state.js"),
        import("../../card/vpcd.js"),
      ]);
      // The chip secret that decrypts card files: $JPKI_CARD_CHIP_KEY_FILE, else the installation's default.
      const card = EmulatedCard.open(fileCardStorage(cardFile, { chipKeyFile: defaultChipKeyFile(io.env) }), {
        onMute: (why) => ctx.out.info(`the card stopped answering (${why}): every command now gets 6F 00; mend the cause (${cardFile} in place — not removed or moved away — it and its directory writable, the disk not full) and restart jpki card serve`),
      });
      const { cardId } = card.info();
      ctx.out.result({ card: cardId, vpcd: { host, port } }, `card ${cardId} serving vpcd at ${host}:${port} (SIGINT or SIGTERM stops)`);
      let waitingSaid = false;
      await withStopSignal("card serve", (signal) =>
        serveVpcd({
          terminal: card,
          host,
          port,
          signal,
          onEvent: (e) => {
            // One line per change of state, not one per retry.
            if (e.type === "waiting") {
              if (!waitingSaid) ctx.out.info(`vpcd at ${host}:${port} not reachable (${e.reason}); retrying`);
              waitingSaid = true;
            } else if (e.type === "connected") {
              waitingSaid = false;
              ctx.out.info(`card inserted: connected to vpcd at ${host}:${port}`);
            } else {
              ctx.out.info(`card removed: vpcd at ${host}:${port} closed the connection after ${e.frames} messages`);
            }
          },
        }),
      );
      ctx.out.info("card serve stopped");
    });
}
