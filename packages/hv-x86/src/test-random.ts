/** Seeded randomness for the page source's tests and bench: the same order every run, the seed in the test's name. */

/** A generator of numbers in [0, 1) from a seed (mulberry32). */
export function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Shuffles `items` in place (Fisher-Yates) in the order `seed` gives, and returns them. */
export function shuffle<T extends { length: number; [index: number]: number } | unknown[]>(items: T, seed: number): T {
  const next = seeded(seed);
  const list = items as unknown as unknown[];
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return items;
}
