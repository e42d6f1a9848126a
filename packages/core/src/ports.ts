import type { AllocFlavour } from "@vmballoon/protocol";

/**
 * What the hypervisor answered to one command: EAX (the status) and EBX
 * (the result; only GET_TARGET's is meaningful).
 */
export interface HypervisorReply {
  status: number;
  result: number;
}

/**
 * The engine's way to the monitor: one backdoor command, synchronous.
 *
 * The real one (`@vmballoon/hv-x86`) is an `IN` on port 0x5670; the simulated
 * one is the monitor of SIMULATION.md (`@vmballoon/core/sim`).
 *
 * An implementation may return the same reply object from every call (the
 * registers, as it were): the engine reads a reply before its next call and
 * keeps no reference to it.
 */
export interface Hypervisor {
  call(command: number, argument: number): HypervisorReply;
}

/** Returned by {@link PageSource.allocate} when no page could be had. */
export const NO_PAGE = -1;

/**
 * The engine's way to guest memory: the seed's `alloc_page`, `__free_page`,
 * `page_to_pfn` and `si_meminfo`.
 *
 * A page is a handle, 32 bits chosen by the page source (the simulated guest
 * uses the frame number as a signed 32-bit integer, `frame | 0`; a real page
 * source may use a slot number). The engine stores handles, never addresses,
 * in 32 bits: a handle it gives back to `free` or `frameNumber` may come as
 * the unsigned reading of the same bits (`page >>> 0`), so a page source must
 * take both alike. {@link NO_PAGE} (-1) is never a handle.
 */
export interface PageSource {
  /**
   * One page, or {@link NO_PAGE}. NOSLEEP must fail rather than push the guest
   * into reclaim; CANSLEEP may wait for memory to be reclaimed.
   */
  allocate(flavour: AllocFlavour): number;
  /** Give a page back. The engine never uses the handle again. */
  free(page: number): void;
  /** The page's frame number (`page_to_pfn`). */
  frameNumber(page: number): number;
  /** The guest's total pages (`si_meminfo`'s `totalram`), the limit sent with GET_TARGET. */
  totalPages(): number;
  /**
   * Optional: the frame check, for a page source whose pages the guest's
   * kernel may move to other frames (a real one: compaction migrates locked
   * pages). Reads the frame of every page the engine holds again, and calls
   * `moved(page, told, now)` for each page whose frame is no longer the one
   * {@link frameNumber} gave (`now` is -1 when the page is not present). When
   * `moved` returns true, `now` becomes the page's frame number from then on.
   * Returns the number of pages checked. Called between cycles only
   * (`Balloon.checkFrames`); a page source whose pages never move (the
   * simulated guest) leaves it out.
   */
  checkFrames?(moved: (page: number, told: number, now: number) => boolean): number;
}
