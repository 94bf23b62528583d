export * from "./errors.js";
export * from "./address.js";
export * from "./filename.js";
export * from "./codes.js";
export * from "./legacy.js";
export * from "./v1.js";
export * from "./keyfile.js";
export * from "./duration.js";
