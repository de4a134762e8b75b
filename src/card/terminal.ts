/**
 * What a reader sees of a card (ISO 7816-3/-4): an answer-to-reset, power control and APDU exchange. The JPKI
 * card emulator implements it; transports (vsmartcard's vpcd bridge, an in-process reader) drive it. One
 * interface, so the transport never knows what is inside the card and the card never knows how it is reached.
 */
export interface CardTerminal {
  /** The answer-to-reset (ATR) bytes the card gives at power-on and on reset. */
  atr(): Uint8Array;
  /** Power off: the card forgets its session (selected files, verified PINs); persistent state stays. */
  powerOff(): void;
  /** Power on (a cold reset): a fresh session. */
  powerOn(): void;
  /** Warm reset: a fresh session, same as power off then on. */
  reset(): void;
  /**
   * One command APDU in, one response APDU out (data followed by SW1 SW2). Never throws for anything the
   * command contains: every error is a status word. Async because signing is.
   */
  transmit(command: Uint8Array): Promise<Uint8Array>;
}
