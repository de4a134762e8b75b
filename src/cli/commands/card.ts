/**
 * `jpki card …`: the emulated IC card (住基カード / JPKI card application). Each verb lives in its own file and
 * is added here: at the counter (card-counter.ts: issue, renew), in the resident's hands (sign), and the card's own
 * administration (card-admin.ts: info, unblock), and its reader (card-serve.ts: serve --vpcd).
 */
import { Command } from "commander";
import type { Io } from "../output.js";
import { makeCardInfoCommand, makeCardUnblockCommand } from "./card-admin.js";
import { makeCardIssueCommand, makeCardRenewCommand, makeCardSignCommand } from "./card-counter.js";
import { addCardServeCommand } from "./card-serve.js";

export function makeCardCommand(io: Io): Command {
  const card = new Command("card").description("the emulated IC card (住基カード) with the JPKI card application: issue at the counter, renew, sign, inspect, unblock a PIN, serve it to PC/SC middleware");
  for (const make of [makeCardIssueCommand, makeCardRenewCommand, makeCardSignCommand, makeCardInfoCommand, makeCardUnblockCommand]) card.addCommand(make(io));
  addCardServeCommand(card, io);
  return card;
}
