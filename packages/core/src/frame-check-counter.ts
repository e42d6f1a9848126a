/**
 * What both engines' frame checks report, and the running totals of them:
 * shared by the seed's `Balloon` and today's `ModernBalloon`, so
 * that neither engine imports the other's internals for it.
 */

/** What one frame check did (`Balloon.checkFrames`). */
export interface FrameCheck {
  /** Ballooned pages whose frame was read again. */
  readonly checked: number;
  /** Pages no longer on the frame the host was told. */
  readonly moved: number;
  /** Moved pages repaired: the old frame UNLOCKed, the new one LOCKed. */
  readonly repaired: number;
  /** Moved pages whose old frame was UNLOCKed but whose new one could not be LOCKed: they left the balloon and were freed. */
  readonly released: number;
}

/** The frame checks since the balloon was made: how many, and the sums of their {@link FrameCheck}s. */
export interface FrameCheckTotals extends FrameCheck {
  readonly checks: number;
}

/** The frame checks a balloon has made: {@link add} each one, read the sums with {@link totals}. */
export class FrameCheckCounter {
  private checks = 0;
  private checked = 0;
  private moved = 0;
  private repaired = 0;
  private released = 0;

  /** Counts one check that did `check`, and gives `check` back. */
  add<Check extends FrameCheck>(check: Check): Check {
    this.checks++;
    this.checked += check.checked;
    this.moved += check.moved;
    this.repaired += check.repaired;
    this.released += check.released;
    return check;
  }

  /** The checks so far and the sums of what they did (a copy). */
  totals(): FrameCheckTotals {
    return { checks: this.checks, checked: this.checked, moved: this.moved, repaired: this.repaired, released: this.released };
  }
}
