// SPDX-License-Identifier: GPL-2.0
/*
 * proxy_stress: the proxy-execution situations of "sched/locking: Add special
 * p->blocked_on==PROXY_WAKING value for proxy return-migration" and of the
 * v26 "Simple Donor Migration" discussion.
 *
 *  1. chain:    mutex chains across CPUs; the owner runs on one CPU, the
 *               waiters (donors) block on the chain from the others.
 *  2. affinity: donors whose affinity excludes the owner's CPU, so a proxy
 *               migration must be followed by a return migration; a donor that
 *               ever runs on a CPU outside its mask is a failure.
 *  3. ww_ab:    ww_mutex A/B cycles that must resolve by wound/wait back-off.
 *  4. signal:   donors blocked in mutex_lock_interruptible() get a signal and
 *               must return -EINTR promptly, not when the owner unlocks.
 *
 * Every waiter must get its lock within deadline_ms. One that does not is a
 * lost wakeup, reported with its blocked-on chain (the module's own record of
 * who waits on what and who owns it, plus the task's p->blocked_on).
 * Results are printed in KTAP; the module load returns 0.
 */
#define pr_fmt(fmt) fmt

#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sched/debug.h>
#include <linux/sched/signal.h>
#include <linux/signal.h>
#include <linux/slab.h>
#include <linux/ww_mutex.h>

#include "wqci_ktap.h"

static unsigned int duration_s = 12;
module_param(duration_s, uint, 0444);
MODULE_PARM_DESC(duration_s, "total run time, split between the chain, affinity and ww_ab scenarios");
static unsigned int chain_depth = 3;
module_param(chain_depth, uint, 0444);
MODULE_PARM_DESC(chain_depth, "mutexes in the chain");
static unsigned int donors = 4;
module_param(donors, uint, 0444);
MODULE_PARM_DESC(donors, "donor threads per scenario");
static unsigned int hold_us = 200;
module_param(hold_us, uint, 0444);
MODULE_PARM_DESC(hold_us, "how long an owner holds its lock, busy");
static unsigned int ww_pairs = 2;
module_param(ww_pairs, uint, 0444);
MODULE_PARM_DESC(ww_pairs, "A/B thread pairs in the ww_mutex scenario");
static unsigned int signal_rounds = 3;
module_param(signal_rounds, uint, 0444);
MODULE_PARM_DESC(signal_rounds, "rounds of the signal scenario");
static unsigned int signal_hold_ms = 2000;
module_param(signal_hold_ms, uint, 0444);
MODULE_PARM_DESC(signal_hold_ms, "how long the owner holds the lock the signalled donors wait on");
static unsigned int prompt_ms = 1000;
module_param(prompt_ms, uint, 0444);
MODULE_PARM_DESC(prompt_ms, "a signalled donor must be back within this");
static unsigned int deadline_ms = 10000;
module_param(deadline_ms, uint, 0444);
MODULE_PARM_DESC(deadline_ms, "a waiter without its lock this long is a lost wakeup");

#define MAX_THREADS	64
#define MAX_LOCKS	16

struct ps_thread;

struct ps_lock {
	struct mutex m;
	char name[16];
	struct ps_thread *owner;	/* the module's record, for reports */
};

struct ps_thread {
	struct task_struct *task;
	char name[24];
	int id;
	struct ps_lock *waiting_on;
	u64 wait_start_ns;
	unsigned long ops;
	unsigned long violations;
	bool reported;
	bool done;
	long result;			/* signal scenario: what the lock returned */
	u64 returned_ns;
};

static struct ps_lock locks[MAX_LOCKS];
static struct lock_class_key lock_keys[MAX_LOCKS];
static struct ps_thread threads[MAX_THREADS];
static unsigned int nr_threads;
static atomic_t lost = ATOMIC_INIT(0);
static u64 stop_ns;
static DEFINE_WW_CLASS(ps_ww_class);
static struct ww_mutex ww[2];
static atomic_t ww_backoffs = ATOMIC_INIT(0);

static bool time_up(void)
{
	return ktime_get_ns() >= READ_ONCE(stop_ns) || kthread_should_stop();
}

/* Publish what @t waits on; the start time is visible before the lock pointer. */
static void ps_waiting(struct ps_thread *t, struct ps_lock *l)
{
	WRITE_ONCE(t->wait_start_ns, ktime_get_ns());
	smp_store_release(&t->waiting_on, l);
}

static void ps_lock(struct ps_thread *t, struct ps_lock *l)
{
	ps_waiting(t, l);
	mutex_lock(&l->m);
	WRITE_ONCE(t->waiting_on, NULL);
	WRITE_ONCE(l->owner, t);
}

static void ps_unlock(struct ps_lock *l)
{
	WRITE_ONCE(l->owner, NULL);
	mutex_unlock(&l->m);
}

static bool ps_on_allowed_cpu(struct ps_thread *t)
{
	bool ok;

	preempt_disable();
	ok = cpumask_test_cpu(smp_processor_id(), current->cpus_ptr);
	preempt_enable();
	if (!ok)
		t->violations++;
	return ok;
}

/* "donor3 (cpu 5, state D, blocked_on lk1) -> lk1 owned by chain1 (cpu 2, ...) -> ..." */
static void ps_report_lost(struct ps_thread *t, u64 now)
{
	char chain[256];
	int len = 0, hops = 0;
	struct ps_thread *cur = t;

	while (cur && hops++ < MAX_LOCKS) {
		struct ps_lock *l = READ_ONCE(cur->waiting_on);
		struct task_struct *p = cur->task;

		len += scnprintf(chain + len, sizeof(chain) - len, "%s%s (cpu %d, state %c%s)",
				 hops > 1 ? " -> " : "", cur->name, task_cpu(p), task_state_to_char(p),
				 data_race(p->blocked_on) ? ", blocked_on set" : "");
		if (!l)
			break;
		len += scnprintf(chain + len, sizeof(chain) - len, " waits on %s owned by", l->name);
		cur = READ_ONCE(l->owner);
		if (!cur)
			len += scnprintf(chain + len, sizeof(chain) - len, " nobody (unlocked)");
	}
	ktap_diag("lost wakeup: %s waited %llu ms: %s", t->name,
		  (now - READ_ONCE(t->wait_start_ns)) / NSEC_PER_MSEC, chain);
	sched_show_task(t->task);
}

/* Waiters past the deadline, reported once each; returns how many are waiting at all. */
static int ps_check(void)
{
	int i, waiting = 0;

	for (i = 0; i < nr_threads; i++) {
		struct ps_thread *t = &threads[i];
		u64 now, since;

		if (READ_ONCE(t->done))
			continue;
		waiting++;
		if (t->reported || !smp_load_acquire(&t->waiting_on))
			continue;
		since = READ_ONCE(t->wait_start_ns);
		now = ktime_get_ns();
		if (since > now || now - since < (u64)deadline_ms * NSEC_PER_MSEC)
			continue;
		t->reported = true;
		atomic_inc(&lost);
		ps_report_lost(t, now);
	}
	return waiting;
}

static struct ps_thread *ps_spawn(int (*fn)(void *), const char *role, int id, const struct cpumask *mask)
{
	struct ps_thread *t;

	if (nr_threads >= MAX_THREADS)
		return NULL;
	t = &threads[nr_threads];
	memset(t, 0, sizeof(*t));
	t->id = id;
	snprintf(t->name, sizeof(t->name), "%s%d", role, id);
	t->task = kthread_create(fn, t, "ps_%s", t->name);
	if (IS_ERR(t->task))
		return NULL;
	get_task_struct(t->task);
	if (mask)
		set_cpus_allowed_ptr(t->task, mask);
	nr_threads++;
	wake_up_process(t->task);
	return t;
}

/* Wait for every thread of the scenario; report lost wakeups while waiting. */
static void ps_join(unsigned int first)
{
	unsigned int i;

	while (ps_check())
		msleep(100);
	for (i = first; i < nr_threads; i++)
		kthread_stop_put(threads[i].task);
}

static int ps_finish(struct ps_thread *t)
{
	WRITE_ONCE(t->done, true);
	while (!kthread_should_stop())
		schedule_timeout_interruptible(HZ / 10);
	return 0;
}

/* ---- 1. chain: chainK holds lkK and waits on lk(K-1); chain0 holds lk0 and works. */

static int chain_fn(void *arg)
{
	struct ps_thread *t = arg;

	while (!time_up()) {
		ps_lock(t, &locks[t->id]);
		if (t->id > 0) {
			ps_lock(t, &locks[t->id - 1]);
			udelay(hold_us / 4 + 1);
			ps_unlock(&locks[t->id - 1]);
		} else {
			udelay(hold_us);
		}
		ps_unlock(&locks[t->id]);
		t->ops++;
		cond_resched();
	}
	return ps_finish(t);
}

static int chain_donor_fn(void *arg)
{
	struct ps_thread *t = arg;

	while (!time_up()) {
		ps_lock(t, &locks[chain_depth - 1]);
		ps_on_allowed_cpu(t);
		ps_unlock(&locks[chain_depth - 1]);
		t->ops++;
		usleep_range(50, 200);
	}
	return ps_finish(t);
}

/* ---- 2. affinity: owner pinned to one CPU, donors allowed everywhere else. */

static int aff_owner_fn(void *arg)
{
	struct ps_thread *t = arg;

	while (!time_up()) {
		ps_lock(t, &locks[MAX_LOCKS - 1]);
		ps_on_allowed_cpu(t);
		udelay(hold_us);
		ps_unlock(&locks[MAX_LOCKS - 1]);
		t->ops++;
		usleep_range(20, 100);
	}
	return ps_finish(t);
}

static int aff_donor_fn(void *arg)
{
	struct ps_thread *t = arg;

	while (!time_up()) {
		ps_lock(t, &locks[MAX_LOCKS - 1]);
		ps_on_allowed_cpu(t);
		ps_unlock(&locks[MAX_LOCKS - 1]);
		ps_on_allowed_cpu(t);
		t->ops++;
		usleep_range(20, 100);
	}
	return ps_finish(t);
}

/* ---- 3. ww_ab: even threads take A then B, odd ones B then A. */

static int ww_fn(void *arg)
{
	struct ps_thread *t = arg;
	struct ww_mutex *first = &ww[t->id & 1], *second = &ww[!(t->id & 1)];

	while (!time_up()) {
		struct ww_acquire_ctx ctx;
		struct ww_mutex *held = first, *want = second;
		int err;

		ww_acquire_init(&ctx, &ps_ww_class);
		ps_waiting(t, &locks[MAX_LOCKS - 2]);
		err = ww_mutex_lock(held, &ctx);
		while (!err) {
			err = ww_mutex_lock(want, &ctx);
			if (err != -EDEADLK)
				break;
			/* wounded or died: back off, then take the contended lock first */
			atomic_inc(&ww_backoffs);
			ww_mutex_unlock(held);
			ww_mutex_lock_slow(want, &ctx);
			swap(held, want);
			err = 0;
		}
		WRITE_ONCE(t->waiting_on, NULL);
		ww_acquire_done(&ctx);
		if (!err) {
			udelay(hold_us / 4 + 1);
			ww_mutex_unlock(want);
			t->ops++;
		} else {
			t->violations++;
		}
		ww_mutex_unlock(held);
		ww_acquire_fini(&ctx);
		cond_resched();
	}
	return ps_finish(t);
}

/* ---- 4. signal: donors in mutex_lock_interruptible() on a long-held lock. */

static u64 sig_unlock_ns;

static int sig_owner_fn(void *arg)
{
	struct ps_thread *t = arg;

	ps_lock(t, &locks[MAX_LOCKS - 3]);
	msleep(signal_hold_ms);
	WRITE_ONCE(sig_unlock_ns, ktime_get_ns());
	ps_unlock(&locks[MAX_LOCKS - 3]);
	return ps_finish(t);
}

static int sig_donor_fn(void *arg)
{
	struct ps_thread *t = arg;
	struct ps_lock *l = &locks[MAX_LOCKS - 3];

	allow_signal(SIGUSR1);
	ps_waiting(t, l);
	t->result = mutex_lock_interruptible(&l->m);
	t->returned_ns = ktime_get_ns();
	WRITE_ONCE(t->waiting_on, NULL);
	if (!t->result) {
		WRITE_ONCE(l->owner, t);
		ps_unlock(l);
	}
	flush_signals(current);
	return ps_finish(t);
}

static const struct cpumask *cpu_mask(unsigned int nth)
{
	unsigned int cpu = cpumask_nth(nth % num_online_cpus(), cpu_online_mask);

	return cpumask_of(cpu);
}

static unsigned long ps_sum(unsigned int first, bool violations)
{
	unsigned long sum = 0;
	unsigned int i;

	for (i = first; i < nr_threads; i++)
		sum += violations ? threads[i].violations : threads[i].ops;
	return sum;
}

static void ps_scenario_end(int n, const char *name, unsigned int first, int lost_before,
			    const char *what, bool extra_ok)
{
	unsigned long ops = ps_sum(first, false), bad = ps_sum(first, true);
	int lost_now = atomic_read(&lost) - lost_before;

	ktap_diag("metric: ops=%lu %s=%lu lost_wakeups=%d", ops, what, bad, lost_now);
	ktap_result(n, name, ops > 0 && bad == 0 && lost_now == 0 && extra_ok);
}

static int __init proxy_stress_init(void)
{
	unsigned int i, first, ncpu = num_online_cpus(), slice;
	cpumask_var_t others;
	int before;

	if (!zalloc_cpumask_var(&others, GFP_KERNEL))
		return -ENOMEM;
	chain_depth = clamp(chain_depth, 1U, (unsigned int)MAX_LOCKS - 4);
	donors = clamp(donors, 1U, (unsigned int)(MAX_THREADS - chain_depth) / 2);
	ww_pairs = clamp(ww_pairs, 1U, (unsigned int)MAX_THREADS / 4);
	/* one lockdep class per lock: the chain nests them in a fixed order */
	for (i = 0; i < MAX_LOCKS; i++) {
		snprintf(locks[i].name, sizeof(locks[i].name), "lk%u", i);
		__mutex_init(&locks[i].m, locks[i].name, &lock_keys[i]);
	}
	ww_mutex_init(&ww[0], &ps_ww_class);
	ww_mutex_init(&ww[1], &ps_ww_class);
	strscpy(locks[MAX_LOCKS - 2].name, "ww_ab");	/* stands for the ww pair in reports */
	slice = max(duration_s * 1000 / 3, 1000U);

	ktap_header(4);
	ktap_diag("proxy_stress: %u CPUs, chain depth %u, %u donors, %u ww pairs, %u ms per scenario, deadline %u ms",
		  ncpu, chain_depth, donors, ww_pairs, slice, deadline_ms);

	/* 1. chain: chain links spread over CPUs, donors on the CPUs after them */
	before = atomic_read(&lost);
	first = nr_threads;
	WRITE_ONCE(stop_ns, ktime_get_ns() + (u64)slice * NSEC_PER_MSEC);
	for (i = 0; i < chain_depth; i++)
		ps_spawn(chain_fn, "chain", i, cpu_mask(i));
	for (i = 0; i < donors; i++)
		ps_spawn(chain_donor_fn, "donor", i, cpu_mask(chain_depth + i));
	ps_join(first);
	ps_scenario_end(1, "chain", first, before, "affinity_violations", true);

	/* 2. affinity: owner on the first CPU, donors anywhere but there */
	before = atomic_read(&lost);
	first = nr_threads;
	cpumask_copy(others, cpu_online_mask);
	cpumask_clear_cpu(cpumask_first(cpu_online_mask), others);
	if (cpumask_empty(others)) {
		ktap_skip(2, "affinity", "needs two CPUs");
	} else {
		WRITE_ONCE(stop_ns, ktime_get_ns() + (u64)slice * NSEC_PER_MSEC);
		ps_spawn(aff_owner_fn, "owner", 0, cpu_mask(0));
		for (i = 0; i < donors; i++)
			ps_spawn(aff_donor_fn, "remote", i, others);
		ps_join(first);
		ps_scenario_end(2, "affinity", first, before, "affinity_violations", true);
	}

	/* 3. ww_ab */
	before = atomic_read(&lost);
	first = nr_threads;
	WRITE_ONCE(stop_ns, ktime_get_ns() + (u64)slice * NSEC_PER_MSEC);
	for (i = 0; i < 2 * ww_pairs; i++)
		ps_spawn(ww_fn, "ww", i, cpu_mask(i));
	ps_join(first);
	ktap_diag("metric: backoffs=%d", atomic_read(&ww_backoffs));
	ps_scenario_end(3, "ww_ab", first, before, "failed_acquires", true);

	/* 4. signal: rounds of donors interrupted while the owner sleeps on the lock */
	{
		unsigned long slow = 0, not_eintr = 0, waited_unlock = 0;
		u64 worst_ms = 0;

		before = atomic_read(&lost);
		for (i = 0; i < signal_rounds; i++) {
			unsigned int j, round = nr_threads;
			u64 sent;

			WRITE_ONCE(sig_unlock_ns, 0);
			if (!ps_spawn(sig_owner_fn, "sigowner", i, cpu_mask(i)))
				break;
			msleep(50);
			for (j = 0; j < donors; j++)
				ps_spawn(sig_donor_fn, "sigdonor", i * donors + j, cpu_mask(i + 1 + j));
			msleep(min(signal_hold_ms / 4, 500U));
			sent = ktime_get_ns();
			for (j = round + 1; j < nr_threads; j++)
				send_sig(SIGUSR1, threads[j].task, 1);
			ps_join(round);
			for (j = round + 1; j < nr_threads; j++) {
				struct ps_thread *t = &threads[j];
				u64 ms = t->returned_ns > sent ? (t->returned_ns - sent) / NSEC_PER_MSEC : 0;

				worst_ms = max(worst_ms, ms);
				t->ops++;
				if (t->result != -EINTR) {
					not_eintr++;
					ktap_diag("%s: mutex_lock_interruptible() returned %ld, not -EINTR", t->name, t->result);
				} else if (ms > prompt_ms) {
					slow++;
					ktap_diag("%s: -EINTR after %llu ms (prompt: %u ms)", t->name, ms, prompt_ms);
				}
				if (sig_unlock_ns && t->returned_ns >= sig_unlock_ns) {
					waited_unlock++;
					ktap_diag("%s: returned only after the owner unlocked", t->name);
				}
			}
		}
		ktap_diag("metric: rounds=%u worst_return_ms=%llu not_eintr=%lu slow=%lu after_unlock=%lu lost_wakeups=%d",
			  signal_rounds, worst_ms, not_eintr, slow, waited_unlock, atomic_read(&lost) - before);
		ktap_result(4, "signal", !not_eintr && !slow && !waited_unlock && atomic_read(&lost) == before);
	}
	free_cpumask_var(others);
	return 0;
}

static void __exit proxy_stress_exit(void)
{
}

module_init(proxy_stress_init);
module_exit(proxy_stress_exit);
MODULE_DESCRIPTION("wqci: proxy-execution stress (chains, return migration, ww A/B, signals)");
MODULE_LICENSE("GPL");
