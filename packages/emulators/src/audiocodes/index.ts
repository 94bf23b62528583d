// The AudioCodes device emulator (MSBR, Mediant GW/SBC): one device (device.ts) or a fleet (fleet.ts).
export { startAudioCodesDevice } from "./device.js";
export { startAudioCodesFleet, type AudioCodesFleet, type AudioCodesFleetOptions } from "./fleet.js";
export * from "./types.js";
