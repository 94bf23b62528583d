// The command grammar and reply texts of the pcap-sparkbot Webex bot, which `serve --config` answers
// on its webhook: one message's text in, one command out. The texts are the bot's own, word for
// word (two spaces after "successfully."), because its users and their scripts read them.

/** A command as the bot understood it; values are as typed, validated later like a /pcap_json body. */
export type WebexCommand =
  | { kind: "capture"; device: string; iface: string; proto: string; src: string; dst: string; duration: string }
  | { kind: "help" }
  | { kind: "unknown" };

// The bot's regex, `^capture device (.*) interface (.*) proto (.*) src (.*) dst (.*) duration (.*)$`,
// tried case-insensitively as its framework does; values are single words here, so a value can
// never swallow the next keyword.
const CAPTURE = /^capture\s+device\s+(\S+)\s+interface\s+(\S+)\s+proto\s+(\S+)\s+src\s+(\S+)\s+dst\s+(\S+)\s+duration\s+(\S+)$/i;

/** The bot's order: the capture pattern, then "help" anywhere in the text, then the apology. */
export function parseWebexCommand(text: string): WebexCommand {
  const t = text.replace(/\s+/g, " ").trim();
  const m = CAPTURE.exec(t);
  if (m) return { kind: "capture", device: m[1]!, iface: m[2]!, proto: m[3]!, src: m[4]!, dst: m[5]!, duration: m[6]! };
  if (/help/i.test(t)) return { kind: "help" };
  return { kind: "unknown" };
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'", apos: "'", nbsp: " " };

/**
 * The command text of a Webex message: in a group room the bot is @mentioned, and the mention (the
 * bot's name) leads the text. The html form marks the mention with the bot's person id, so it is
 * cut there; the plain text loses a leading display name.
 */
export function commandText(msg: { text?: string; html?: string }, bot: { id?: string; displayName?: string }): string {
  if (msg.html && bot.id) {
    const mention = new RegExp(`<spark-mention[^>]*data-object-id="${bot.id.replace(/[^A-Za-z0-9_=-]/g, "")}"[^>]*>.*?</spark-mention>`, "gis");
    if (mention.test(msg.html)) {
      return msg.html
        .replace(mention, " ")
        .replace(/<[^>]*>/g, " ")
        .replace(/&(amp|lt|gt|quot|#39|apos|nbsp);/g, (_m, e: string) => ENTITIES[e]!)
        .replace(/\s+/g, " ")
        .trim();
    }
  }
  let t = (msg.text ?? "").replace(/\s+/g, " ").trim();
  const name = bot.displayName?.trim();
  if (name && t.toLowerCase().startsWith(name.toLowerCase() + " ")) t = t.slice(name.length).trim();
  return t;
}

export const HELP_TEXT =
  "Hello!  I am a bot that can assist with launching packet captures on Cisco IOS-XE devices.  " +
  "I make use of the packet capture API found [here](https://github.com/chrishocker/xepacketcap).  " +
  "If your device has this API installed, you can ask me to start a packet capture using the following syntax:\n\n" +
  "**capture device** [device] **interface** [interface] **proto** [ip|tcp|udp] **src** [src] **dst** [dst] **duration** [duration]\n\n" +
  "Where:  \n" +
  "- device = FQDN or IP address of the IOS-XE device  \n" +
  "- interface = the interface to capture, ie. GigabitEthernet1  \n" +
  "- proto = the protocol to capture, ie. ip, tcp or udp  \n" +
  "- src = the source address to capture, ie. any or host IP address  \n" +
  "- dst = the destination address to capture, ie. any or host IP address  \n" +
  "- duration = the duration to run the capture in seconds\n\n" +
  "For example:\n\n" +
  "**capture device** 192.168.0.1 **interface** Gi1 **proto** tcp **src** any **dst** any **duration** 10\n\n";

export const REPLY = {
  help: HELP_TEXT,
  unknown: "I'm sorry, I did not understand your request.  Try asking me for help using the **help** command.",
  connecting: (device: string) => `Connecting to device ${device}`,
  startError: (device: string, err: string) => `Error starting capture on device ${device}: ${err}`,
  started: (job: string, device: string) => `Started capture job ${job} on device ${device}`,
  completed: (job: string, url: string) => `Job ${job} completed successfully.  Capture is at ${url}`,
  failed: (job: string) => `Job ${job} failed.`,
} as const;
