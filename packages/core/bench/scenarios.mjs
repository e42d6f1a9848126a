/**
 * The benchmark's scenarios (issue 2): a churning 4 Mi-page guest, and a full
 * inflate of a 16 Mi-page guest.
 */

/** 3000 cycles; the target moves between 3,000,000 and 200,000 pages every 150 cycles. */
export function churnScenario() {
  const events = [];
  for (let cycle = 1, high = true; cycle <= 3000; cycle += 150, high = !high) {
    events.push({ cycle, setTarget: high ? 3_000_000 : 200_000 });
  }
  return {
    cycles: 3000,
    unload: true,
    guest: { totalPages: 4 << 20, freePages: (4 << 20) - 65536, firstPfn: 4096, nosleepReserve: 16384, sleepReserve: 4096 },
    events,
  };
}

/** A 16 Mi-page (64 GiB) guest inflated until the monitor needs no more. */
export function fullInflateScenario(pages = 16 << 20) {
  const cycles = Math.ceil(pages / 16385) + 2;
  return {
    cycles,
    unload: false,
    guest: { totalPages: pages, freePages: pages, firstPfn: 0, nosleepReserve: 0, sleepReserve: 0 },
    events: [{ cycle: 1, setTarget: pages }],
  };
}
