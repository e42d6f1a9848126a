/** Watches a simulation's cycles: keeps the series for the chart, the peak, and shows progress on a terminal. */
export class CycleObserver {
  readonly size: number[] = [];
  readonly target: number[] = [];
  /** The part of the size in 2 MB pages (today's driver only). */
  huge: number[] | undefined = undefined;
  peak = 0;
  peakCycle = 0;
  private lastProgress = 0;

  constructor(
    private readonly totalCycles: number,
    private readonly progress: boolean,
  ) {}

  observe(cycle: number, size: number, target: number): void {
    this.size.push(size);
    this.target.push(target);
    if (size > this.peak) {
      this.peak = size;
      this.peakCycle = cycle;
    }
    if (this.progress && (cycle & 255) === 0) {
      const now = Date.now();
      if (now - this.lastProgress >= 100) {
        this.lastProgress = now;
        process.stderr.write(`\rcycle ${cycle} of ${this.totalCycles}`);
      }
    }
  }

  done(): void {
    if (this.progress && this.lastProgress !== 0) process.stderr.write("\r\u001b[K");
  }
}
