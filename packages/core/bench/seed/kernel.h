/*
 * Just enough of the kernel for vmw_balloon.c to compile and run in
 * userspace, against the reference guest and monitor of SIMULATION.md
 * (model.c). Used by the benchmark only: `npm run bench` compares the seed's
 * own C with the TypeScript engine on the same machine, in the same run.
 */
#ifndef VMBALLOON_BENCH_KERNEL_H
#define VMBALLOON_BENCH_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef uint32_t u32;
typedef unsigned int gfp_t;

#define __init
#define __exit
#define MODULE_AUTHOR(x)
#define MODULE_DESCRIPTION(x)
#define MODULE_VERSION(x)
#define MODULE_ALIAS(x)
#define MODULE_LICENSE(x)
#define module_init(f)
#define module_exit(f)
#define THIS_MODULE NULL
#define KBUILD_MODNAME "vmw_balloon"
#define pr_debug(...) do { } while (0)
#define pr_err(...) do { } while (0)
#define cond_resched() do { } while (0)
#define max(a, b) ((a) > (b) ? (a) : (b))
#define min(a, b) ((a) < (b) ? (a) : (b))
#define ENOMEM 12
#define EIO 5
#define ENODEV 19
#define S_IRUGO 0444
#define IS_ERR(p) 0
#define PTR_ERR(p) 0
#define __GFP_HIGHMEM 1u
#define __GFP_NOWARN 2u
#define GFP_HIGHUSER 4u

/* Lists, as <linux/list.h>. */
struct list_head { struct list_head *next, *prev; };
#define INIT_LIST_HEAD(l) do { (l)->next = (l); (l)->prev = (l); } while (0)
static inline void list_add(struct list_head *n, struct list_head *head)
{
	n->next = head->next; n->prev = head; head->next->prev = n; head->next = n;
}
static inline void list_del(struct list_head *e)
{
	e->prev->next = e->next; e->next->prev = e->prev;
}
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_for_each_entry_safe(pos, n, head, member) \
	for (pos = list_entry((head)->next, __typeof__(*pos), member), \
	     n = list_entry(pos->member.next, __typeof__(*pos), member); \
	     &pos->member != (head); \
	     pos = n, n = list_entry(n->member.next, __typeof__(*n), member))

/* Pages: one struct page per guest frame, as the kernel's mem_map. */
struct page { struct list_head lru; };
struct page *alloc_page(gfp_t flags);
void __free_page(struct page *page);
unsigned long page_to_pfn(struct page *page);

struct sysinfo { unsigned long totalram; };
void si_meminfo(struct sysinfo *info);

/* The work queue: the harness calls the work function itself. */
struct work_struct { int unused; };
struct delayed_work { struct work_struct work; };
#define to_delayed_work(w) container_of(w, struct delayed_work, work)
#define INIT_DELAYED_WORK(w, f) do { } while (0)
#define queue_delayed_work(q, w, d) do { } while (0)
#define cancel_delayed_work_sync(w) do { } while (0)
#define round_jiffies_relative(j) (j)
#define HZ 1
#define system_freezable_wq NULL

/* debugfs: the statistics are kept (CONFIG_DEBUG_FS), the file is not made. */
#define CONFIG_DEBUG_FS 1
struct seq_file { void *private; };
struct inode { void *i_private; };
struct file;
struct dentry;
struct file_operations { void *owner; int (*open)(struct inode *, struct file *); void *read, *llseek; int (*release)(struct inode *, struct file *); };
#define seq_printf(f, ...) printf(__VA_ARGS__)
#define seq_read NULL
#define seq_lseek NULL
static inline int single_open(struct file *f, int (*show)(struct seq_file *, void *), void *d) { (void)f; (void)show; (void)d; return 0; }
static inline int single_release(struct inode *i, struct file *f) { (void)i; (void)f; return 0; }
static inline struct dentry *debugfs_create_file(const char *n, int m, void *p, void *d, const struct file_operations *o)
{ (void)n; (void)m; (void)p; (void)d; (void)o; return NULL; }
static inline void debugfs_remove(struct dentry *d) { (void)d; }

/* The hypervisor check of vmballoon_init. */
struct hypervisor_x86 { int unused; };
extern const struct hypervisor_x86 x86_hyper_vmware;
extern const struct hypervisor_x86 *x86_hyper;

/* The backdoor: one command to the reference monitor (model.c). */
unsigned long model_command(unsigned long cmd, unsigned long arg, unsigned long *result);

#endif
