// Every test runs on every machine, in CI and outside it: a test that needs root or a Debian tool
// never skips itself. Without them, each test file fails here, naming what is missing and how to
// install it (the same check `npm test` runs before building; the list is tools/test-deps.mjs).
import { testDepProblems } from "../tools/test-deps.mjs";

const problems = testDepProblems();
if (problems.length) throw new Error(`this machine cannot run the capsync tests:\n- ${problems.join("\n- ")}`);
