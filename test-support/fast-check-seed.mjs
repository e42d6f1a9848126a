// The tests' one seed for fast-check, shared by every package (tests only:
// never built, never packed). Plain JavaScript beside its declaration file,
// so that the packages' `tsc -b`, whose root is their own `src`, can import it.
import fc from "fast-check";

/** The seed when FC_SEED is not set: every run tries the same cases. */
export const FIXED_SEED = 20260529;

/**
 * Seeds fast-check for the calling test file: `FC_SEED` from the
 * environment, or {@link FIXED_SEED}, so that a failure on one machine is the
 * same failure on another. Prints the seed; fast-check prints it again, with
 * the path to the failing case, when a property fails. Replay:
 * `FC_SEED=<seed> npm test`.
 *
 * @returns {number} the seed
 */
export function seedFastCheck() {
  const fromEnv = process.env.FC_SEED;
  const seed = fromEnv === undefined || fromEnv === "" ? FIXED_SEED : Number(fromEnv);
  if (!Number.isSafeInteger(seed)) throw new Error(`FC_SEED must be an integer, not ${JSON.stringify(fromEnv)}`);
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
  console.info(`fast-check seed ${seed}${fromEnv ? " (FC_SEED)" : " (fixed; set FC_SEED to try others)"}`);
  return seed;
}
