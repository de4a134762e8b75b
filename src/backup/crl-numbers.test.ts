import { describe, expect, it } from "vitest";
import { MAX_CRL_NUMBERS_PER_SECOND, MIN_CRL_GAP, crlFileCa, crlNumberGap } from "./crl-numbers.js";
import { libpqEnv } from "./postgres-tools.js";

describe("the CRL number gap after a restore", () => {
  it("is the minimum for a backup just taken (or a clock behind it), and grows with the time since", () => {
    expect(crlNumberGap(0)).toBe(MIN_CRL_GAP);
    expect(crlNumberGap(-5000)).toBe(MIN_CRL_GAP);
    expect(crlNumberGap(1)).toBe(MIN_CRL_GAP + MAX_CRL_NUMBERS_PER_SECOND);
    expect(crlNumberGap(86_400_000)).toBe(MIN_CRL_GAP + 86_400n * MAX_CRL_NUMBERS_PER_SECOND);
  });

  it("maps every published CRL file (current, history link, PEM copy) to its CA, and nothing else", () => {
    expect(crlFileCa(["crl", "13-sig.crl"])).toBe("13-sig");
    expect(crlFileCa(["crl", "13-sig.crl.42"])).toBe("13-sig");
    expect(crlFileCa(["crl", "13-sig.crl.pem"])).toBe("13-sig");
    expect(crlFileCa(["crl", "13-sig-delta.crl"])).toBe("13-sig");
    expect(crlFileCa(["crl", "13-sig", "131016.crl"])).toBe("13-sig");
    expect(crlFileCa(["crl", "13-sig", "131016.crl.7"])).toBe("13-sig");
    expect(crlFileCa(["arl", "13-auth.crl"])).toBe("13-auth");
    expect(crlFileCa(["arl", "bridge.crl"])).toBe("bridge");
    expect(crlFileCa(["crl", "index.json"])).toBeUndefined();
    expect(crlFileCa(["crl", "13-sig", "notes.crl"])).toBeUndefined();
    expect(crlFileCa(["ca", "13-sig.crl"])).toBeUndefined();
  });
});

describe("pg_dump's connection", () => {
  it("goes into libpq's environment, never the command line; a parameter libpq has no variable for is refused", () => {
    expect(libpqEnv("postgresql://jpki:s3cr%40t@localhost:5433/jpki_db?host=%2Ftmp%2Fpg&sslmode=disable")).toEqual({
      env: { PGHOST: "/tmp/pg", PGPORT: "5433", PGUSER: "jpki", PGPASSWORD: "s3cr@t", PGDATABASE: "jpki_db", PGSSLMODE: "disable" },
      database: "jpki_db",
    });
    expect(() => libpqEnv("postgres://u@h/db?options=-c%20x")).toThrow(expect.objectContaining({ code: "ERR_BACKUP_TOOL" }));
  });

  it("takes a role without a host, over a Unix socket, as every other command does (node-postgres reads it so)", () => {
    expect(libpqEnv("postgres://jpki@/jpki_db?host=/run/postgresql")).toEqual({ env: { PGUSER: "jpki", PGDATABASE: "jpki_db", PGHOST: "/run/postgresql" }, database: "jpki_db" });
    expect(libpqEnv("postgresql://jpki:s3cr%40t@/jpki_db")).toEqual({ env: { PGUSER: "jpki", PGPASSWORD: "s3cr@t", PGDATABASE: "jpki_db" }, database: "jpki_db" });
    expect(() => libpqEnv("postgres://[not a url")).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
  });
});
