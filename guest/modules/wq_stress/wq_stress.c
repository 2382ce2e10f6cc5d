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
 * its queue time, CPU, node and scope, followed by the kernel's task and
 * workqueue dump (sysrq t).
 *
 * A stranded item of seed 001 waits "until the next pool event kicks somebody
 * else", and with several producers that event comes within milliseconds. So
 * each item also records the pool it ran on and when it started: an item that
 * started only after a queue_work() of another burst to its pool, while that
 * pool had started none of our items for rescue_min_ms or more, was rescued
 * by that event (test "rescue").
 * With quiet=1 no producer queues until every item of the last round has run,
 * so nothing of ours can rescue an item and one left without a worker is
 * stranded for real. skip_kick=N forces N such items through the wq-amplify
 * carry patch (workqueue.amplify_skip_kick), to prove the detection.
 *
 * Results are printed in KTAP when the run ends; the module load returns 0 and
 * the module is removed by the caller.
 */
#define pr_fmt(fmt) fmt

#include <linux/cpu.h>
#include <linux/ctype.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
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
MODULE_PARM_DESC(max_samples, "items whose latency and start are kept for the percentiles and the rescue check");
static bool quiet;
module_param(quiet, bool, 0444);
MODULE_PARM_DESC(quiet, "bursts in rounds: nobody queues until every item of the last round has run or is stranded");
static unsigned int skip_kick;
module_param(skip_kick, uint, 0444);
MODULE_PARM_DESC(skip_kick, "force this many lone items whose kick is skipped (wq-amplify carry patch)");
static unsigned int rescue_min_ms = 10;
module_param(rescue_min_ms, uint, 0444);
MODULE_PARM_DESC(rescue_min_ms, "an item counts as rescued when its pool stalled at least this long before the rescuing event");
static bool fail_on_rescue;
module_param(fail_on_rescue, bool, 0444);
MODULE_PARM_DESC(fail_on_rescue, "the rescue test fails when an item was rescued by a later event");
static int wake_delay_us = -1;
module_param(wake_delay_us, int, 0444);
MODULE_PARM_DESC(wake_delay_us, "set workqueue.amplify_wake_delay_us for the run (-1: leave it)");
static int unlocked_wake_delay_us = -1;
module_param(unlocked_wake_delay_us, int, 0444);
MODULE_PARM_DESC(unlocked_wake_delay_us, "set workqueue.amplify_unlocked_wake_delay_us for the run (-1: leave it)");

#define NR_WQS_MAX	8
#define MAX_REPORTS	8
#define MAX_SOURCES	24
/* knobs and counters of the wq-amplify carry patch, when the kernel has it */
#define AMPLIFY(name)	"/sys/module/workqueue/parameters/amplify_" name

static const char * const scopes[] = { "cpu", "smt", "cache", "cache_shard", "numa", "system" };
/* the carry patch's counters, reported as their change over the run */
static const char * const amp_counters[] = {
	"culled_kicked", "culled_new", "culled_pending", "culled_pending_busy", "culled_pending_woken",
	"culled_pending_alone", "unlocked_wakes", "kicks_skipped",
};

struct wqs_producer;

struct wqs_item {
	struct work_struct work;
	struct wqs_producer *owner;
	u64 queued_ns;
	u32 burst;
	int cpu;
	int scope;
	int wq;
	bool done;
};

/* an item that ran: when it was queued and started, in which burst, on which pool */
struct wqs_rec {
	u64 queued_ns;
	u64 started_ns;
	u32 burst;
	u32 pool;
};

struct wqs_producer {
	int id;
	int cpu;
	struct task_struct *task;
	struct wqs_item *items;
	unsigned int nr;	/* items in the current burst */
	atomic_t pending;
	wait_queue_head_t wait;
	u64 queued;
};

struct wqs_rescue {
	unsigned int checked;
	unsigned int candidates;	/* started after a later event to a stalled pool */
	unsigned int stalls[4];		/* their stalls: < 1 ms, < 10 ms, < 100 ms, longer */
	unsigned int rescued;		/* those whose stall was rescue_min_ms or more */
	u32 p50_us, max_us;		/* how long the rescued ones waited */
};

struct wqs_source {
	char key[64];
	long long count;
};

/* the carry patch's knobs, counters and culls by waker at one time */
struct wqs_amp {
	long long knobs[3];	/* see wqs_read_knobs() */
	long long counters[ARRAY_SIZE(amp_counters)];
	struct wqs_source sources[MAX_SOURCES];
	int nr_sources;
};

static struct workqueue_struct *wqs[NR_WQS_MAX];
static char wq_names[NR_WQS_MAX][16];
static struct wqs_producer *prods;
static unsigned int nr_prods;
static u32 *samples;
static struct wqs_rec *recs;
static atomic_t nr_samples = ATOMIC_INIT(0);
static atomic_t burst_seq = ATOMIC_INIT(0);
static atomic64_t items_run = ATOMIC64_INIT(0);
static atomic64_t items_cancelled = ATOMIC64_INIT(0);
static atomic_t stranded = ATOMIC_INIT(0);
static atomic_t reports = ATOMIC_INIT(0);
static atomic_t cur_scope = ATOMIC_INIT(-1);
static atomic_t running = ATOMIC_INIT(0);
static DECLARE_WAIT_QUEUE_HEAD(all_done);
static u64 start_ns, end_ns;
static unsigned long switches, switch_failures, hp_cycles, hp_failures;

/* quiet mode: the round barrier; its last arrival decides about the next round */
static DEFINE_SPINLOCK(round_lock);
static DECLARE_WAIT_QUEUE_HEAD(round_wait);
static unsigned int round_members, round_waiting, round_gen;
static bool round_stop, round_lone;

/* skip_kick: lone items tried and stranded on purpose (producer 0, or the round's last arrival) */
static unsigned int lone_calls, skip_tries, skip_done;
static bool skip_missing;

static void wqs_work_fn(struct work_struct *work)
{
	struct wqs_item *it = container_of(work, struct wqs_item, work);
	struct wqs_producer *p = it->owner;
	u64 now = ktime_get_ns(), queued = READ_ONCE(it->queued_ns);
	unsigned int i = atomic_inc_return(&nr_samples) - 1;

	if (i < max_samples) {
		samples[i] = min_t(u64, (now - queued) / NSEC_PER_USEC, U32_MAX);
		if (recs) {
			/* process_one_work() left the pool's id in work->data before calling us */
			recs[i].queued_ns = queued;
			recs[i].started_ns = now;
			recs[i].burst = it->burst;
			recs[i].pool = (atomic_long_read(&work->data) >> WORK_OFFQ_POOL_SHIFT) &
				       WORK_OFFQ_POOL_NONE;
		}
	}
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
	int i, lost = 0, first = atomic_read(&stranded) == 0;

	for (i = 0; i < p->nr; i++) {
		struct wqs_item *it = &p->items[i];

		if (READ_ONCE(it->done))
			continue;
		atomic_inc(&stranded);
		if (atomic_inc_return(&reports) > MAX_REPORTS)
			continue;
		ktap_diag("stranded work: wq=%s item=%d producer=%d queued_at_ms=%llu cpu=%d node=%d scope=%s waited_ms=%llu%s",
			  wq_names[it->wq], i, p->id, (it->queued_ns - start_ns) / NSEC_PER_MSEC,
			  it->cpu, cpu_to_node(it->cpu), scope_name(it->scope),
			  (now - it->queued_ns) / NSEC_PER_MSEC, quiet ? " quiet" : "");
	}
	if (first && dump) {
		ktap_diag("workqueue state at the first stranded item: sysrq t follows");
		handle_sysrq('t');
	}
	if (wait_event_timeout(p->wait, atomic_read(&p->pending) == 0,
			       msecs_to_jiffies(4 * deadline_ms)))
		return;
	for (i = 0; i < p->nr; i++) {
		struct wqs_item *it = &p->items[i];

		if (!READ_ONCE(it->done) && cancel_work_sync(&it->work)) {
			atomic64_inc(&items_cancelled);
			lost++;
			if (atomic_dec_and_test(&p->pending))
				break;
		}
	}
	ktap_diag("producer %d: %d items still stranded after %u ms were cancelled",
		  p->id, lost, 5 * deadline_ms);
}

static void wqs_queue_burst(struct wqs_producer *p, unsigned int n)
{
	u32 id = atomic_inc_return(&burst_seq);
	int i;

	p->nr = n;
	atomic_set(&p->pending, n);
	for (i = 0; i < n; i++) {
		struct wqs_item *it = &p->items[i];

		it->done = false;
		it->burst = id;
		it->cpu = raw_smp_processor_id();
		it->scope = atomic_read(&cur_scope);
		it->wq = (p->id + i) % nr_wqs;
		WRITE_ONCE(it->queued_ns, ktime_get_ns());
		queue_work(wqs[it->wq], &it->work);
	}
	p->queued += n;
}

/*
 * skip_kick: whether the next burst (quiet: the next round) is a lone item.
 * Lone ones alternate with ordinary ones, so the pools have idle workers to
 * kick, until skip_kick of them had their kick skipped (or too many tries).
 */
static bool wqs_lone_due(void)
{
	if (!skip_kick || skip_missing || skip_done >= skip_kick || skip_tries >= 4 * skip_kick + 4)
		return false;
	return ++lone_calls % 2 == 0;
}

/*
 * One item alone, with the carry patch told to drop the wakeup of the first
 * idle worker this task kicks: unless something else wakes a worker of its
 * pool, nothing runs it. A kick that did not happen (no idle worker, or one a
 * series had already claimed) leaves the skip armed: disarm it, try later.
 */
static void wqs_queue_lone(struct wqs_producer *p)
{
	skip_tries++;
	if (wqci_sysfs_write(AMPLIFY("skip_kick"), "1")) {
		skip_missing = true;
		wqs_queue_burst(p, burst);
		return;
	}
	wqs_queue_burst(p, 1);
	if (wqci_sysfs_read_ull(AMPLIFY("skip_kick")) == 0)
		skip_done++;
	else
		wqci_sysfs_write(AMPLIFY("skip_kick"), "0");
}

/* Quiet mode: wait for the other producers; true when the run is over. */
static bool wqs_round_end(bool *lone)
{
	unsigned int gen;
	bool stop;

	spin_lock(&round_lock);
	gen = round_gen;
	if (++round_waiting == round_members) {
		round_waiting = 0;
		round_stop = ktime_get_ns() >= end_ns;
		round_lone = !round_stop && wqs_lone_due();
		WRITE_ONCE(round_gen, gen + 1);
		spin_unlock(&round_lock);
		wake_up_all(&round_wait);
	} else {
		spin_unlock(&round_lock);
		wait_event_idle(round_wait, READ_ONCE(round_gen) != gen);
	}
	/* nobody changes these before this producer arrives again */
	spin_lock(&round_lock);
	stop = round_stop;
	*lone = round_lone;
	spin_unlock(&round_lock);
	return stop;
}

static int wqs_producer_fn(void *arg)
{
	struct wqs_producer *p = arg;
	bool lone = false;

	for (;;) {
		if (!quiet) {
			if (ktime_get_ns() >= end_ns)
				break;
			lone = p->id == 0 && wqs_lone_due();
		}
		if (!lone)
			wqs_queue_burst(p, burst);
		else if (p->id == 0)
			wqs_queue_lone(p);
		else
			p->nr = 0;	/* quiet: the others sit the lone round out */
		if (p->nr && !wait_event_timeout(p->wait, atomic_read(&p->pending) == 0,
						 msecs_to_jiffies(deadline_ms)))
			wqs_stranded(p);
		if (quiet && wqs_round_end(&lone))
			break;
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

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* by pool, then in queueing order */
static int cmp_rec(const void *a, const void *b)
{
	const struct wqs_rec *x = a, *y = b;

	if (x->pool != y->pool)
		return x->pool < y->pool ? -1 : 1;
	return cmp_u64(&x->queued_ns, &y->queued_ns);
}

static u32 percentile(const u32 *v, unsigned int n, unsigned int pct)
{
	return n ? v[min(n - 1, (n * pct) / 100)] : 0;
}

/*
 * recs[g0..g1) ran on one pool, in queueing order, and starts[g0..g1) are
 * their start times in order. recs[i] is a rescue candidate when the first
 * item of another burst queued after it to the same pool (the "next pool
 * event") was queued before it started, and no item of ours started on that
 * pool from its queueing until that event: no worker of the pool was taking
 * items. Items later in its own burst do not count as events: they are
 * queued microseconds apart. *stall_ns is how long the pool stalled before
 * the event. A short stall is as likely a slow wakeup that another burst's
 * kick overtook, hence rescue_min_ms.
 */
static bool wqs_rescued(unsigned int i, unsigned int g0, unsigned int g1, const u64 *starts, u64 *stall_ns)
{
	const struct wqs_rec *x = &recs[i];
	unsigned int j = i + 1, lo = g0, hi = g1;

	while (j < g1 && recs[j].burst == x->burst)
		j++;
	if (j == g1 || x->started_ns <= recs[j].queued_ns)
		return false;
	while (lo < hi) {	/* the first start at or after x was queued */
		unsigned int mid = lo + (hi - lo) / 2;

		if (starts[mid] < x->queued_ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	*stall_ns = recs[j].queued_ns - x->queued_ns;
	return lo == g1 || starts[lo] >= recs[j].queued_ns;
}

/* The rescued items among the n recorded ones, with the delay each suffered. */
static int wqs_find_rescued(unsigned int n, struct wqs_rescue *out)
{
	u64 *starts = kvmalloc_array(max(n, 1U), sizeof(*starts), GFP_KERNEL);
	u32 *delays = kvmalloc_array(max(n, 1U), sizeof(*delays), GFP_KERNEL);
	unsigned int g0, g1, i;

	memset(out, 0, sizeof(*out));
	if (!starts || !delays) {
		kvfree(starts);
		kvfree(delays);
		return -ENOMEM;
	}
	sort(recs, n, sizeof(*recs), cmp_rec, NULL);
	for (g0 = 0; g0 < n; g0 = g1) {
		for (g1 = g0; g1 < n && recs[g1].pool == recs[g0].pool; g1++)
			starts[g1] = recs[g1].started_ns;
		sort(starts + g0, g1 - g0, sizeof(*starts), cmp_u64, NULL);
		for (i = g0; i < g1; i++) {
			u64 stall_us, us;

			if (!wqs_rescued(i, g0, g1, starts, &stall_us))
				continue;
			stall_us /= NSEC_PER_USEC;
			out->candidates++;
			out->stalls[stall_us < 1000 ? 0 : stall_us < 10000 ? 1 : stall_us < 100000 ? 2 : 3]++;
			if (stall_us < (u64)rescue_min_ms * USEC_PER_MSEC)
				continue;
			us = (recs[i].started_ns - recs[i].queued_ns) / NSEC_PER_USEC;
			delays[out->rescued++] = min_t(u64, us, U32_MAX);
		}
	}
	sort(delays, out->rescued, sizeof(*delays), cmp_u32, NULL);
	out->checked = n;
	out->p50_us = percentile(delays, out->rescued, 50);
	out->max_us = out->rescued ? delays[out->rescued - 1] : 0;
	kvfree(starts);
	kvfree(delays);
	return 0;
}

/* "kick_pool.isra.0:unlocked" -> "kick_pool_unlocked": a metric key part */
static void wqs_source_key(const char *name, char *key, size_t size)
{
	const char *colon = strchr(name, ':');
	size_t len = strcspn(name, ".:"), i;

	snprintf(key, size, "%.*s%s%s", (int)len, name, colon ? "_" : "", colon ? colon + 1 : "");
	for (i = 0; key[i]; i++)
		if (!isalnum(key[i]) && key[i] != '_')
			key[i] = '_';
}

/* The carry patch's culls by waker ("<call site>[:unlocked] <count>" lines), summed by key. */
static int wqs_read_sources(struct wqs_source *src)
{
	char *buf = kmalloc(PAGE_SIZE, GFP_KERNEL), *cur, *line;
	int n = 0, i;

	if (!buf)
		return -ENOMEM;
	if (wqci_sysfs_read(AMPLIFY("cull_sources"), buf, PAGE_SIZE) < 0) {
		kfree(buf);
		return -ENOENT;
	}
	cur = buf;
	while ((line = strsep(&cur, "\n"))) {
		char name[64], key[64];
		long long count;

		if (sscanf(line, "%63s %lld", name, &count) != 2)
			continue;
		wqs_source_key(name, key, sizeof(key));
		for (i = 0; i < n && strcmp(src[i].key, key); i++)
			;
		if (i == n) {
			if (n == MAX_SOURCES)
				continue;
			strscpy(src[n].key, key, sizeof(src[n].key));
			src[n++].count = 0;
		}
		src[i].count += count;
	}
	kfree(buf);
	return n;
}

/* The carry patch's knobs during the run: idle_timeout_ms, wake_delay_us, unlocked_wake_delay_us. */
static void wqs_read_knobs(long long *v)
{
	v[0] = wqci_sysfs_read_ull(AMPLIFY("idle_timeout_ms"));
	v[1] = wqci_sysfs_read_ull(AMPLIFY("wake_delay_us"));
	v[2] = wqci_sysfs_read_ull(AMPLIFY("unlocked_wake_delay_us"));
}

/* The carry patch's knobs, counters and culls by waker now; -1 for what this kernel does not have. */
static void wqs_snapshot(struct wqs_amp *amp)
{
	char path[96];
	int i;

	for (i = 0; i < ARRAY_SIZE(amp_counters); i++) {
		snprintf(path, sizeof(path), AMPLIFY("%s"), amp_counters[i]);
		amp->counters[i] = wqci_sysfs_read_ull(path);
	}
	amp->nr_sources = wqs_read_sources(amp->sources);
	wqs_read_knobs(amp->knobs);
}

/* What the carry patch counted during the run, as metrics of the test that follows. */
static void wqs_report_amp(const struct wqs_amp *before, const struct wqs_amp *after)
{
	char line[256];
	int i, j, len = 0;

	for (i = 0; i < ARRAY_SIZE(amp_counters); i++)
		if (before->counters[i] >= 0 && after->counters[i] >= 0)
			len += scnprintf(line + len, sizeof(line) - len, " %s=%lld",
					 amp_counters[i], after->counters[i] - before->counters[i]);
	if (len)
		ktap_diag("metric:%s", line);
	if (before->nr_sources < 0)
		return;
	/* one line per waker whose culls grew */
	for (i = 0; i < after->nr_sources; i++) {
		long long was = 0;

		for (j = 0; j < before->nr_sources; j++)
			if (!strcmp(before->sources[j].key, after->sources[i].key))
				was = before->sources[j].count;
		if (after->sources[i].count > was)
			ktap_diag("metric: culled_kicked_%s=%lld", after->sources[i].key,
				  after->sources[i].count - was);
	}
}

/* The carry patch's delay knobs: set those given for the run (old value in *old, -1 when untouched). */
static void wqs_set_knob(const char *name, int want, long long *old)
{
	char path[96], val[16];

	snprintf(path, sizeof(path), AMPLIFY("%s"), name);
	*old = -1;
	if (want < 0)
		return;
	*old = wqci_sysfs_read_ull(path);
	snprintf(val, sizeof(val), "%d", want);
	if (*old < 0 || wqci_sysfs_write(path, val)) {
		ktap_diag("workqueue.amplify_%s: not in this kernel (needs --amplify), %s=%d ignored",
			  name, name, want);
		*old = -1;
	}
}

static void wqs_restore_knob(const char *name, long long old)
{
	char path[96], val[24];

	if (old < 0)
		return;
	snprintf(path, sizeof(path), AMPLIFY("%s"), name);
	snprintf(val, sizeof(val), "%lld", old);
	wqci_sysfs_write(path, val);
}

static void wqs_report_rescue(unsigned int n, u64 ran)
{
	struct wqs_rescue r;

	if (!recs || wqs_find_rescued(n, &r)) {
		ktap_skip(2, "rescue", "no memory for the start records");
		return;
	}
	ktap_diag("metric: rescued=%u rescued_p50_us=%u rescued_max_us=%u rescue_min_ms=%u rescue_checked=%u",
		  r.rescued, r.p50_us, r.max_us, rescue_min_ms, r.checked);
	ktap_diag("metric: rescue_candidates=%u stall_under_1ms=%u stall_1_10ms=%u stall_10_100ms=%u stall_over_100ms=%u",
		  r.candidates, r.stalls[0], r.stalls[1], r.stalls[2], r.stalls[3]);
	if (r.checked < ran)
		ktap_diag("only the first %u of %llu items were checked (max_samples)", r.checked, ran);
	if (r.rescued)
		ktap_diag("%u items started only after another burst's queue_work to their pool, which had started none of ours for %u ms or more (longest wait %u us)",
			  r.rescued, rescue_min_ms, r.max_us);
	ktap_result(2, "rescue", !(fail_on_rescue && r.rescued));
}

/* The producers, pinned one per CPU unless CPUs come and go; their number. */
static unsigned int wqs_create_producers(void)
{
	unsigned int i, made = 0;
	int cpu = cpumask_first(cpu_online_mask);

	for (i = 0; i < nr_prods; i++) {
		struct wqs_producer *p = &prods[i];
		int j;

		p->id = i;
		p->cpu = cpu;
		init_waitqueue_head(&p->wait);
		p->items = kcalloc(burst, sizeof(*p->items), GFP_KERNEL);
		if (!p->items)
			continue;
		for (j = 0; j < burst; j++) {
			INIT_WORK(&p->items[j].work, wqs_work_fn);
			p->items[j].owner = p;
		}
		p->task = kthread_create(wqs_producer_fn, p, "wqs_prod/%u", i);
		if (IS_ERR(p->task)) {
			p->task = NULL;
			continue;
		}
		get_task_struct(p->task);
		if (!hotplug)
			set_cpus_allowed_ptr(p->task, cpumask_of(cpu));
		made++;
		cpu = cpumask_next(cpu, cpu_online_mask);
		if (cpu >= nr_cpu_ids)
			cpu = cpumask_first(cpu_online_mask);
	}
	return made;
}

/* The whole run, from the first burst to the last item: the items queued, and how long it took. */
static u64 wqs_run(u64 *wall_ms)
{
	struct task_struct *scoper = NULL, *plugger = NULL;
	u64 queued = 0;
	unsigned int i;

	start_ns = ktime_get_ns();
	end_ns = start_ns + (u64)duration_s * NSEC_PER_SEC;
	if (scope_ms)
		scoper = wqs_start(wqs_scope_fn, NULL, "wqs_scope", 0);
	if (hotplug)
		plugger = wqs_start(wqs_hotplug_fn, NULL, "wqs_hotplug", 0);
	/* all created before any runs: the round barrier counts on round_members */
	round_members = wqs_create_producers();
	atomic_set(&running, round_members);
	for (i = 0; i < nr_prods; i++)
		if (prods[i].task)
			wake_up_process(prods[i].task);
	if (round_members)
		wait_event(all_done, atomic_read(&running) == 0);
	*wall_ms = (ktime_get_ns() - start_ns) / NSEC_PER_MSEC;
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
	return queued;
}

static void wqs_report(u64 queued, u64 wall_ms, const struct wqs_amp *before, const struct wqs_amp *after)
{
	u64 ran = atomic64_read(&items_run), cancelled = atomic64_read(&items_cancelled);
	unsigned int n = min_t(unsigned int, atomic_read(&nr_samples), max_samples);

	/* after the stranded work reports, so that a failed deadline is named by the first of them */
	ktap_diag("wq_stress: %u producers, %u workqueues, %u s, burst %u, gap %u ms, deadline %u ms, scope switch %u ms, hotplug %s, quiet %s, skip_kick %u",
		  nr_prods, nr_wqs, duration_s, burst, gap_ms, deadline_ms, scope_ms, hotplug ? "on" : "off",
		  quiet ? "on" : "off", skip_kick);
	if (before->knobs[0] >= 0)
		ktap_diag("amplify: idle_timeout_ms=%lld wake_delay_us=%lld unlocked_wake_delay_us=%lld",
			  before->knobs[0], before->knobs[1], before->knobs[2]);
	ktap_diag("metric: stranded=%d cancelled=%llu quiet=%d", atomic_read(&stranded), cancelled, quiet);
	wqs_report_amp(before, after);
	if (skip_kick)
		ktap_diag("skip_kick: %u of %u lone items had their kick skipped, in %u tries%s",
			  skip_done, skip_kick, skip_tries,
			  skip_missing ? " (no workqueue.amplify_skip_kick: needs --amplify)" : "");
	if (atomic_read(&stranded))
		ktap_diag("%d items missed the %u ms deadline", atomic_read(&stranded), deadline_ms);
	ktap_result(1, "deadline", atomic_read(&stranded) == 0);

	wqs_report_rescue(n, ran);

	sort(samples, n, sizeof(*samples), cmp_u32, NULL);
	ktap_diag("metric: items=%llu queued=%llu wall_ms=%llu items_per_s=%llu lat_p50_us=%u lat_p99_us=%u lat_max_us=%u",
		  ran, queued, wall_ms, wall_ms ? ran * 1000 / wall_ms : 0,
		  percentile(samples, n, 50), percentile(samples, n, 99), n ? samples[n - 1] : 0);
	if (ran + cancelled != queued || cancelled)
		ktap_diag("%llu items queued, %llu ran, %llu cancelled", queued, ran, cancelled);
	ktap_result(3, "all_items_ran", ran == queued && queued > 0);

	if (!scope_ms) {
		ktap_skip(4, "scope_switch", "scope_ms=0");
	} else {
		ktap_diag("metric: switches=%lu failures=%lu", switches, switch_failures);
		ktap_result(4, "scope_switch", switches > 0 && switch_failures == 0);
	}
	if (!hotplug) {
		ktap_skip(5, "hotplug", "hotplug=0");
	} else {
		ktap_diag("metric: cycles=%lu failures=%lu", hp_cycles, hp_failures);
		ktap_result(5, "hotplug", hp_cycles > 0 && hp_failures == 0);
	}
}

static int __init wq_stress_init(void)
{
	struct wqs_amp *amp = kcalloc(2, sizeof(*amp), GFP_KERNEL);
	long long old_wake, old_unlocked;
	u64 queued, wall_ms;
	unsigned int i;
	int err = -ENOMEM;

	nr_wqs = clamp(nr_wqs, 1U, (unsigned int)NR_WQS_MAX);
	burst = max(burst, 1U);
	nr_prods = producers ?: num_online_cpus();
	samples = kvcalloc(max_samples, sizeof(*samples), GFP_KERNEL);
	/* without room for these, everything but the rescue check still runs */
	recs = kvcalloc(max_samples, sizeof(*recs), GFP_KERNEL);
	prods = kcalloc(nr_prods, sizeof(*prods), GFP_KERNEL);
	if (!samples || !prods || !amp)
		goto out_free;
	for (i = 0; i < nr_wqs; i++) {
		snprintf(wq_names[i], sizeof(wq_names[i]), "wq_stress%u", i);
		wqs[i] = alloc_workqueue("%s", WQ_UNBOUND | WQ_SYSFS, 0, wq_names[i]);
		if (!wqs[i])
			goto out_wq;
	}
	ktap_header(5);
	wqs_set_knob("wake_delay_us", wake_delay_us, &old_wake);
	wqs_set_knob("unlocked_wake_delay_us", unlocked_wake_delay_us, &old_unlocked);

	wqs_snapshot(&amp[0]);
	queued = wqs_run(&wall_ms);
	wqs_snapshot(&amp[1]);
	if (skip_kick)
		wqci_sysfs_write(AMPLIFY("skip_kick"), "0");
	wqs_restore_knob("wake_delay_us", old_wake);
	wqs_restore_knob("unlocked_wake_delay_us", old_unlocked);
	wqs_report(queued, wall_ms, &amp[0], &amp[1]);

	err = 0;
	for (i = 0; i < nr_prods; i++)
		kfree(prods[i].items);
out_wq:
	for (i = 0; i < nr_wqs; i++)
		if (wqs[i])
			destroy_workqueue(wqs[i]);
out_free:
	kfree(amp);
	kfree(prods);
	kvfree(recs);
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
