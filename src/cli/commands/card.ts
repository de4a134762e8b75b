/** `jpki card …`: the emulated IC card (住基カード / JPKI card application) at the counter and in the resident's hands. */
import { Command } from "commander";
import type { Io } from "../output.js";
import { makeCardIssueCommand, makeCardRenewCommand, makeCardSignCommand } from "./card-counter.js";

export function makeCardCommand(io: Io): Command {
  const card = new Command("card").description("the IC card (住基カード): issue at the counter, renew, sign with the card's key");
  for (const make of [makeCardIssueCommand, makeCardRenewCommand, makeCardSignCommand]) card.addCommand(make(io));
  return card;
}
