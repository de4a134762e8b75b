/**
 * The one place that chooses the WebCrypto provider (STYLE.md §7). pkijs and @peculiar/x509 must share it:
 * mixing providers fails with "Key is not of type CryptoKey". Import this module before using either.
 */
import "reflect-metadata";
import { Crypto } from "@peculiar/webcrypto";
import type { webcrypto as nodeWebcrypto } from "node:crypto";

type WebCrypto = nodeWebcrypto.Crypto;
import * as x509 from "@peculiar/x509";
import * as pkijs from "pkijs";

export const webcrypto: WebCrypto = new Crypto() as unknown as WebCrypto;

let installed = false;

/** Installs the provider into @peculiar/x509 and pkijs; idempotent, and never run at import time. */
export function useProvider(): WebCrypto {
  if (!installed) {
    x509.cryptoProvider.set(webcrypto);
    pkijs.setEngine("jpki", new pkijs.CryptoEngine({ name: "jpki", crypto: webcrypto }));
    installed = true;
  }
  return webcrypto;
}
