import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../program.js";
import type { Io } from "../output.js";
import { parseVpcdAddress } from "./card-serve.js";

async function jpki(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = "";
  const io: Io = { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) }, env: {}, cwd: mkdtempSync(join(tmpdir(), "jpki-card-serve-")) };
  return { code: await run(args, io), stderr };
}

describe("jpki card serve: the command line", () => {
  it("reads vpcd's address as host:port, [v6]:port, a port or a host; bare --vpcd is 127.0.0.1:35963", () => {
    expect(parseVpcdAddress(true)).toEqual({ host: "127.0.0.1", port: 35963 });
    expect(parseVpcdAddress("192.0.2.7:40000")).toEqual({ host: "192.0.2.7", port: 40000 });
    expect(parseVpcdAddress("[::1]:35963")).toEqual({ host: "::1", port: 35963 });
    expect(parseVpcdAddress("36000")).toEqual({ host: "127.0.0.1", port: 36000 });
    expect(parseVpcdAddress("reader.example")).toEqual({ host: "reader.example", port: 35963 });
    expect(parseVpcdAddress("[::1]")).toEqual({ host: "::1", port: 35963 });
    for (const bad of ["host:0", "host:65536", "host:", ":35963", "a b", "[::1"]) {
      expect(() => parseVpcdAddress(bad), bad).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
    }
  });

  it("refuses to start without a transport, without a card, or with a card file that is not there", async () => {
    const noVpcd = await jpki(["card", "serve", "--card", "x.card"]);
    expect(noVpcd.code).toBe(2);
    expect(noVpcd.stderr).toContain("ERR_USAGE");
    const noCard = await jpki(["card", "serve", "--vpcd"]);
    expect(noCard.code).toBe(2);
    expect(noCard.stderr).toContain("--card");
    const missing = await jpki(["card", "serve", "--vpcd", "--card", "nowhere.card"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("ERR_FILE_NOT_FOUND");
  });
});
