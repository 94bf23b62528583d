import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { formatDuration, MAX_DURATION_MS, parseDurationValue } from "@capsync/protocol";

const parseDuration = (input: unknown) => parseDurationValue(input, MAX_DURATION_MS);

describe("parseDuration", () => {
  test.each([
    ["90s", 90_000],
    ["15m", 900_000],
    ["24h", 86_400_000],
    ["1d", 86_400_000],
    ["500ms", 500],
    ["1h30m", 5_400_000],
    ["1h 30m 5s", 5_405_000],
    ["1.5h", 5_400_000],
    [" 2m ", 120_000],
    ["90", 90_000],
    [90, 90_000],
    [0.25, 250],
    ["366d", MAX_DURATION_MS],
  ] as const)("%j → %i ms", (input, ms) => {
    expect(parseDuration(input)).toEqual({ ok: true, ms });
  });

  const EXPECTED = "expected a duration like 90s, 15m, 24h, 1d or a number of seconds";
  test.each([
    ["15x", `${EXPECTED}, got '15x'`],
    ["1m1h", `${EXPECTED}, got '1m1h'`],
    ["1s1s", `${EXPECTED}, got '1s1s'`],
    ["", `${EXPECTED}, got ''`],
    ["h", `${EXPECTED}, got 'h'`],
    ["-5s", `${EXPECTED}, got '-5s'`],
    ["1H", `${EXPECTED}, got '1H'`],
    [true, `${EXPECTED}, got true`],
    [null, `${EXPECTED}, got an empty value`],
    [[1], `${EXPECTED}, got a list`],
    [Number.NaN, `${EXPECTED}, got NaN`],
    [Number.POSITIVE_INFINITY, `${EXPECTED}, got Infinity`],
    [0, "must be longer than 0, got 0"],
    ["0s", "must be longer than 0, got '0s'"],
    [-1, "must be longer than 0, got -1"],
    ["367d", "must be at most 366d, got '367d'"],
  ] as const)("%j is refused", (input, message) => {
    expect(parseDuration(input)).toEqual({ ok: false, message });
  });
});

describe("formatDuration", () => {
  test.each([
    [90_000, "1m30s"],
    [86_400_000, "1d"],
    [5_400_000, "1h30m"],
    [1_500, "1s500ms"],
    [0, "0s"],
  ])("%i ms → %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  test("parseDuration reads back every formatted duration", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_DURATION_MS }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toEqual({ ok: true, ms });
      }),
    );
  });

  test("parseDuration never throws", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.double(), fc.jsonValue()), (v) => {
        const r = parseDuration(v);
        if (r.ok) expect(r.ms).toBeGreaterThan(0);
      }),
    );
  });
});
