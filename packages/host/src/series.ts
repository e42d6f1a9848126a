/** A `[second, MiB]` series of HOST.md: points in time order. */
export type SeriesPoints = readonly (readonly [number, number])[];

/**
 * A series read second by second, in order: linear between points, constant
 * after the last (and, our choice, at the first point's value before it),
 * `floor(MiB × 256)` pages. Seconds are read in increasing order, so a cursor
 * finds each second's segment in amortised constant time, with no allocation.
 */
export class Series {
  private readonly seconds: Float64Array;
  private readonly mib: Float64Array;
  private at = 0;

  constructor(points: SeriesPoints) {
    this.seconds = Float64Array.from(points, (p) => p[0]);
    this.mib = Float64Array.from(points, (p) => p[1]);
  }

  /** The series in pages at second `t` (not before the last second asked). */
  pages(t: number): number {
    const { seconds, mib } = this;
    const last = seconds.length - 1;
    while (this.at < last && seconds[this.at + 1]! <= t) this.at++;
    const i = this.at;
    if (t <= seconds[i]! || i === last) return Math.floor(mib[i]! * 256);
    const t0 = seconds[i]!;
    const m0 = mib[i]!;
    return Math.floor((m0 + ((mib[i + 1]! - m0) * (t - t0)) / (seconds[i + 1]! - t0)) * 256);
  }
}
