// The trace's inputs: flowtracker's questions in flowtracker's order for whatever the command line
// lacks (a scripted asker stands in for the terminal), the password from the environment, names
// resolved through node:dns, and the errors that name the option.
import { describe, expect, it } from "vitest";
import { ConfigError } from "@capsync/protocol";
import { PASSWORD_ENV, parseProto, resolveHost, settleOptions, type Asker } from "./options.js";

/** Answers questions from a script and records them (secret ones marked). */
function scripted(answers: Record<string, string | boolean>): Asker & { asked: string[] } {
  const asked: string[] = [];
  const take = (m: string) => {
    asked.push(m);
    if (!(m in answers)) throw new Error(`unexpected question ${m}`);
    return answers[m]!;
  };
  return {
    asked,
    text: async (m, validate) => {
      const a = String(take(m));
      const v = validate(a);
      if (v !== true) throw new Error(`answer ${a} to ${m} refused: ${v}`);
      return a;
    },
    secret: async (m) => String(take(`(hidden) ${m}`)),
    yesNo: async (m) => Boolean(take(m)),
  };
}

const names: Record<string, string> = { "host-a.example": "192.0.2.10", "sw1.example": "198.51.100.1" };
const resolve = async (t: string, option: string) => {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(t)) return t;
  if (names[t]) return names[t]!;
  throw new ConfigError(`${option}: cannot resolve ${t} (ENOTFOUND)`);
};

describe("settleOptions", () => {
  it("asks flowtracker's questions, in its order, for everything missing (README's session)", async () => {
    const ask = scripted({
      "SSH/NXAPI username:": "cisco",
      "(hidden) SSH/NXAPI password:": "pw-typed",
      "Enter source IP of the flow:": "3.3.3.3",
      "Enter destination IP of the flow:": "host-a.example",
      "Enter IP protocol(tcp, udp, icmp, <number>):": "tcp",
      "(Optional) TCP/UDP Source Port:": "1234",
      "(Optional) TCP/UDP Destination Port:": "80",
      "Enter IP or hostname of first switch to connect to:": "sw1.example",
      "Use Management Interfaces for SSH[Y/N]:": false,
      "(Optional) VRF of the flow [default]:": "",
    });
    const s = await settleOptions({}, ask, {}, resolve);
    expect(ask.asked).toEqual([
      "SSH/NXAPI username:",
      "(hidden) SSH/NXAPI password:",
      "Enter source IP of the flow:",
      "Enter destination IP of the flow:",
      "Enter IP protocol(tcp, udp, icmp, <number>):",
      "(Optional) TCP/UDP Source Port:",
      "(Optional) TCP/UDP Destination Port:",
      "Enter IP or hostname of first switch to connect to:",
      "Use Management Interfaces for SSH[Y/N]:",
      "(Optional) VRF of the flow [default]:",
    ]);
    expect(s).toMatchObject({
      flow: { src: "3.3.3.3", dst: "192.0.2.10", proto: 6, sport: 1234, dport: 80, vrf: "default" },
      target: "198.51.100.1",
      user: "cisco",
      password: "pw-typed",
      mode: "interactive",
      useMgmt: false,
    });
  });

  it("asks no ports for ICMP, nothing given on the command line, and takes the password from the environment", async () => {
    const ask = scripted({ "Enter IP protocol(tcp, udp, icmp, <number>):": "icmp", "(Optional) VRF of the flow [default]:": "RED" });
    const s = await settleOptions({ user: "u", src: "10.0.0.1", dest: "10.0.0.2", target: "10.0.0.254", use_mgmt: true, mode: "auto" }, ask, { [PASSWORD_ENV]: "from-env" }, resolve);
    expect(ask.asked).toEqual(["Enter IP protocol(tcp, udp, icmp, <number>):", "(Optional) VRF of the flow [default]:"]);
    expect(s.flow).toEqual({ src: "10.0.0.1", dst: "10.0.0.2", proto: 1, vrf: "RED" });
    expect([s.password, s.useMgmt, s.mode]).toEqual(["from-env", true, "auto"]);
  });

  it("--pwd wins over the environment; without a terminal the mode is auto and nothing is asked", async () => {
    const s = await settleOptions(
      { user: "u", pwd: "from-flag", src: "10.0.0.1", dest: "10.0.0.2", proto: "17", srcPort: "5060", dest_port: "5061", target: "10.0.0.254" },
      undefined,
      { [PASSWORD_ENV]: "from-env" },
      resolve,
    );
    expect([s.password, s.mode, s.flow.vrf, s.flow.proto]).toEqual(["from-flag", "auto", "default", 17]);
  });

  it.each([
    [{}, "--user is required (no terminal to ask on)"],
    [{ user: "u" }, `--pwd (or ${PASSWORD_ENV}) is required (no terminal to ask on)`],
    [{ user: "u", pwd: "p" }, "--src is required (no terminal to ask on)"],
    [{ user: "u", pwd: "p", src: "10.0.0.1", dest: "10.0.0.2" }, "--proto is required (no terminal to ask on)"],
    [{ user: "u", pwd: "p", src: "10.0.0.1", dest: "10.0.0.2", proto: "tcp" }, "--target is required (no terminal to ask on)"],
    [{ user: "u", pwd: "p", src: "10.0.0.1", dest: "10.0.0.2", proto: "tcp", target: "t", srcPort: "1" }, "--src_port and --dest_port must be supplied together"],
    [{ user: "u", pwd: "p", src: "10.0.0.1", dest: "10.0.0.2", proto: "icmp", target: "t", srcPort: "1", destPort: "2" }, "--src_port: ports need --proto tcp, udp or sctp (got protocol 1)"],
    [{ user: "u", pwd: "p", src: "10.0.0.1", dest: "10.0.0.2", proto: "udp", target: "t", srcPort: "0", destPort: "2" }, '--src_port: expected 1..65535, got "0"'],
    [{ user: "u", pwd: "p", src: "10.0.0.1", dest: "nowhere.example", proto: "udp", target: "t" }, "--dest: cannot resolve nowhere.example (ENOTFOUND)"],
    [{ user: "u", pwd: "p", src: "10.0.0.1", dest: "10.0.0.2", proto: "udp", target: "10.0.0.3", vrf: "a b" }, '--vrf: "a b" is not a VRF name (letters, digits, _ . : -; at most 32)'],
    [{ mode: "sometimes" }, '--mode: expected interactive or auto, got "sometimes"'],
    [{ sshPort: "70000" }, '--ssh-port: expected 1..65535, got "70000"'],
    [{ insecure: true, ca: "ca.pem" }, "--insecure and --ca exclude each other"],
  ])("without a terminal %j → %s", async (o, message) => {
    await expect(settleOptions(o, undefined, {}, resolve)).rejects.toThrow(new ConfigError(message));
  });
});

describe("parseProto and resolveHost", () => {
  it.each([
    ["tcp", 6],
    ["UDP", 17],
    ["icmp", 1],
    ["47", 47],
    ["255", 255],
    ["256", undefined],
    ["tcpx", undefined],
  ])("%s → %s", (t, n) => {
    expect(parseProto(t)).toBe(n);
  });

  it("takes IPv4 addresses as they are, resolves names, refuses IPv6 and malformed hosts", async () => {
    expect(await resolveHost("192.0.2.1", "--src")).toBe("192.0.2.1");
    expect(await resolveHost("localhost", "--target")).toBe("127.0.0.1");
    await expect(resolveHost("2001:db8::1", "--dest")).rejects.toThrow("--dest: 2001:db8::1 is IPv6; trace follows IPv4 flows only");
    await expect(resolveHost("10.0.0.300", "--src")).rejects.toThrow('--src: "10.0.0.300" is neither an IPv4 address nor a host name');
    await expect(resolveHost("a b", "--src")).rejects.toThrow('--src: "a b" is neither an IPv4 address nor a host name');
  });
});
