// Durations as users write them in run.yaml ("90s", "1h30m", a number of seconds): the one parser in
// @capsync/protocol (duration.ts), bounded here by MAX_DURATION_MS. Values are milliseconds.
import { MAX_DURATION_MS, parseDurationValue, type DurationParse } from "@capsync/protocol";

export { formatDuration, MAX_DURATION_MS, type DurationParse } from "@capsync/protocol";

/** Parse one config value; never throws. Rejects zero, negatives and anything above MAX_DURATION_MS. */
export function parseDuration(input: unknown): DurationParse {
  return parseDurationValue(input, MAX_DURATION_MS);
}
