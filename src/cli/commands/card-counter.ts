/**
 * `jpki card issue | renew | sign`: the card at the municipal counter (市町村窓口) and in the resident's hands. A thin
 * shell over counter/card-issuance.ts and card/client.ts: PINs come from standard input or the environment, never
 * from the command line (argv is visible to every user of the machine), and never appear in output or errors.
 */
import { existsSync, readFileSync } from "node:fs";
import { Command, Option } from "commander";
import type { IssuedCertificate } from "../../index.js";
import { JpkiError, checkInputFile, checkNewOutputFile, checkOutputFile, envPinValue, library } from "../lib.js";
import { Context, withWorkspace } from "../context.js";
import { caNamed, type Io } from "../output.js";
import { CARD_ENV_HELP, openCardFile, readAdminKeyFile, stdinLines } from "../card-secrets.js";

interface CardOptions {
  card: string;
  resident?: string;
  cardId?: string;
  adminKeyFile?: string;
  counter?: string;
  pinsStdin?: boolean;
  type?: "signature" | "authentication";
}

function certSummary(c: IssuedCertificate) {
  return { serial: c.serial, ...caNamed(c.caId), type: c.type, notAfter: c.notAfter.toISOString(), superseded: c.superseded, alreadyIssued: c.alreadyIssued };
}

async function issuePins(ctx: Context, o: CardOptions): Promise<{ signaturePin: string; authenticationPin: string }> {
  if (o.pinsStdin) {
    const [signaturePin = "", authenticationPin = ""] = await stdinLines(ctx.io, "--pins-stdin");
    return { signaturePin, authenticationPin };
  }
  const env = ctx.io.env;
  // One final line break dropped, as --pins-stdin's lines and JPKI_PKCS11_PIN lose theirs: a variable set from a
  // file with its newline was refused as a PIN of the wrong form (ERR_CARD_PIN_FORMAT), which it was not.
  const signaturePin = env.JPKI_CARD_SIGNATURE_PIN && envPinValue(env.JPKI_CARD_SIGNATURE_PIN);
  const authenticationPin = env.JPKI_CARD_AUTH_PIN && envPinValue(env.JPKI_CARD_AUTH_PIN);
  if (!signaturePin || !authenticationPin) {
    throw new JpkiError("ERR_USAGE", "the resident chooses two PINs: pipe them with --pins-stdin (signature PIN on the first line, authentication PIN on the second) or set JPKI_CARD_SIGNATURE_PIN and JPKI_CARD_AUTH_PIN");
  }
  return { signaturePin, authenticationPin };
}

export function makeCardIssueCommand(io: Io): Command {
  return new Command("issue")
    .description("make a card for a resident at the counter: keys generated on the card, both certificates issued and written to it")
    .requiredOption("--card <file>", "the card's state file to create (the resident's 住基カード)")
    .requiredOption("-r, --resident <code>", "resident code (住民票コード, 11 digits)")
    .option("--card-id <id>", "the card's serial (default: random for a new card; a resumed card keeps its own)")
    .option("--admin-key-file <file>", "the municipality's administrative key (default: JPKI_CARD_ADMIN_KEY_FILE, else counter-admin.key in the workspace, made on first use)")
    .option("--counter <id>", "municipal counter id, up to 9 letters/digits (default: municipality code + 000)")
    .option("--pins-stdin", "read the signature PIN (6–16 of A–Z, 0–9) and the authentication PIN (4 digits) from standard input, one per line")
    .addHelpText(
      "after",
      `
Without --pins-stdin the PINs come from JPKI_CARD_SIGNATURE_PIN and JPKI_CARD_AUTH_PIN (one final line break
dropped); never from the command line.
The card's state file is encrypted under this installation's chip secret (JPKI_CARD_CHIP_KEY_FILE, default
$XDG_CONFIG_HOME/jpki/card-chip.key): copying the card file alone copies no usable key. Run the same command again
after an interruption and it finishes the card without issuing anything twice (the card keeps the PINs set by the
first run; the counter changes them with 'jpki card unblock'). It finishes a card only for the resident it was
begun for (its keys were made under that person's PINs); another resident code is refused (exit 2). A new card
that could not get its certificates (a wrong CA passphrase, an unknown or deceased resident) is refused before the
card file or the administrative key is made.

Example:
  printf 'ABC123\\n1234\\n' | jpki card issue --resident 12345678903 --card alice.card --pins-stdin
${CARD_ENV_HELP}`,
    )
    .action(async (o: CardOptions, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const cardPath = checkOutputFile(o.card, "card file --card", { cwd: io.cwd });
      const pins = await issuePins(ctx, o);
      const passphrase = await ctx.caPassphrase();
      const lib = await library();
      await withWorkspace(ctx, async (ws) => {
        const issuance = new lib.IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase });
        // A new card is refused (a wrong passphrase, a resident no certificate can be issued to) before anything is
        // made: the workspace's first administrative key too (issueCard checks again before it makes the card).
        if (!existsSync(cardPath)) await lib.checkCardIssuable(issuance, { residentCode: o.resident!, counterId: o.counter || undefined });
        const adminKey = await readAdminKeyFile(o.adminKeyFile ?? io.env.JPKI_CARD_ADMIN_KEY_FILE ?? ws.paths.counterAdminKey, o.adminKeyFile === undefined && io.env.JPKI_CARD_ADMIN_KEY_FILE === undefined);
        const r = await lib.issueCard({
          issuance,
          store: ws.store,
          adminKey,
          storage: lib.fileCardStorage(cardPath, { chipKeyFile: lib.defaultChipKeyFile(io.env), createChipKey: true }),
          ...(o.cardId !== undefined ? { cardId: o.cardId } : {}),
          residentCode: o.resident!,
          ...pins,
          ...(o.counter ? { counterId: o.counter } : {}),
        });
        ctx.out.result({ card: cardPath, cardId: r.cardId, resumed: r.resumed, alreadyComplete: r.alreadyComplete, signature: certSummary(r.signature), authentication: certSummary(r.authentication) }, () =>
          [
            r.alreadyComplete
              ? `card ${r.cardId} in ${cardPath} already held both certificates: nothing was issued`
              : `card ${r.cardId} written to ${cardPath}${r.resumed ? " (an interrupted issuance finished: the PINs are those set by the first run)" : ""}`,
            `signature certificate      serial ${r.signature.serial}  CA ${r.signature.caId}  valid until ${r.signature.notAfter.toISOString()}`,
            `authentication certificate serial ${r.authentication.serial}  CA ${r.authentication.caId}  valid until ${r.authentication.notAfter.toISOString()}`,
          ].join("\n"),
        );
      });
    });
}

export function makeCardRenewCommand(io: Io): Command {
  return new Command("renew")
    .description("a new key pair on the card and a new certificate for it (after a move or a name change revoked the signature certificate)")
    .requiredOption("--card <file>", "the resident's card file")
    .requiredOption("-r, --resident <code>", "resident code (住民票コード, 11 digits)")
    .addOption(new Option("-t, --type <type>", "which certificate").choices(["signature", "authentication"]).default("signature"))
    .option("--admin-key-file <file>", "the municipality's administrative key (default: JPKI_CARD_ADMIN_KEY_FILE, else counter-admin.key in the workspace)")
    .option("--counter <id>", "municipal counter id, up to 9 letters/digits (default: municipality code + 000)")
    .addHelpText("after", `\nThe four items certified are the registry's as they stand now. The old certificate of that type, if still good, is\nrevoked as superseded.\n\nExample:\n  jpki counter relocate --resident 12345678903 --address - < new-address.txt && jpki card renew --resident 12345678903 --card alice.card`)
    .action(async (o: CardOptions, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const cardPath = checkInputFile(o.card, "card file --card", { cwd: io.cwd });
      const passphrase = await ctx.caPassphrase();
      const lib = await library();
      await withWorkspace(ctx, async (ws) => {
        const adminKey = await readAdminKeyFile(o.adminKeyFile ?? io.env.JPKI_CARD_ADMIN_KEY_FILE ?? ws.paths.counterAdminKey, false);
        const card = await openCardFile(io, cardPath);
        const issuance = new lib.IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase });
        const c = await lib.renewCardCertificate({ card, issuance, store: ws.store, adminKey, residentCode: o.resident!, type: o.type ?? "signature", ...(o.counter ? { counterId: o.counter } : {}) });
        ctx.out.result({ card: cardPath, cardId: card.info().cardId, certificate: certSummary(c) }, () =>
          [
            `card ${card.info().cardId}: new ${c.type} certificate serial ${c.serial}  CA ${c.caId}  valid until ${c.notAfter.toISOString()}`,
            ...(c.superseded.length ? [`superseded (revoked, reason superseded): ${c.superseded.join(", ")}`] : []),
          ].join("\n"),
        );
      });
    });
}

interface SignOptions {
  card: string;
  pinStdin?: boolean;
  out?: string;
  pem?: boolean;
  force?: boolean;
}

export function makeCardSignCommand(io: Io): Command {
  return new Command("sign")
    .description("sign a file with the card's signature key (署名用電子証明書): a CMS SignedData with the file inside")
    .argument("<file>", "the document to sign")
    .requiredOption("--card <file>", "the resident's card file")
    .option("--pin-stdin", "read the signature PIN from standard input (else JPKI_CARD_SIGNATURE_PIN)")
    .option("-o, --out <file>", "where the signature goes (default: <file>.p7s)")
    .option("--pem", "write PEM instead of DER")
    .option("--force", "replace the output file if it exists (without it, an existing file is never replaced)")
    .addHelpText(
      "after",
      `
The card verifies the PIN and signs; the private key never leaves it. A wrong PIN uses up a try (5 for the signature
PIN); a blocked PIN is unblocked at the counter ('jpki card unblock'). An existing output file is refused
(ERR_OUTPUT_EXISTS, exit 2) before the PIN is asked of the card, unless --force.

Example (writes doc.txt.p7s):
  printf 'ABC123\\n' | jpki card sign doc.txt --card alice.card --pin-stdin

Check the signature with OpenSSL (the CA certificate is on the card, EF 0002, and in the workspace):
  openssl cms -verify -inform DER -in doc.txt.p7s -CAfile sig-ca.pem -purpose any -out /dev/null`,
    )
    .action(async (file: string, o: SignOptions, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const input = checkInputFile(file, "document", { cwd: io.cwd });
      const cardPath = checkInputFile(o.card, "card file --card", { cwd: io.cwd });
      // A signature made before (the one sent with an application, say) is not replaced unasked, as 'issue -o' does.
      const out = (o.force ? checkOutputFile : checkNewOutputFile)(o.out ?? `${input}.p7s`, "output file -o", { cwd: io.cwd });
      const envPin = io.env.JPKI_CARD_SIGNATURE_PIN;
      const pin = o.pinStdin ? ((await stdinLines(io, "--pin-stdin"))[0] ?? "") : envPin && envPinValue(envPin);
      if (!pin) throw new JpkiError("ERR_USAGE", "the signature PIN: pipe it with --pin-stdin or set JPKI_CARD_SIGNATURE_PIN");
      const lib = await library();
      const card = await openCardFile(io, cardPath);
      card.powerOn();
      try {
        const signer = await lib.openCardSigner({ terminal: card, key: "signature", pin });
        const content = readFileSync(input);
        const cms = await lib.signApplication({ content, certificate: signer.certificate, signer, signingTime: new Date() });
        // Owner-only: the CMS carries the signature certificate, i.e. the resident's four items, and the document.
        lib.writeFileAtomic(out, o.pem ? lib.toPem(cms, "CMS") : cms, 0o600);
        ctx.out.result({ out, bytes: cms.length }, () => `signed ${input} with card ${card.info().cardId}: ${out}`);
      } finally {
        card.powerOff();
      }
    });
}
