/* For the tests and the bench: which of the page source's memories this machine gives. */
import { LinuxPageSource } from "./page-source.js";
import type { PageMemory } from "./memory.js";

/** Whether a page source of that memory opens here (frame numbers need root; pinned memory needs io_uring, secret memory memfd_secret). */
export function memoryWorks(memory: PageMemory): boolean {
  try {
    LinuxPageSource.open({ memory }).close();
    return true;
  } catch {
    return false;
  }
}
