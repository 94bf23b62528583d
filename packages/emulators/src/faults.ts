// The shape of a request fault every emulator injects: what goes wrong, on which requests, how often.

export interface RequestFault<Kind extends string, On extends string> {
  kind: Kind;
  /** Which requests it hits (default "any"); authentication is checked first either way. */
  on?: On | "any";
  /** Hit only the next `times` matching requests (default: until cleared). */
  times?: number;
}
