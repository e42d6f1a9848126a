/*
 * The reference guest and monitor of SIMULATION-MODERN.md in C, and a main()
 * that runs today's vmw_balloon.c against them on a churning scenario:
 *
 *   model TOTAL FREE FIRST_PFN NOSLEEP_RESERVE SLEEP_RESERVE CYCLES CAPABILITIES [CYCLE:TARGET ...]
 *
 * prints {"calls": hypervisor commands before the unload, "ops": frames locked and unlocked,
 * "ns": time of load, cycles and unload, "size", "free"}. Only setTarget
 * events; statistics on (the first debugfs read right after the load), the
 * host's answer to START is what it offers. Built and run by
 * ../throughput.mjs with the driver included (see there).
 */
#include <time.h>
#include "kernel.h"

enum x86_hypervisor_type x86_hyper_type = X86_HYPER_VMWARE;
unsigned long jiffies;

/* ------------------------------------------------------------------ guest */

static struct page *pages;
/* The free stack: frame indices, and runs (-(block + 1)) of freed 2 MB pages, as modern-guest.ts. */
static int32_t *stack, *run_at;
static uint16_t *run_taken;
static uint32_t *free_bits;
static uint16_t *block_free;
static unsigned long depth, capacity, free_count, first_pfn, frames, total_pages, nosleep_reserve, sleep_reserve;
static unsigned long block_offset, blocks, lowest_free_block;
/* The batch pages' memory, by frame index (few: one a reset). */
static struct { unsigned long index; void *memory; } memories[64];
static int n_memories;

static bool is_free(unsigned long i) { return free_bits[i / 32] & (1u << (i % 32)); }

static unsigned long pop_free(void)
{
	for (;;) {
		long e = stack[depth - 1];
		unsigned long i;
		if (e < 0) {
			unsigned long b = -e - 1;
			if (run_at[b] != (long)depth - 1) {
				depth--;
				continue;
			}
			i = block_offset + b * 512 + run_taken[b];
			if (++run_taken[b] == 512) {
				depth--;
				run_at[b] = -1;
			}
		} else {
			depth--;
			i = e;
		}
		if (!is_free(i))
			continue;
		free_bits[i / 32] &= ~(1u << (i % 32));
		free_count--;
		unsigned long b = (i - block_offset) >> 9;
		if (i >= block_offset && b < blocks)
			block_free[b]--;
		return i;
	}
}

static void compact(void)
{
	uint32_t *seen = calloc((frames + 31) / 32, 4);
	int32_t *out = malloc(depth * 4);
	unsigned long kept = 0;
	for (unsigned long at = depth; at-- > 0;) {
		long e = stack[at];
		if (e < 0) {
			unsigned long b = -e - 1;
			if (run_at[b] != (long)at)
				continue;
			out[kept++] = e;
			for (unsigned long i = block_offset + b * 512 + run_taken[b]; i < block_offset + b * 512 + 512; i++)
				seen[i / 32] |= 1u << (i % 32);
			continue;
		}
		if (!is_free(e) || (seen[e / 32] & (1u << (e % 32))))
			continue;
		seen[e / 32] |= 1u << (e % 32);
		out[kept++] = e;
	}
	for (unsigned long i = 0; i < kept; i++) {
		stack[i] = out[kept - 1 - i];
		if (stack[i] < 0)
			run_at[-stack[i] - 1] = i;
	}
	depth = kept;
	free(seen);
	free(out);
}

static void push_free(unsigned long i)
{
	if (depth == capacity)
		compact();
	stack[depth++] = i;
	free_bits[i / 32] |= 1u << (i % 32);
	free_count++;
	unsigned long b = (i - block_offset) >> 9;
	if (i >= block_offset && b < blocks && ++block_free[b] == 512 && b < lowest_free_block)
		lowest_free_block = b;
}

struct page *model_alloc_4k(bool nosleep)
{
	if (free_count <= (nosleep ? nosleep_reserve : sleep_reserve))
		return NULL;
	return &pages[pop_free()];
}

struct page *model_alloc_2m(void)
{
	if (free_count < 512 + nosleep_reserve)
		return NULL;
	unsigned long b = lowest_free_block;
	while (b < blocks && block_free[b] != 512)
		b++;
	if (b == blocks) {
		lowest_free_block = b;
		return NULL;
	}
	unsigned long first = block_offset + b * 512;
	if (block_offset % 32 == 0)
		memset(&free_bits[first / 32], 0, 64);
	else
		for (unsigned long i = first; i < first + 512; i++)
			free_bits[i / 32] &= ~(1u << (i % 32));
	block_free[b] = 0;
	run_at[b] = -1;
	free_count -= 512;
	lowest_free_block = b + 1;
	return &pages[first];
}

void model_free(struct page *page, unsigned int order)
{
	unsigned long i = (unsigned long)(page - pages);
	if (order == 0 || block_offset % 32 != 0) {
		for (unsigned long n = 1ul << order; n-- > 0;)
			push_free(i + n);
		return;
	}
	/* A whole 2 MB block as one run, first frame on top, as 512 pushes would leave it. */
	if (depth == capacity)
		compact();
	unsigned long b = (i - block_offset) >> 9;
	run_at[b] = depth;
	run_taken[b] = 0;
	stack[depth++] = -(long)(b + 1);
	memset(&free_bits[i / 32], 0xff, 64);
	free_count += 512;
	block_free[b] = 512;
	if (b < lowest_free_block)
		lowest_free_block = b;
}

void *model_page_address(struct page *page)
{
	unsigned long i = (unsigned long)(page - pages);
	for (int m = 0; m < n_memories; m++)
		if (memories[m].index == i)
			return memset(memories[m].memory, 0, PAGE_SIZE);
	memories[n_memories].index = i;
	return memories[n_memories++].memory = calloc(1, PAGE_SIZE);
}

unsigned long model_virt_to_pfn(void *address)
{
	for (int m = 0; m < n_memories; m++)
		if (memories[m].memory == address)
			return first_pfn + memories[m].index;
	abort();
}

static void *memory_at(unsigned long pfn)
{
	unsigned long i = pfn - first_pfn;
	if (pfn < first_pfn || i >= frames || is_free(i))
		return NULL;
	for (int m = 0; m < n_memories; m++)
		if (memories[m].index == i)
			return memories[m].memory;
	return NULL;
}

unsigned long page_to_pfn(struct page *page) { return first_pfn + (unsigned long)(page - pages); }
struct page *pfn_to_page(unsigned long pfn) { return &pages[pfn - first_pfn]; }
unsigned long totalram_pages(void) { return total_pages; }

/* ---------------------------------------------------------------- monitor */

static uint32_t *locked;
static unsigned long base, locked_count, target, offered, negotiated;
static bool reset_flag, doorbell;
static unsigned long long calls, frames_moved;

#define NEEDED (target < total_pages ? target : total_pages)
#define BIT(pfn) ((pfn) - base)
#define IN_GUEST(pfn) ((pfn) >= first_pfn && (pfn) < first_pfn + frames)

static unsigned long lock_4k(unsigned long pfn)
{
	if (!IN_GUEST(pfn))
		return 2;
	unsigned long bit = BIT(pfn);
	if (locked[bit / 32] & (1u << (bit % 32)))
		return 3;
	if (locked_count >= NEEDED)
		return 6;
	locked[bit / 32] |= 1u << (bit % 32);
	locked_count++;
	return 0;
}

static unsigned long unlock_4k(unsigned long pfn)
{
	if (!IN_GUEST(pfn))
		return 4;
	unsigned long bit = BIT(pfn);
	if (!(locked[bit / 32] & (1u << (bit % 32))))
		return 4;
	locked[bit / 32] &= ~(1u << (bit % 32));
	locked_count--;
	return 0;
}

static bool block_in_guest(unsigned long pfn) { return pfn % 512 == 0 && pfn >= first_pfn && pfn + 512 <= first_pfn + frames; }

static unsigned long lock_2m(unsigned long pfn)
{
	if (!block_in_guest(pfn))
		return 2;
	unsigned long w = BIT(pfn) / 32;
	for (unsigned long k = 0; k < 16; k++)
		if (locked[w + k])
			return 3;
	if (locked_count >= NEEDED)
		return 6;
	memset(&locked[w], 0xff, 64);
	locked_count += 512;
	return 0;
}

static unsigned long unlock_2m(unsigned long pfn)
{
	if (!block_in_guest(pfn))
		return 4;
	unsigned long w = BIT(pfn) / 32;
	for (unsigned long k = 0; k < 16; k++)
		if (locked[w + k] != 0xffffffffu)
			return 4;
	memset(&locked[w], 0, 64);
	locked_count -= 512;
	return 0;
}

unsigned long model_command(unsigned long cmd, unsigned long arg1, unsigned long arg2, unsigned long *ebx, unsigned long *ecx)
{
	static const unsigned long needs[11] = { 0, 0, 2, 2, 0, ~0ul, 4, 4, 8, 8, 16 };
	unsigned long status;

	calls++;
	*ebx = 0;
	*ecx = 0;
	if (cmd == 0) {
		reset_flag = false;
		memset(locked, 0, (BIT(first_pfn + frames) + 511) / 512 * 64);
		locked_count = 0;
		doorbell = false;
		if (offered == 0) {
			negotiated = 2;
			return 0;
		}
		*ecx = negotiated = offered;
		return 0x03000000;
	}
	if (cmd > 10 || needs[cmd] == ~0ul || (needs[cmd] && !(negotiated & needs[cmd])))
		return 1;
	if (reset_flag)
		return 7;
	switch (cmd) {
	case 4:
		return 0;
	case 1:
		*ebx = target < arg1 ? target : arg1;
		return 0;
	case 10:
		doorbell = !(arg1 == VMCI_INVALID_ID && arg2 == VMCI_INVALID_ID);
		return 0;
	case 2:
		status = lock_4k(arg1);
		frames_moved += status == 0;
		break;
	case 3:
		status = unlock_4k(arg1);
		frames_moved += status == 0;
		break;
	default: {
		uint64_t *entries = memory_at(arg1);
		if (!entries || arg2 > 512)
			return 2;
		for (unsigned long i = 0; i < arg2; i++) {
			unsigned long pfn = entries[i] >> 12, s;
			if (cmd == 6)
				s = lock_4k(pfn);
			else if (cmd == 7)
				s = unlock_4k(pfn);
			else if (cmd == 8)
				s = lock_2m(pfn);
			else
				s = unlock_2m(pfn);
			if (s == 0)
				frames_moved += cmd >= 8 ? 512 : 1;
			entries[i] = (entries[i] & ~0x1full) | s;
		}
		status = 0;
	}
	}
	if (status == 0)
		*ebx = NEEDED;
	return status;
}

/* The driver: its functions, its `static struct vmballoon balloon`. */
#include "vmw_balloon.c"

int main(int argc, char **argv)
{
	if (argc < 8) {
		fprintf(stderr, "usage: model TOTAL FREE FIRST_PFN NOSLEEP_RESERVE SLEEP_RESERVE CYCLES CAPABILITIES [CYCLE:TARGET ...]\n");
		return 2;
	}
	total_pages = strtoul(argv[1], NULL, 10);
	frames = strtoul(argv[2], NULL, 10);
	first_pfn = strtoul(argv[3], NULL, 10);
	nosleep_reserve = strtoul(argv[4], NULL, 10);
	sleep_reserve = strtoul(argv[5], NULL, 10);
	unsigned long cycles = strtoul(argv[6], NULL, 10);
	offered = strtoul(argv[7], NULL, 10);

	pages = calloc(frames, sizeof *pages);
	capacity = frames + (frames / 64 > 1024 ? frames / 64 : 1024);
	stack = malloc(capacity * sizeof *stack);
	free_bits = malloc((frames + 31) / 32 * 4);
	memset(free_bits, 0xff, (frames + 31) / 32 * 4);
	for (unsigned long i = 0; i < frames; i++)
		stack[i] = (int32_t)(frames - 1 - i);
	depth = free_count = frames;
	block_offset = (512 - first_pfn % 512) % 512;
	blocks = frames > block_offset ? (frames - block_offset) / 512 : 0;
	block_free = malloc(blocks * 2 + 2);
	run_at = malloc(blocks * 4 + 4);
	run_taken = calloc(blocks + 1, 2);
	for (unsigned long b = 0; b < blocks; b++) {
		block_free[b] = 512;
		run_at[b] = -1;
	}
	base = first_pfn - first_pfn % 512;
	locked = calloc((BIT(first_pfn + frames) + 511) / 512 * 16, 4);

	struct timespec begin, end;
	clock_gettime(CLOCK_MONOTONIC, &begin);
	if (vmballoon_init() != 0)
		return 1;
	vmballoon_enable_stats(&balloon);
	int next = 8;
	for (unsigned long cycle = 1; cycle <= cycles; cycle++) {
		jiffies = cycle * HZ;
		while (next < argc && strtoul(argv[next], NULL, 10) == cycle)
			target = strtoul(strchr(argv[next++], ':') + 1, NULL, 10);
		vmballoon_work(&balloon.dwork.work);
	}
	unsigned long long size = atomic64_read(&balloon.size), sent = calls;
	vmballoon_exit();
	clock_gettime(CLOCK_MONOTONIC, &end);

	long long ns = (end.tv_sec - begin.tv_sec) * 1000000000ll + (end.tv_nsec - begin.tv_nsec);
	printf("{\"calls\":%llu,\"ops\":%llu,\"ns\":%lld,\"size\":%llu,\"free\":%lu}\n", sent, frames_moved, ns, size, free_count);
	return 0;
}
