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

// ---------------------------------------------------------------------------
// Today's driver (ModernBalloon): the same two ports, grown as far as it needs
// ---------------------------------------------------------------------------

/**
 * What the hypervisor answered to one command of today's driver: EAX, EBX,
 * and ECX, where START's answer carries the host's capabilities.
 */
export interface ModernHypervisorReply extends HypervisorReply {
  /** ECX after the command: the capabilities granted, for START; otherwise unused. */
  ecx: number;
}

/**
 * The way to the monitor of today's driver: one backdoor command with two
 * arguments (EBX and ESI), synchronous. Batched commands pass the frame of
 * the batch page and the number of entries; the host reads and writes that
 * page (see {@link ModernPageSource.pageWords}).
 *
 * As with {@link Hypervisor}, an implementation may return the same reply
 * object every time.
 */
export interface ModernHypervisor {
  call(command: number, argument: number, argument2: number): ModernHypervisorReply;
}

/**
 * Guest memory for today's driver: {@link PageSource}'s 4 KB pages
 * (`ALLOC.NOSLEEP` is `balloon_page_alloc`, `__GFP_NORETRY`; `ALLOC.CANSLEEP`
 * is the batch page's `GFP_KERNEL`), and 2 MB pages, which a page source may
 * always refuse (the driver then goes on with 4 KB pages).
 *
 * Handles are as {@link PageSource}'s: 32 bits, never {@link NO_PAGE}. A 2 MB
 * page has one handle; {@link splitHugePage} turns it into 512 4 KB ones.
 * Frame numbers may exceed 32 bits (up to 2^52 - 1).
 */
export interface ModernPageSource extends PageSource {
  /** One 2 MB page (order 9, no reclaim), or {@link NO_PAGE}. */
  allocateHuge(): number;
  /** Give a 2 MB page back, whole (`__free_pages(page, 9)`). */
  freeHuge(page: number): void;
  /**
   * `split_page(page, 9)`: the 512 4 KB pages of a 2 MB page, first frame
   * first; each is then freed with {@link PageSource.free}.
   */
  splitHugePage(page: number): ArrayLike<number>;
  /**
   * The memory of a 4 KB page as 1024 32-bit words, zeroed when first asked
   * for after its allocation (`__GFP_ZERO`): the batch page, which the driver
   * writes and the host reads and writes.
   */
  pageWords(page: number): Uint32Array;
  /**
   * Optional: what the host reads and writes at frame `pfn` — the words
   * {@link pageWords} gave for the page on that frame (the batch page), or
   * undefined. A monitor that reads the batch page (the simulated one) goes
   * through this, so that with real memory it is the real page's bytes.
   */
  memoryAt?(pfn: number): Uint32Array | undefined;
}
