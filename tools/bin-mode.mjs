#!/usr/bin/env node
// After `tsc -b`: marks every workspace's `bin` files executable. tsc writes new files 0644, and
// `npm link` puts symlinks to these very files on PATH, so after a clean build the commands would
// fail with "permission denied" until this runs. tsc keeps the `#!/usr/bin/env node` line; a bin
// without it is an error here, since the kernel could not run it.
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

const root = join(import.meta.dirname, "..");
const { workspaces } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
let failed = false;
for (const ws of workspaces) {
  const { bin } = JSON.parse(readFileSync(join(root, ws, "package.json"), "utf8"));
  for (const file of Object.values(bin ?? {})) {
    const path = join(root, ws, file);
    if (!existsSync(path)) {
      process.stderr.write(`bin-mode: ${join(ws, file)} was not built (is it under ${dirname(file)}/ in tsconfig's outDir?)\n`);
      failed = true;
    } else if (!readFileSync(path, "utf8").startsWith("#!/usr/bin/env node\n")) {
      process.stderr.write(`bin-mode: ${join(ws, file)} does not start with #!/usr/bin/env node\n`);
      failed = true;
    } else {
      chmodSync(path, 0o755);
    }
  }
}
process.exitCode = failed ? 1 : 0;
