// `cpe-capture report <run folder>`: merge both sides and write what was lost (also run at the end of every run).
import { RunFolder } from "../artifacts/run-folder.js";
import { reportRun } from "../artifacts/report.js";
import type { Io } from "./run.js";

export async function reportCommand(dir: string, io: Io): Promise<number> {
  const folder = RunFolder.open(dir);
  const r = await reportRun(folder.dir);
  if (!r) {
    io.stderr.write(`${folder.dir}: no collected capture files to compare\n`);
    return 1;
  }
  io.stdout.write(`${r.summaryLine}\n`);
  for (const f of r.files) io.stdout.write(`  ${f}\n`);
  return 0;
}
