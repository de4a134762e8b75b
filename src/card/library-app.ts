/**
 * A municipal application beside JPKI (issue 12 point 8): the library card (図書館カード), one of the
 * municipal uses the seed lists for the 住基カード's free area (市町村の独自利用). Its own DF, its own AID, its own
 * PIN and access conditions; the card's instruction handlers only ever look up FIDs inside the current DF, so
 * while this application is selected no JPKI EF can be named (6A 82), and its PIN is never the PIN a JPKI key
 * asks for.
 *
 * The AID is ours: F2 "JPKILIB" — a leading F is ISO/IEC 7816-5's proprietary, unregistered category, right for
 * an application no registry knows.
 */
import { ALWAYS, NEVER, afterPin, type Df, type Ef } from "./file-system.js";

export const LIBRARY_AID: Uint8Array = Uint8Array.from([0xf2, 0x4a, 0x50, 0x4b, 0x49, 0x4c, 0x49, 0x42]);

export const LIBRARY_EF = Object.freeze({
  /** the library's name (public) */
  libraryName: 0x0001,
  /** the member number (貸出券番号): read after the library PIN */
  memberNumber: 0x0002,
  /** the loan notes: read and written (UPDATE BINARY) after the library PIN */
  loanNotes: 0x0003,
  /** the library PIN */
  pin: 0x0010,
});

export const LIBRARY_DF: Df = Object.freeze({
  name: "library",
  aid: LIBRARY_AID,
  efs: Object.freeze<Ef[]>([
    { kind: "binary", fid: LIBRARY_EF.libraryName, name: "library name", read: ALWAYS, update: NEVER, maxSize: 128 },
    { kind: "binary", fid: LIBRARY_EF.memberNumber, name: "member number", read: afterPin("library"), update: NEVER, maxSize: 32 },
    { kind: "binary", fid: LIBRARY_EF.loanNotes, name: "loan notes", read: afterPin("library"), update: afterPin("library"), maxSize: 512 },
    { kind: "pin", fid: LIBRARY_EF.pin, name: "library PIN", pin: "library" },
  ]),
});
