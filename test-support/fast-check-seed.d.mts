/** The seed when FC_SEED is not set. */
export declare const FIXED_SEED: number;
/** Seeds fast-check for the calling test file (FC_SEED, or FIXED_SEED), prints the seed and returns it. */
export declare function seedFastCheck(): number;
