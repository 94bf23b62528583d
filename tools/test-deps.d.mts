// Types for tools/test-deps.mjs (plain JavaScript so that `npm test` can run it before any build).
export declare const TOOLS: Record<string, [pkg: string, why: string]>;
export declare const PACKAGES: string[];
export declare const INSTALL_HINT: string;
export declare function testDepProblems(): string[];
