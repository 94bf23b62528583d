import { describe, expect, it } from "vitest";
import { describeSkew, formatSkew, measureSkew } from "./skew.js";
import { keyId } from "./v1.js";

describe("clock skew", () => {
  it("is read at the midpoint of our send and receipt, within half that interval", () => {
    expect(measureSkew(1_000, 0, 100)).toEqual({ skewMs: 950, uncertaintyMs: 50 });
    expect(measureSkew(1_763_892_000_000 - 95_240, 1_763_892_000_000, 1_763_892_000_000)).toEqual({ skewMs: -95_240, uncertaintyMs: 0 });
  });

  it("says which clock is off and by how much", () => {
    expect(describeSkew(95_240, "its", "this host's")).toBe("its clock is 95.2 s ahead of this host's");
    expect(describeSkew(-95_260, "the sender's", "this agent's")).toBe("the sender's clock is 95.3 s behind this agent's");
    expect(describeSkew(20, "its", "this host's")).toBe("its clock agrees with this host's");
    expect([formatSkew(-95_240), formatSkew(40), formatSkew(1_500)]).toEqual(["-95.2 s", "+0.0 s", "+1.5 s"]);
  });
});

describe("key id", () => {
  it("is 12 hex digits of SHA-256 over 'capsync key id', a NUL and the key (golden vector for other implementations)", () => {
    expect(keyId(Buffer.from("0123456789abcdef0123456789abcdef"))).toBe("b017dd89fcc6");
  });
});
