// The seam for REGISTER's side effect on the management server (creating the alarm-forwarding
// rule that sends this device's "Connection Lost" to the orchestrator). The default does nothing;
// the management-server integration plugs in here.
export interface Registrar {
  register(device: string, orchestrator: { address: string; port: number }): Promise<{ ok: true } | { ok: false; reason: string; message: string }>;
  unregister(device: string): Promise<void>;
}

export const noopRegistrar: Registrar = {
  register: async () => ({ ok: true }),
  unregister: async () => undefined,
};
