// Waiting in the demo labs so that the first Ctrl-C/SIGTERM (the lab's abort signal) ends the wait
// at once. Not here: what the lab then stops or cleans up.
import { LabError } from "./netns.js";

/** Resolves after `ms`; rejects with LabError "interrupted" as soon as `signal` aborts. */
export const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(new LabError("interrupted"));
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new LabError("interrupted"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
