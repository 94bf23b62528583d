// The traced flow's packets, from the trace lab's source host: `node traffic-main.js <src> <sport>
// <dst> <dport> <packets per second>` sends numbered UDP datagrams until SIGTERM/SIGINT, so the
// captures along the path (`trace --capture`) have real packets to compare hop by hop.
import { createSocket } from "node:dgram";

const [src, sport, dst, dport, pps] = process.argv.slice(2);
if (!src || !sport || !dst || !dport || !pps) {
  process.stderr.write("usage: traffic-main <src> <sport> <dst> <dport> <pps>\n");
  process.exit(2);
}
const sock = createSocket("udp4");
// The destination host has no listener: its port-unreachable answers are expected, not errors.
sock.on("error", () => {});
let seq = 0;
sock.bind(Number(sport), src, () => {
  process.stdout.write(`sending udp ${src}:${sport} -> ${dst}:${dport} at ${pps}/s\n`);
  const timer = setInterval(() => sock.send(`capsync-trace-lab seq=${seq++}`, Number(dport), dst), 1000 / Number(pps));
  for (const s of ["SIGTERM", "SIGINT"] as const) {
    process.once(s, () => {
      clearInterval(timer);
      sock.close();
    });
  }
});
