// SPDX-License-Identifier: GPL-2.0
/*
 * wq_stress: unbound workqueues under the conditions the fastwake series
 * changes: kick_pool() wakeups from __queue_work() and process_one_work(),
 * and idle-worker culling.
 *
 * Producers on different CPUs queue bursts of work items to WQ_UNBOUND |
 * WQ_SYSFS workqueues while a thread switches the workqueues' affinity_scope
 * underneath them (and, with hotplug=1, another takes CPUs offline and back).
 * Idle gaps between bursts let workers go idle and be culled. Every item must
 * run within deadline_ms; one that does not is reported as stranded work, with
 * its queue time, CPU, node and scope, followed by the kernel's workqueue dump.
 *
 * Results are printed in KTAP when the run ends; the module load returns 0 and
 * the module is removed by the caller.
 */
#define pr_fmt(fmt) fmt

#include <linux/cpu.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/sysrq.h>
#include <linux/topology.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "wqci_ktap.h"

static unsigned int duration_s = 20;
module_param(duration_s, uint, 0444);
MODULE_PARM_DESC(duration_s, "how long producers queue bursts");
static unsigned int producers;
module_param(producers, uint, 0444);
MODULE_PARM_DESC(producers, "producer threads (0: one per online CPU)");
static unsigned int burst = 64;
module_param(burst, uint, 0444);
MODULE_PARM_DESC(burst, "items each producer queues per burst");
static unsigned int gap_ms = 30;
module_param(gap_ms, uint, 0444);
MODULE_PARM_DESC(gap_ms, "idle gap between bursts, so workers go idle and get culled");
static unsigned int nr_wqs = 2;
module_param(nr_wqs, uint, 0444);
MODULE_PARM_DESC(nr_wqs, "unbound workqueues to spread the items over");
static unsigned int deadline_ms = 5000;
module_param(deadline_ms, uint, 0444);
MODULE_PARM_DESC(deadline_ms, "an item not run this long after queueing is stranded");
static unsigned int scope_ms = 100;
module_param(scope_ms, uint, 0444);
MODULE_PARM_DESC(scope_ms, "affinity_scope switch interval (0: no switching)");
static bool hotplug;
module_param(hotplug, bool, 0444);
MODULE_PARM_DESC(hotplug, "take CPUs offline and back online during the run");
static unsigned int hotplug_ms = 300;
module_param(hotplug_ms, uint, 0444);
MODULE_PARM_DESC(hotplug_ms, "how long a CPU stays offline");
static bool dump = true;
module_param(dump, bool, 0444);
MODULE_PARM_DESC(dump, "dump task and workqueue state (sysrq t) at the first stranded item");
static unsigned int max_samples = 1 << 18;
module_param(max_samples, uint, 0444);
MODULE_PARM_DESC(max_samples, "latency samples kept for the percentiles");

#define NR_WQS_MAX	8
#define MAX_REPORTS	8
/* counters of the wq-amplify carry patch, when the kernel has it */
#define KICKED_PATH	"/sys/module/workqueue/parameters/amplify_culled_kicked"
#define NEW_PATH	"/sys/module/workqueue/parameters/amplify_culled_new"

static const char * const scopes[] = { "cpu", "smt", "cache", "cache_shard", "numa", "system" };

struct wqs_producer;

struct wqs_item {
	struct work_struct work;
	struct wqs_producer *owner;
	u64 queued_ns;
	int cpu;
	int scope;
	int wq;
	bool done;
};

struct wqs_producer {
	int id;
	int cpu;
	struct task_struct *task;
	struct wqs_item *items;
	atomic_t pending;
	wait_queue_head_t wait;
	u64 queued;
};

static struct workqueue_struct *wqs[NR_WQS_MAX];
static char wq_names[NR_WQS_MAX][16];
static struct wqs_producer *prods;
static unsigned int nr_prods;
static u32 *samples;
static atomic_t nr_samples = ATOMIC_INIT(0);
static atomic64_t items_run = ATOMIC64_INIT(0);
static atomic64_t items_cancelled = ATOMIC64_INIT(0);
static atomic_t stranded = ATOMIC_INIT(0);
static atomic_t reports = ATOMIC_INIT(0);
static atomic_t cur_scope = ATOMIC_INIT(-1);
static atomic_t running = ATOMIC_INIT(0);
static DECLARE_WAIT_QUEUE_HEAD(all_done);
static u64 start_ns, end_ns;
static unsigned long switches, switch_failures, hp_cycles, hp_failures;

static void wqs_work_fn(struct work_struct *work)
{
	struct wqs_item *it = container_of(work, struct wqs_item, work);
	struct wqs_producer *p = it->owner;
	u64 lat = ktime_get_ns() - READ_ONCE(it->queued_ns);
	unsigned int i = atomic_inc_return(&nr_samples) - 1;

	if (i < max_samples)
		samples[i] = min_t(u64, lat / NSEC_PER_USEC, U32_MAX);
	atomic64_inc(&items_run);
	WRITE_ONCE(it->done, true);
	if (atomic_dec_and_test(&p->pending))
		wake_up(&p->wait);
}

static const char *scope_name(int scope)
{
	return scope >= 0 && scope < ARRAY_SIZE(scopes) ? scopes[scope] : "default";
}

/* Items of @p that missed the deadline: report them, wait longer, then cancel. */
static void wqs_stranded(struct wqs_producer *p)
{
	u64 now = ktime_get_ns();
	int i, first = atomic_read(&stranded) == 0;

	for (i = 0; i < burst; i++) {
		struct wqs_item *it = &p->items[i];

		if (READ_ONCE(it->done))
			continue;
		atomic_inc(&stranded);
		if (atomic_inc_return(&reports) > MAX_REPORTS)
			continue;
		ktap_diag("stranded work: wq=%s item=%d producer=%d queued_at_ms=%llu cpu=%d node=%d scope=%s waited_ms=%llu",
			  wq_names[it->wq], i, p->id, (it->queued_ns - start_ns) / NSEC_PER_MSEC,
			  it->cpu, cpu_to_node(it->cpu), scope_name(it->scope),
			  (now - it->queued_ns) / NSEC_PER_MSEC);
	}
	if (first && dump) {
		ktap_diag("workqueue state at the first stranded item: sysrq t follows");
		handle_sysrq('t');
	}
	if (wait_event_timeout(p->wait, atomic_read(&p->pending) == 0,
			       msecs_to_jiffies(4 * deadline_ms)))
		return;
	for (i = 0; i < burst; i++) {
		struct wqs_item *it = &p->items[i];

		if (!READ_ONCE(it->done) && cancel_work_sync(&it->work)) {
			atomic64_inc(&items_cancelled);
			atomic_dec(&p->pending);
		}
	}
	ktap_diag("producer %d: %d items still stranded after %u ms were cancelled",
		  p->id, burst - atomic_read(&p->pending), 5 * deadline_ms);
}

static int wqs_producer_fn(void *arg)
{
	struct wqs_producer *p = arg;
	int i;

	while (!kthread_should_stop() && ktime_get_ns() < end_ns) {
		atomic_set(&p->pending, burst);
		for (i = 0; i < burst; i++) {
			struct wqs_item *it = &p->items[i];

			it->done = false;
			it->cpu = raw_smp_processor_id();
			it->scope = atomic_read(&cur_scope);
			it->wq = (p->id + i) % nr_wqs;
			WRITE_ONCE(it->queued_ns, ktime_get_ns());
			queue_work(wqs[it->wq], &it->work);
		}
		p->queued += burst;
		if (!wait_event_timeout(p->wait, atomic_read(&p->pending) == 0,
					msecs_to_jiffies(deadline_ms)))
			wqs_stranded(p);
		msleep(gap_ms);
	}
	if (atomic_dec_and_test(&running))
		wake_up(&all_done);
	while (!kthread_should_stop())
		schedule_timeout_interruptible(HZ / 10);
	return 0;
}

static int wqs_scope_fn(void *arg)
{
	char path[96];
	int scope = 0, i;

	while (!kthread_should_stop()) {
		bool ok = true;

		for (i = 0; i < nr_wqs; i++) {
			snprintf(path, sizeof(path), "/sys/devices/virtual/workqueue/%s/affinity_scope",
				 wq_names[i]);
			if (wqci_sysfs_write(path, scopes[scope]))
				ok = false;
		}
		atomic_set(&cur_scope, scope);
		if (ok)
			switches++;
		else
			switch_failures++;
		scope = (scope + 1) % ARRAY_SIZE(scopes);
		schedule_timeout_interruptible(msecs_to_jiffies(scope_ms));
	}
	return 0;
}

static int wqs_hotplug_fn(void *arg)
{
	unsigned int cpu = 0;

	while (!kthread_should_stop()) {
		cpu = cpumask_next(cpu, cpu_online_mask);
		if (cpu >= nr_cpu_ids)
			cpu = cpumask_next(0, cpu_online_mask);
		if (cpu >= nr_cpu_ids) {
			hp_failures++;
			break;
		}
		if (remove_cpu(cpu)) {
			hp_failures++;
		} else {
			schedule_timeout_interruptible(msecs_to_jiffies(hotplug_ms));
			if (add_cpu(cpu))
				hp_failures++;
			else
				hp_cycles++;
		}
		schedule_timeout_interruptible(msecs_to_jiffies(hotplug_ms));
	}
	while (!kthread_should_stop())
		schedule_timeout_interruptible(HZ / 10);
	return 0;
}

static struct task_struct *wqs_start(int (*fn)(void *), void *arg, const char *name, int id)
{
	struct task_struct *t = kthread_create(fn, arg, "%s/%d", name, id);

	if (!IS_ERR(t)) {
		get_task_struct(t);
		wake_up_process(t);
	}
	return t;
}

static int cmp_u32(const void *a, const void *b)
{
	u32 x = *(const u32 *)a, y = *(const u32 *)b;

	return x < y ? -1 : x > y;
}

static u32 percentile(unsigned int n, unsigned int pct)
{
	return n ? samples[min(n - 1, (n * pct) / 100)] : 0;
}

static int __init wq_stress_init(void)
{
	struct task_struct *scoper = NULL, *plugger = NULL;
	long long kicked_before, kicked_after, new_before, new_after;
	u64 queued = 0, ran, cancelled, wall_ms;
	unsigned int n, i;
	int cpu, err = -ENOMEM;

	nr_wqs = clamp(nr_wqs, 1U, (unsigned int)NR_WQS_MAX);
	burst = max(burst, 1U);
	nr_prods = producers ?: num_online_cpus();
	samples = kvcalloc(max_samples, sizeof(*samples), GFP_KERNEL);
	prods = kcalloc(nr_prods, sizeof(*prods), GFP_KERNEL);
	if (!samples || !prods)
		goto out_free;
	for (i = 0; i < nr_wqs; i++) {
		snprintf(wq_names[i], sizeof(wq_names[i]), "wq_stress%u", i);
		wqs[i] = alloc_workqueue("%s", WQ_UNBOUND | WQ_SYSFS, 0, wq_names[i]);
		if (!wqs[i])
			goto out_wq;
	}
	ktap_header(4);
	ktap_diag("wq_stress: %u producers, %u workqueues, %u s, burst %u, gap %u ms, deadline %u ms, scope switch %u ms, hotplug %s",
		  nr_prods, nr_wqs, duration_s, burst, gap_ms, deadline_ms, scope_ms, hotplug ? "on" : "off");
	kicked_before = wqci_sysfs_read_ull(KICKED_PATH);
	new_before = wqci_sysfs_read_ull(NEW_PATH);

	start_ns = ktime_get_ns();
	end_ns = start_ns + (u64)duration_s * NSEC_PER_SEC;
	if (scope_ms)
		scoper = wqs_start(wqs_scope_fn, NULL, "wqs_scope", 0);
	if (hotplug)
		plugger = wqs_start(wqs_hotplug_fn, NULL, "wqs_hotplug", 0);
	atomic_set(&running, nr_prods);
	cpu = cpumask_first(cpu_online_mask);
	for (i = 0; i < nr_prods; i++) {
		struct wqs_producer *p = &prods[i];
		int j;

		p->id = i;
		p->cpu = cpu;
		init_waitqueue_head(&p->wait);
		p->items = kcalloc(burst, sizeof(*p->items), GFP_KERNEL);
		p->task = ERR_PTR(-ENOMEM);
		if (p->items) {
			for (j = 0; j < burst; j++) {
				INIT_WORK(&p->items[j].work, wqs_work_fn);
				p->items[j].owner = p;
			}
			p->task = kthread_create(wqs_producer_fn, p, "wqs_prod/%u", i);
		}
		if (IS_ERR(p->task)) {
			p->task = NULL;
			if (atomic_dec_and_test(&running))
				break;
			continue;
		}
		get_task_struct(p->task);
		/* pinned unless CPUs come and go under it */
		if (!hotplug)
			set_cpus_allowed_ptr(p->task, cpumask_of(cpu));
		wake_up_process(p->task);
		cpu = cpumask_next(cpu, cpu_online_mask);
		if (cpu >= nr_cpu_ids)
			cpu = cpumask_first(cpu_online_mask);
	}
	wait_event(all_done, atomic_read(&running) == 0);
	wall_ms = (ktime_get_ns() - start_ns) / NSEC_PER_MSEC;
	for (i = 0; i < nr_prods; i++) {
		if (prods[i].task) {
			kthread_stop_put(prods[i].task);
			queued += prods[i].queued;
		}
	}
	if (!IS_ERR_OR_NULL(scoper))
		kthread_stop_put(scoper);
	if (!IS_ERR_OR_NULL(plugger))
		kthread_stop_put(plugger);
	for (i = 0; i < nr_wqs; i++)
		flush_workqueue(wqs[i]);
	kicked_after = wqci_sysfs_read_ull(KICKED_PATH);
	new_after = wqci_sysfs_read_ull(NEW_PATH);

	ran = atomic64_read(&items_run);
	cancelled = atomic64_read(&items_cancelled);
	n = min_t(unsigned int, atomic_read(&nr_samples), max_samples);
	sort(samples, n, sizeof(*samples), cmp_u32, NULL);

	if (kicked_before >= 0 && kicked_after >= 0 && new_before >= 0 && new_after >= 0)
		ktap_diag("metric: stranded=%d cancelled=%llu culled_kicked=%lld culled_new=%lld",
			  atomic_read(&stranded), cancelled, kicked_after - kicked_before, new_after - new_before);
	else
		ktap_diag("metric: stranded=%d cancelled=%llu", atomic_read(&stranded), cancelled);
	if (atomic_read(&stranded))
		ktap_diag("%d items missed the %u ms deadline", atomic_read(&stranded), deadline_ms);
	ktap_result(1, "deadline", atomic_read(&stranded) == 0);

	ktap_diag("metric: items=%llu queued=%llu wall_ms=%llu items_per_s=%llu lat_p50_us=%u lat_p99_us=%u lat_max_us=%u",
		  ran, queued, wall_ms, wall_ms ? ran * 1000 / wall_ms : 0,
		  percentile(n, 50), percentile(n, 99), n ? samples[n - 1] : 0);
	if (ran + cancelled != queued || cancelled)
		ktap_diag("%llu items queued, %llu ran, %llu cancelled", queued, ran, cancelled);
	ktap_result(2, "all_items_ran", ran == queued && queued > 0);

	if (!scope_ms) {
		ktap_skip(3, "scope_switch", "scope_ms=0");
	} else {
		ktap_diag("metric: switches=%lu failures=%lu", switches, switch_failures);
		ktap_result(3, "scope_switch", switches > 0 && switch_failures == 0);
	}
	if (!hotplug) {
		ktap_skip(4, "hotplug", "hotplug=0");
	} else {
		ktap_diag("metric: cycles=%lu failures=%lu", hp_cycles, hp_failures);
		ktap_result(4, "hotplug", hp_cycles > 0 && hp_failures == 0);
	}
	err = 0;
	for (i = 0; i < nr_prods; i++)
		kfree(prods[i].items);
out_wq:
	for (i = 0; i < nr_wqs; i++)
		if (wqs[i])
			destroy_workqueue(wqs[i]);
out_free:
	kfree(prods);
	kvfree(samples);
	return err;
}

static void __exit wq_stress_exit(void)
{
}

module_init(wq_stress_init);
module_exit(wq_stress_exit);
MODULE_DESCRIPTION("wqci: unbound workqueue stress (kick wakeups vs. idle-worker culling)");
MODULE_LICENSE("GPL");
