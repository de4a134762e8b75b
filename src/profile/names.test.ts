import { describe, expect, it } from "vitest";
import { opaqueId } from "./names.js";

describe("opaqueId (the opaque subject CN)", () => {
  it("writes each request time's own JST second, whatever was asked before (the last second's text is kept)", () => {
    // 2026-04-01T14:59:59Z is 23:59:59 JST; a millisecond in the same second, then the next second (the next JST day)
    expect(opaqueId(new Date("2026-04-01T14:59:59.000Z"), 1, "131016000")).toBe("2026040123595900001131016000");
    expect(opaqueId(new Date("2026-04-01T14:59:59.999Z"), 2, "C7")).toBe("2026040123595900002C70000000");
    expect(opaqueId(new Date("2026-04-01T15:00:00.000Z"), 123456, "131016000")).toBe("2026040200000023456131016000");
    expect(opaqueId(new Date("2026-04-01T14:59:59.500Z"), 3, "131016000")).toBe("2026040123595900003131016000");
    expect(opaqueId(new Date("2016-04-01T14:59:59.500Z"), 3, "131016000")).toBe("2016040123595900003131016000"); // ten years earlier
    // an invalid Date as before: NaN fields, not the last second's text
    expect(opaqueId(new Date(NaN), 4, "131016000")).toBe("NaNNaNNaNNaNNaNNaN00004131016000");
    expect(opaqueId(new Date("2026-04-01T15:00:00.001Z"), 5, "131016000")).toBe("2026040200000000005131016000");
  });
});
