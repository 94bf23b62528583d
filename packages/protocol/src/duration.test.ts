// The one duration formatter every --help, `validate` and log line uses: a golden table of the
// values they print (the defaults among them), each read back by the parser.
import { describe, expect, test } from "vitest";
import { formatDuration, parseDuration } from "./duration.js";

describe("formatDuration golden table", () => {
  test.each([
    [100, "100ms"],
    [1_500, "1s500ms"],
    [5_000, "5s"],
    [30_000, "30s"],
    [90_000, "1m30s"],
    [600_000, "10m"],
    [1_800_000, "30m"],
    [5_400_000, "1h30m"],
    [86_400_000, "1d"],
    [90_000_000, "1d1h"],
    [129_600_000, "1d12h"],
    [604_800_000, "7d"],
    [31_622_400_000, "366d"],
  ])("%i ms prints as %s and parses back", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });

  test.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY])("%d (no duration) prints as 0s, never a raw number", (ms) => {
    expect(formatDuration(ms)).toBe("0s");
  });
});
