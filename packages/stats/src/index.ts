export { formatSeed } from "./seed.js";
export type { SeedRecord } from "./seed.js";
