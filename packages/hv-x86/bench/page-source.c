/*
 * The page source's system calls, in C, for `npm run bench` to put beside the
 * TypeScript page source: the same calls in the same sizes, nothing else.
 *
 *   page-source alloc pinned|mlock|secret PAGES ROUNDS   allocate PAGES (batches of 256: a
 *       pin as one io_uring fixed buffer, mlock, or a read of /dev/zero into secret memory,
 *       then pagemap), then free them newest first (pinned: clear the slot + MADV_DONTNEED;
 *       mlock: munlock + MADV_DONTNEED runs of 256; secret: munmap a chunk at a time)
 *   page-source check PAGES ROUNDS                mlock PAGES, then read their pagemap in 512 KiB preads
 *
 * Prints one JSON line a round: pages a second in and out, or milliseconds a check.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define BATCH 256UL

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int pagemap, zero;
static uint64_t entries[65536];

static void frames(char *address, unsigned long pages) {
  if (pread(pagemap, entries, pages * 8, (uintptr_t)address / PAGE * 8) != (ssize_t)(pages * 8)) exit(3);
  for (unsigned long i = 0; i < pages; i++)
    if (!(entries[i] >> 63)) exit(4);
}

/* io_uring registration, as <linux/io_uring.h> lays it out: our own declarations of the two structures. */
struct rsrc_register { uint32_t nr, flags; uint64_t resv2, data, tags; };
struct rsrc_update2 { uint32_t offset, resv; uint64_t data, tags; uint32_t nr, resv2; };
struct io_vec { uint64_t base, length; };
static int ring = -1;

static int ring_open(void) {
  uint32_t params[30] = {0}; /* struct io_uring_params: 120 bytes */
  ring = syscall(425, 1, params);
  if (ring < 0) return -1;
  struct rsrc_register r = {.nr = 16384, .flags = 1 /* sparse */};
  return syscall(427, ring, 15 /* IORING_REGISTER_BUFFERS2 */, &r, sizeof r);
}

/* Pins [p, p + length) as slot `slot`, or clears the slot when length is 0. */
static long ring_update(unsigned slot, char *p, unsigned long length) {
  struct io_vec v = {(uintptr_t)p, length};
  struct rsrc_update2 u = {.offset = slot, .data = (uintptr_t)&v, .nr = 1};
  return syscall(427, ring, 16 /* IORING_REGISTER_BUFFERS_UPDATE */, &u, sizeof u);
}

static char *map_chunk(int secret, unsigned long chunk) {
  if (!secret) {
    char *p = mmap(0, chunk * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    madvise(p, chunk * PAGE, MADV_NOHUGEPAGE);
    madvise(p, chunk * PAGE, MADV_DONTDUMP);
    madvise(p, chunk * PAGE, MADV_DONTFORK);
    return p;
  }
  int fd = syscall(447, 0);
  if (fd < 0 || ftruncate(fd, chunk * PAGE)) exit(5);
  char *p = mmap(0, chunk * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  madvise(p, chunk * PAGE, MADV_DONTFORK);
  close(fd);
  return p;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  pagemap = open("/proc/self/pagemap", O_RDONLY);
  zero = open("/dev/zero", O_RDONLY);
  if (strcmp(argv[1], "alloc") == 0 && argc == 5) {
    int secret = strcmp(argv[2], "secret") == 0, pinned = strcmp(argv[2], "pinned") == 0;
    if (pinned && ring_open() != 0) return 9;
    unsigned long pages = strtoul(argv[3], 0, 10), rounds = strtoul(argv[4], 0, 10);
    unsigned long chunk = secret ? 1024 : 65536, chunks = (pages + chunk - 1) / chunk;
    char **base = calloc(chunks, sizeof *base);
    for (unsigned long round = 0; round < rounds; round++) {
      double start = now();
      for (unsigned long done = 0; done < pages; done += BATCH) {
        unsigned long c = done / chunk, slot = done % chunk;
        if (slot == 0) base[c] = map_chunk(secret, chunk);
        char *p = base[c] + slot * PAGE;
        if (pinned ? ring_update(done / BATCH, p, BATCH * PAGE) != 1
            : secret ? read(zero, p, BATCH * PAGE) != (ssize_t)(BATCH * PAGE) : mlock(p, BATCH * PAGE) != 0)
          return 6;
        frames(p, BATCH);
      }
      double in = now() - start;
      start = now();
      for (unsigned long done = pages; done > 0; done -= BATCH) {
        unsigned long c = (done - BATCH) / chunk, slot = (done - BATCH) % chunk;
        char *p = base[c] + slot * PAGE;
        if (pinned) {
          ring_update((done - BATCH) / BATCH, 0, 0);
          madvise(p, BATCH * PAGE, MADV_DONTNEED);
        } else if (!secret) {
          munlock(p, BATCH * PAGE);
          madvise(p, BATCH * PAGE, MADV_DONTNEED);
        }
        if (slot == 0) munmap(base[c], chunk * PAGE);
      }
      double out = now() - start;
      printf("{\"in\":%.0f,\"out\":%.0f}\n", pages / in, pages / out);
      fflush(stdout);
    }
    return 0;
  }
  if (strcmp(argv[1], "check") == 0) {
    unsigned long pages = strtoul(argv[2], 0, 10), rounds = strtoul(argv[3], 0, 10);
    char *p = mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mlock(p, pages * PAGE)) return 7;
    for (unsigned long round = 0; round < rounds; round++) {
      double start = now();
      for (unsigned long done = 0; done < pages; done += 65536) {
        unsigned long n = pages - done < 65536 ? pages - done : 65536;
        if (pread(pagemap, entries, n * 8, ((uintptr_t)p / PAGE + done) * 8) != (ssize_t)(n * 8)) return 8;
      }
      printf("{\"ms\":%.3f}\n", (now() - start) * 1e3);
      fflush(stdout);
    }
    return 0;
  }
  return 2;
}
