import { ALLOC, type AllocFlavour } from "@vmballoon/protocol";
import { PageStack } from "../page-stack.js";
import { NO_PAGE, type PageSource } from "../ports.js";

// A module-local binding, folded by V8 into compiled code (an import is not).
const { NOSLEEP } = ALLOC;
const EMPTY = NO_PAGE;

/** The guest of SIMULATION.md, as a scenario describes it. */
export interface GuestSpec {
  /** What the driver reports as its limit in GET_TARGET. */
  readonly totalPages: number;
  /** Frames on the free stack at the start: firstPfn … firstPfn + freePages - 1. */
  readonly freePages: number;
  readonly firstPfn: number;
  /** A NOSLEEP allocation fails when free pages are this many or fewer. */
  readonly nosleepReserve: number;
  /** A CANSLEEP allocation fails when free pages are this many or fewer. */
  readonly sleepReserve: number;
}

/**
 * The reference guest: a stack of free frame numbers (an allocation pops the
 * top, a freed page is pushed on top) and the workload's own stack. A page's
 * handle is its frame number as a signed 32-bit integer (`frame | 0`), which
 * {@link frameNumber} turns back into the frame: a handle then never needs a
 * floating-point register in the engine's per-page path. No frame is
 * 2^32 - 1 (a scenario's frames end below it), so no handle is {@link NO_PAGE}.
 */
export class SimGuest implements PageSource {
  private readonly freeStack: Int32Array;
  private freeDepth: number;
  private readonly workload = new PageStack();
  private readonly total: number;
  private readonly nosleepReserve: number;
  private readonly sleepReserve: number;
  /** Called with each frame {@link use} pops (the host of HOST.md marks it touched); undefined by default. */
  onUse: ((pfn: number) => void) | undefined = undefined;

  constructor(spec: GuestSpec) {
    this.total = spec.totalPages;
    this.nosleepReserve = spec.nosleepReserve;
    this.sleepReserve = spec.sleepReserve;
    // The top of the stack is the highest index: firstPfn is handed out first.
    const stack = new Int32Array(spec.freePages);
    const last = spec.firstPfn + spec.freePages - 1;
    for (let i = 0; i < stack.length; i++) stack[i] = last - i;
    this.freeStack = stack;
    this.freeDepth = stack.length;
  }

  allocate(flavour: AllocFlavour): number {
    const reserve = flavour === NOSLEEP ? this.nosleepReserve : this.sleepReserve;
    if (this.freeDepth <= reserve) return EMPTY;
    return this.freeStack[--this.freeDepth]!;
  }

  free(page: number): void {
    this.freeStack[this.freeDepth++] = page;
  }

  frameNumber(page: number): number {
    return page >>> 0;
  }

  totalPages(): number {
    return this.total;
  }

  /** Depth of the free stack. */
  get freeCount(): number {
    return this.freeDepth;
  }

  /** Pages the workload holds. */
  get workloadCount(): number {
    return this.workload.length;
  }

  /** `guestUse`: the workload takes up to `count` free pages. */
  use(count: number): void {
    const onUse = this.onUse;
    for (let n = 0; n < count && this.freeDepth > 0; n++) {
      const page = this.freeStack[--this.freeDepth]!;
      this.workload.push(page);
      if (onUse !== undefined) onUse(page >>> 0);
    }
  }

  /** `guestRelease`: the workload gives back up to `count` pages. */
  release(count: number): void {
    for (let n = 0; n < count && this.workload.length > 0; n++) {
      this.freeStack[this.freeDepth++] = this.workload.pop();
    }
  }

  /** A copy of the free stack, bottom first. */
  freeFrames(): Uint32Array {
    return new Uint32Array(this.freeStack.subarray(0, this.freeDepth));
  }

  /** A copy of the workload's stack, bottom first. */
  workloadFrames(): Uint32Array {
    return this.workload.toArray();
  }
}
