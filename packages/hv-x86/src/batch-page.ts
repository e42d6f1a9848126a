/*
 * The batch page of today's driver: a 4 KB page handed out whose memory the
 * driver writes and the host reads and writes, as 1024 32-bit words. The
 * only pages whose contents the page source touches.
 */
import { PAGE_SIZE } from "@vmballoon/protocol";
import { native } from "./native.js";

export class BatchPages {
  /** Pages whose memory was asked for, while held. */
  private readonly viewed = new Map<number, Uint32Array>();

  /** The words of the page at `address`, zeroed now (`__GFP_ZERO`); remembered as `page`'s. */
  view(page: number, address: number): Uint32Array {
    const words = new Uint32Array(native().koffi.view(BigInt(address), PAGE_SIZE));
    words.fill(0);
    this.viewed.set(page >>> 0, words);
    return words;
  }

  /** The words given for the page whose frame is `pfn` (as `frameOf` says now), or undefined. */
  at(pfn: number, frameOf: (page: number) => number): Uint32Array | undefined {
    for (const [page, words] of this.viewed) if (frameOf(page) === pfn) return words;
    return undefined;
  }

  /** The page is freed: its view is no longer valid. */
  forget(page: number): void {
    if (this.viewed.size !== 0) this.viewed.delete(page >>> 0);
  }

  clear(): void {
    this.viewed.clear();
  }
}
