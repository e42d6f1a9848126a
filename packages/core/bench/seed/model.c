/*
 * The reference guest and monitor of SIMULATION.md in C, and a main() that
 * runs the seed's own vmw_balloon.c against them on a churning scenario:
 *
 *   model TOTAL FREE FIRST_PFN NOSLEEP_RESERVE SLEEP_RESERVE CYCLES [CYCLE:TARGET ...]
 *
 * prints {"ops": LOCK+UNLOCK commands, "ns": time of load, cycles and unload}.
 * Only setTarget events: enough for the benchmark. Built and run by
 * ../throughput.mjs with the seed included (see there).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernel.h"

const struct hypervisor_x86 x86_hyper_vmware;
const struct hypervisor_x86 *x86_hyper = &x86_hyper_vmware;

/* The guest: a stack of free frames (first allocation: firstPfn), a struct page each. */
static struct page *pages;
static uint32_t *free_stack;
static unsigned long free_depth, first_pfn, frames, total_pages, nosleep_reserve, sleep_reserve;

struct page *alloc_page(gfp_t flags)
{
	unsigned long reserve = (flags & GFP_HIGHUSER) ? sleep_reserve : nosleep_reserve;
	if (free_depth <= reserve)
		return NULL;
	return &pages[free_stack[--free_depth] - first_pfn];
}

void __free_page(struct page *page)
{
	free_stack[free_depth++] = (uint32_t)page_to_pfn(page);
}

unsigned long page_to_pfn(struct page *page)
{
	return first_pfn + (unsigned long)(page - pages);
}

void si_meminfo(struct sysinfo *info)
{
	info->totalram = total_pages;
}

/* The monitor: rules 2 to 8 (no forced failures, refusals or resets here). */
static uint64_t *locked;
static unsigned long locked_count, target;
static bool reset_flag;
static unsigned long long commands[5];

unsigned long model_command(unsigned long cmd, unsigned long arg, unsigned long *result)
{
	*result = 0;
	if (cmd < 5)
		commands[cmd]++;
	if (cmd == 0) {
		reset_flag = false;
		memset(locked, 0, (frames + 63) / 64 * 8);
		locked_count = 0;
		return 0;
	}
	if (cmd > 4)
		return 1;
	if (reset_flag)
		return 7;
	if (cmd == 4)
		return 0;
	if (cmd == 1) {
		*result = min(target, arg);
		return 0;
	}
	unsigned long index = arg - first_pfn;
	if (cmd == 2) {
		if (arg < first_pfn || index >= frames)
			return 2;
		if (locked[index / 64] & (1ull << (index % 64)))
			return 3;
		if (locked_count >= min(target, total_pages))
			return 6;
		locked[index / 64] |= 1ull << (index % 64);
		locked_count++;
		return 0;
	}
	if (arg < first_pfn || index >= frames || !(locked[index / 64] & (1ull << (index % 64))))
		return 4;
	locked[index / 64] &= ~(1ull << (index % 64));
	locked_count--;
	return 0;
}

/* The seed: its functions, its `static struct vmballoon balloon`. */
#include "vmw_balloon.c"

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: model TOTAL FREE FIRST_PFN NOSLEEP_RESERVE SLEEP_RESERVE CYCLES [CYCLE:TARGET ...]\n");
		return 2;
	}
	total_pages = strtoul(argv[1], NULL, 10);
	frames = strtoul(argv[2], NULL, 10);
	first_pfn = strtoul(argv[3], NULL, 10);
	nosleep_reserve = strtoul(argv[4], NULL, 10);
	sleep_reserve = strtoul(argv[5], NULL, 10);
	unsigned long cycles = strtoul(argv[6], NULL, 10);

	pages = calloc(frames, sizeof *pages);
	free_stack = malloc(frames * sizeof *free_stack);
	locked = calloc((frames + 63) / 64, 8);
	for (unsigned long i = 0; i < frames; i++)
		free_stack[i] = (uint32_t)(first_pfn + frames - 1 - i);
	free_depth = frames;

	struct timespec begin, end;
	clock_gettime(CLOCK_MONOTONIC, &begin);
	if (vmballoon_init() != 0)
		return 1;
	int next = 7;
	for (unsigned long cycle = 1; cycle <= cycles; cycle++) {
		while (next < argc && strtoul(argv[next], NULL, 10) == cycle)
			target = strtoul(strchr(argv[next++], ':') + 1, NULL, 10);
		vmballoon_work(&balloon.dwork.work);
	}
	vmballoon_exit();
	clock_gettime(CLOCK_MONOTONIC, &end);

	long long ns = (end.tv_sec - begin.tv_sec) * 1000000000ll + (end.tv_nsec - begin.tv_nsec);
	printf("{\"ops\":%llu,\"ns\":%lld,\"size\":%u,\"free\":%lu}\n", commands[2] + commands[3], ns, balloon.size, free_depth);
	return 0;
}
