/**
 * `jpki card …`: the IC card (住基カード / マイナンバーカード's JPKI application) as the emulator holds it.
 * Each verb lives in its own file and is added here.
 */
import { Command } from "commander";
import type { Io } from "../output.js";
import { addCardServeCommand } from "./card-serve.js";

export function makeCardCommand(io: Io): Command {
  const card = new Command("card").description("the emulated IC card (JPKI card application): serve it to PC/SC middleware");
  addCardServeCommand(card, io);
  return card;
}
