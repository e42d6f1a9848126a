/*
 * Just enough of the kernel for today's vmw_balloon.c (Linux 6.7 and later)
 * to compile and run in userspace, against the reference guest and monitor
 * of SIMULATION-MODERN.md (model.c). Used by the benchmark only: `npm run
 * bench` compares the driver's own C with the TypeScript engine on the same
 * machine, in the same run.
 */
#ifndef VMBALLOON_BENCH_MODERN_KERNEL_H
#define VMBALLOON_BENCH_MODERN_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t u64;
typedef uint32_t u32;
typedef unsigned int gfp_t;

#define CONFIG_64BIT 1
#define CONFIG_DEBUG_FS 1
#define IS_ENABLED(x) (x)
#define __init
#define __exit
#define __packed __attribute__((packed))
#define __read_mostly
#define __always_inline inline __attribute__((always_inline))
#define likely(x) (x)
#define unlikely(x) (x)
#define MODULE_AUTHOR(x)
#define MODULE_DESCRIPTION(x)
#define MODULE_ALIAS(x)
#define MODULE_LICENSE(x)
#define MODULE_PARM_DESC(a, b)
#define module_param(a, b, c)
#define late_initcall(f)
#define module_exit(f)
#define KBUILD_MODNAME "vmw_balloon"
#define pr_debug(...) do { } while (0)
#define pr_err_once(...) do { } while (0)
#define cond_resched() do { } while (0)
#define VM_BUG_ON(x) do { } while (0)
#define lockdep_assert_held(x) do { } while (0)
#define READ_ONCE(x) (x)
#define WRITE_ONCE(x, v) ((x) = (v))
#define min_t(type, a, b) ((type)(a) < (type)(b) ? (type)(a) : (type)(b))
#define DIV_ROUND_UP_ULL(n, d) (((unsigned long long)(n) + (d) - 1) / (d))
#define ENOMEM 12
#define EIO 5
#define EINVAL 22
#define ENODEV 19
#define EAGAIN 11
#define EBUSY 16
#define S_IRUGO 0444
#define PAGE_SHIFT 12
#define PAGE_SIZE 4096UL
#define PMD_SHIFT 21
#define PHYS_PFN(x) ((unsigned long)((x) >> PAGE_SHIFT))

#define __GFP_HIGHMEM 0x1u
#define __GFP_NOWARN 0x2u
#define __GFP_NOMEMALLOC 0x4u
#define __GFP_ZERO 0x8u
#define __GFP_NORETRY 0x10u
#define GFP_KERNEL 0x20u

/* Atomics and static keys: one thread here. */
typedef struct { long long counter; } atomic64_t;
#define atomic64_read(a) ((a)->counter)
#define atomic64_add(v, a) ((a)->counter += (v))
#define atomic64_sub(v, a) ((a)->counter -= (v))
#define atomic64_inc(a) ((a)->counter++)
#define atomic64_dec(a) ((a)->counter--)
struct static_key { bool enabled; };
struct static_key_bool { struct static_key key; };
#define DEFINE_STATIC_KEY_TRUE(name) struct static_key_bool name = { { true } }
#define DEFINE_STATIC_KEY_FALSE(name) struct static_key_bool name = { { false } }
#define static_branch_likely(k) ((k)->key.enabled)
#define static_branch_unlikely(k) ((k)->key.enabled)
#define static_branch_enable(k) ((k)->key.enabled = true)
#define static_branch_disable(k) ((k)->key.enabled = false)
#define static_key_enable(k) ((k)->enabled = true)
#define static_key_disable(k) ((k)->enabled = false)

/* Locks: nothing to lock. */
typedef int spinlock_t;
struct rw_semaphore { int unused; };
#define spin_lock_init(l) do { } while (0)
#define spin_lock(l) do { } while (0)
#define spin_unlock(l) do { } while (0)
#define spin_lock_irqsave(l, f) do { (void)(f); } while (0)
#define spin_unlock_irqrestore(l, f) do { (void)(f); } while (0)
#define init_rwsem(s) do { } while (0)
#define down_write(s) do { } while (0)
#define up_write(s) do { } while (0)
#define down_read(s) do { } while (0)
#define up_read(s) do { } while (0)
#define down_read_trylock(s) 1

/* Lists, as <linux/list.h>. */
struct list_head { struct list_head *next, *prev; };
#define LIST_HEAD_INIT(name) { &(name), &(name) }
#define INIT_LIST_HEAD(l) do { (l)->next = (l); (l)->prev = (l); } while (0)
static inline void list_add(struct list_head *n, struct list_head *head)
{
	n->next = head->next; n->prev = head; head->next->prev = n; head->next = n;
}
static inline void list_del(struct list_head *e)
{
	e->prev->next = e->next; e->next->prev = e->prev;
}
static inline void list_move(struct list_head *e, struct list_head *head)
{
	list_del(e); list_add(e, head);
}
static inline int list_empty(const struct list_head *h) { return h->next == h; }
static inline void list_splice_init(struct list_head *list, struct list_head *head)
{
	if (list_empty(list))
		return;
	struct list_head *first = list->next, *last = list->prev, *at = head->next;
	first->prev = head; head->next = first; last->next = at; at->prev = last;
	INIT_LIST_HEAD(list);
}
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(head, type, member) list_entry((head)->next, type, member)
#define list_for_each_entry(pos, head, member) \
	for (pos = list_entry((head)->next, __typeof__(*pos), member); \
	     &pos->member != (head); \
	     pos = list_entry(pos->member.next, __typeof__(*pos), member))
#define list_for_each_entry_safe(pos, n, head, member) \
	for (pos = list_entry((head)->next, __typeof__(*pos), member), \
	     n = list_entry(pos->member.next, __typeof__(*pos), member); \
	     &pos->member != (head); \
	     pos = n, n = list_entry(n->member.next, __typeof__(*n), member))

/* Pages: one struct page per guest frame, as the kernel's mem_map (model.c). */
struct page { struct list_head lru; };
struct page *model_alloc_4k(bool nosleep);
struct page *model_alloc_2m(void);
void model_free(struct page *page, unsigned int order);
void *model_page_address(struct page *page);
unsigned long model_virt_to_pfn(void *address);
unsigned long page_to_pfn(struct page *page);
struct page *pfn_to_page(unsigned long pfn);
unsigned long totalram_pages(void);
#define alloc_page(gfp) model_alloc_4k(false)
#define alloc_pages(gfp, order) model_alloc_2m()
#define balloon_page_alloc() model_alloc_4k(true)
#define __free_pages(page, order) model_free((page), (order))
#define free_page(address) do { if (address) model_free(pfn_to_page(model_virt_to_pfn((void *)(address))), 0); } while (0)
#define page_address(page) model_page_address(page)
#define virt_to_phys(address) ((unsigned long long)model_virt_to_pfn(address) << PAGE_SHIFT)
#define split_page(page, order) do { } while (0)
#define __SetPageOffline(page) do { } while (0)
#define __ClearPageOffline(page) do { } while (0)
enum vm_event_item { BALLOON_INFLATE, BALLOON_DEFLATE, BALLOON_MIGRATE };
#define __count_vm_events(e, n) do { } while (0)
#define __count_vm_event(e) do { } while (0)

/* Balloon compaction's lists (mm/balloon_compaction.c), without migration. */
struct balloon_dev_info {
	unsigned long isolated_pages;
	spinlock_t pages_lock;
	struct list_head pages;
};
static inline void balloon_devinfo_init(struct balloon_dev_info *b)
{
	b->isolated_pages = 0;
	INIT_LIST_HEAD(&b->pages);
}
static inline size_t balloon_page_list_enqueue(struct balloon_dev_info *b, struct list_head *pages)
{
	struct page *page, *tmp;
	size_t n = 0;
	list_for_each_entry_safe(page, tmp, pages, lru) {
		list_del(&page->lru);
		list_add(&page->lru, &b->pages);
		n++;
	}
	return n;
}
static inline size_t balloon_page_list_dequeue(struct balloon_dev_info *b, struct list_head *pages, size_t n_req_pages)
{
	struct page *page, *tmp;
	size_t n = 0;
	list_for_each_entry_safe(page, tmp, &b->pages, lru) {
		if (n == n_req_pages)
			break;
		list_del(&page->lru);
		list_add(&page->lru, pages);
		n++;
	}
	return n;
}

/* VMCI: the doorbell is always created, as the model says. */
struct vmci_handle { u32 context; u32 resource; };
#define VMCI_INVALID_ID 0xFFFFFFFFu
#define VMCI_INVALID_HANDLE ((struct vmci_handle){ VMCI_INVALID_ID, VMCI_INVALID_ID })
#define VMCI_SUCCESS 0
#define VMCI_FLAG_DELAYED_CB 0
#define VMCI_PRIVILEGE_FLAG_RESTRICTED 0
static inline bool vmci_handle_is_invalid(struct vmci_handle h) { return h.context == VMCI_INVALID_ID && h.resource == VMCI_INVALID_ID; }
static inline int vmci_doorbell_create(struct vmci_handle *h, int flags, int priv, void (*cb)(void *), void *data)
{
	(void)flags; (void)priv; (void)cb; (void)data;
	h->context = 3; h->resource = 1024;
	return VMCI_SUCCESS;
}
static inline void vmci_doorbell_destroy(struct vmci_handle h) { (void)h; }

/* The work queue and time: the harness calls the work function itself. */
struct work_struct { int unused; };
struct delayed_work { struct work_struct work; };
#define to_delayed_work(w) container_of(w, struct delayed_work, work)
#define INIT_DELAYED_WORK(w, f) do { } while (0)
#define queue_delayed_work(q, w, d) do { } while (0)
#define mod_delayed_work(q, w, d) do { } while (0)
#define cancel_delayed_work_sync(w) do { } while (0)
#define round_jiffies_relative(j) (j)
#define system_freezable_wq NULL
#define HZ 1000
extern unsigned long jiffies;
#define time_before(a, b) ((long)((a) - (b)) < 0)

/* The shrinker: registered, never called by the benchmark. */
struct shrink_control { unsigned long nr_to_scan; unsigned long nr_scanned; };
struct shrinker {
	unsigned long (*count_objects)(struct shrinker *, struct shrink_control *);
	unsigned long (*scan_objects)(struct shrinker *, struct shrink_control *);
	void *private_data;
};
static inline struct shrinker *shrinker_alloc(int flags, const char *name) { (void)flags; (void)name; return calloc(1, sizeof(struct shrinker)); }
static inline void shrinker_register(struct shrinker *s) { (void)s; }
static inline void shrinker_free(struct shrinker *s) { free(s); }

/* debugfs: the statistics are kept, the file is not made. */
struct seq_file { void *private; };
struct inode;
struct file;
#define seq_printf(f, ...) printf(__VA_ARGS__)
#define DEFINE_SHOW_ATTRIBUTE(name) static const int name##_fops = 0
#define debugfs_create_file(n, m, p, d, o) do { (void)(o); } while (0)
#define debugfs_lookup_and_remove(n, p) do { } while (0)
#define kzalloc(size, gfp) calloc(1, (size))
#define kfree(p) free(p)

/* The hypervisor check of vmballoon_init. */
enum x86_hypervisor_type { X86_HYPER_NATIVE, X86_HYPER_VMWARE };
extern enum x86_hypervisor_type x86_hyper_type;

/* The backdoor: one command to the reference monitor (model.c). */
unsigned long model_command(unsigned long cmd, unsigned long arg1, unsigned long arg2, unsigned long *ebx, unsigned long *ecx);

#endif
