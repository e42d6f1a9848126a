/**
 * mulberry32 as HOST.md gives it, as a state one can step: `next(state)`
 * returns the new state, `draw(state)` the number in [0, 1) that state gives.
 * Split this way, a generator is one integer, with no closure per VM.
 */
export function mulberry32Next(state: number): number {
  return (state + 0x6d2b79f5) | 0;
}

/** The draw of a state just stepped by {@link mulberry32Next}. */
export function mulberry32Draw(a: number): number {
  let t = Math.imul(a ^ (a >>> 15), 1 | a);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** The generator of HOST.md, seeded with `seed`: each call the next draw. */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = mulberry32Next(a);
    return mulberry32Draw(a);
  };
}
