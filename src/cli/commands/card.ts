/**
 * `jpki card …`: the emulated IC card (住基カード / JPKI card application). Each verb lives in its own file and
 * is added here.
 */
import { Command } from "commander";
import type { Io } from "../output.js";
import { makeCardInfoCommand, makeCardUnblockCommand } from "./card-admin.js";
import { addCardServeCommand } from "./card-serve.js";

export function makeCardCommand(io: Io): Command {
  const card = new Command("card").description("the emulated IC card (住基カード) with the JPKI card application: inspect it, unblock a PIN, serve it to PC/SC middleware");
  for (const make of [makeCardInfoCommand, makeCardUnblockCommand]) card.addCommand(make(io));
  addCardServeCommand(card, io);
  return card;
}
