"""Regenerate tests/data/touched/*/ with git format-patch from throwaway repositories.

Run: python3 tests/data/touched/make.py [output directory, default: this directory]
The repositories carry the kernel's "*.c diff=cpp" attribute, so hunk headers read as in
kernel patches.
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
SCRATCH = Path(tempfile.mkdtemp(prefix="wqci-touched-"))
ENV = {**os.environ, "GIT_AUTHOR_NAME": "Wqci Tester", "GIT_AUTHOR_EMAIL": "tester@example.org",
       "GIT_COMMITTER_NAME": "Wqci Tester", "GIT_COMMITTER_EMAIL": "tester@example.org",
       "GIT_AUTHOR_DATE": "2026-06-01T12:00:00Z", "GIT_COMMITTER_DATE": "2026-06-01T12:00:00Z"}


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=ENV).stdout


def write(repo, path, text):
    p = repo / path
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def new_repo(name):
    repo = SCRATCH / name
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, ".gitattributes", "*.c diff=cpp\n*.h diff=cpp\n")  # as in the kernel tree
    return repo


def commit(repo, msg):
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)


WORKQUEUE = """\
// SPDX-License-Identifier: GPL-2.0
/* A stand-in for kernel/workqueue.c: only the shapes the tests need. */
#include <linux/workqueue.h>

static void kick_bh_pool(struct worker_pool *pool)
{
	raise_softirq_irqoff(BH_SOFTIRQ);
}

/**
 * kick_pool - wake up an idle worker if necessary
 * @pool: pool to kick
 */
static bool kick_pool(struct worker_pool *pool)
{
	struct worker *worker = first_idle_worker(pool);

	if (!need_more_worker(pool) || !worker)
		return false;
	wake_up_process(worker->task);
	return true;
}

static int
count_workers(struct worker_pool *pool)
{
	return pool->nr_workers;
}

static void touch_wq_lockdep_map(struct workqueue_struct *wq)
{
	lock_map_acquire(&wq->lockdep_map);
	lock_map_release(&wq->lockdep_map);
}

void __flush_workqueue(struct workqueue_struct *wq)
{
	/* flush everything queued so far */
	touch_wq_lockdep_map(wq);
	wait_for_completion(&wq->done);
}

static void process_one_work(struct worker *worker, struct work_struct *work)
__releases(&pool->lock)
__acquires(&pool->lock)
{
	struct worker_pool *pool = worker->pool;

	raw_spin_unlock_irq(&pool->lock);
	work->func(work);
	raw_spin_lock_irq(&pool->lock);
}
"""

WORKQUEUE_H = """\
/* A stand-in for include/linux/workqueue.h. */
extern bool queue_work_on(int cpu, struct workqueue_struct *wq,
			  struct work_struct *work);

static inline bool queue_work(struct workqueue_struct *wq,
			      struct work_struct *work)
{
	return queue_work_on(WORK_CPU_UNBOUND, wq, work);
}
"""

WQ_OLD = """\
/* A file the tricky patch deletes. */
int old_helper(int x)
{
	return x + 1;
}
"""

WQ_A = """\
/* A file the tricky patch renames to wq_b.c and changes a little. */
#include <linux/workqueue.h>

static int a_setup(void)
{
	return 0;
}

int a_fn(int x)
{
	int y = x * 2;

	return y + 1;
}

int a_other(int x)
{
	return x - 1;
}
"""

NONL = "int nonl_fn(void)\n{\n\treturn 1;\n}"  # no newline at the end


def tricky():
    repo = new_repo("tricky")
    write(repo, "kernel/workqueue.c", WORKQUEUE)
    write(repo, "include/linux/workqueue.h", WORKQUEUE_H)
    write(repo, "kernel/wq_old.c", WQ_OLD)
    write(repo, "kernel/wq_a.c", WQ_A)
    write(repo, "lib/nonl.c", NONL)
    commit(repo, "base")
    wq = WORKQUEUE
    # a new function right after kick_bh_pool: the hunk header names kick_bh_pool
    wq = wq.replace("\traise_softirq_irqoff(BH_SOFTIRQ);\n}\n\n",
                    "\traise_softirq_irqoff(BH_SOFTIRQ);\n}\n\n"
                    "static struct task_struct *kick_pool_pick(struct worker_pool *pool,\n"
                    "\t\t\t\t\t  bool unbound)\n{\n\treturn first_idle_worker(pool)->task;\n}\n\n")
    # the return type of a split signature changes; the line with the name does not
    wq = wq.replace("static int\ncount_workers(", "static unsigned int\ncount_workers(")
    # a comment-only change inside a function changes no function
    wq = wq.replace("/* flush everything queued so far */", "/* flush all work queued so far */")
    # a change under a hunk header that is only a lock annotation
    wq = wq.replace("\twork->func(work);\n", "\ttrace_work_start(work);\n\twork->func(work);\n")
    write(repo, "kernel/workqueue.c", wq)
    h = WORKQUEUE_H.replace(
        "\t\t\t  struct work_struct *work);\n",
        "\t\t\t  struct work_struct *work);\nextern bool queue_work_prefer(struct workqueue_struct *wq,\n"
        "\t\t\t      struct work_struct *work);\n")
    h = h.replace("queue_work_on(WORK_CPU_UNBOUND, wq, work)", "queue_work_on(raw_smp_processor_id(), wq, work)")
    write(repo, "include/linux/workqueue.h", h)
    write(repo, "kernel/wq_new.c", "/* A new file. */\n#include <linux/workqueue.h>\n\nstatic struct worker *\n"
          "wq_new_pick(struct worker_pool *pool,\n\t    int flags)\n{\n\treturn NULL;\n}\n\n"
          "int wq_new_init(void)\n{\n\treturn wq_new_pick(NULL, 0) ? 0 : -ENOMEM;\n}\n")
    (repo / "kernel/wq_old.c").unlink()
    (repo / "kernel/wq_a.c").rename(repo / "kernel/wq_b.c")
    write(repo, "kernel/wq_b.c", WQ_A.replace("return y + 1;", "return y + 2;"))
    write(repo, "lib/nonl.c", NONL.replace("return 1;", "return 2;"))
    (repo / "firmware").mkdir()
    (repo / "firmware/blob.bin").write_bytes(bytes(range(256)))
    commit(repo, "workqueue: one patch with every tricky shape\n\nFor wqci's tests of pipeline/analysis/touched.py.")
    return repo


SPLAT_NBD = """\
/* A stand-in for drivers/block/nbd.c. */
static void recv_work(struct work_struct *work)
{
	struct recv_thread_args *args = container_of(work, struct recv_thread_args, work);

	nbd_config_put(args->nbd);
	kfree(args);
}
"""


def shift():
    repo = new_repo("shift")
    write(repo, "kernel/workqueue.c", WORKQUEUE)
    write(repo, "drivers/block/nbd.c", SPLAT_NBD)
    commit(repo, "base")
    wq = WORKQUEUE.replace("\tlock_map_release(&wq->lockdep_map);\n",
                           "\tlock_map_release(&wq->lockdep_map);\n\twq->touched = true;\n")
    wq = wq.replace("\twake_up_process(worker->task);\n", "\twake_up_process(READ_ONCE(worker->task));\n")
    write(repo, "kernel/workqueue.c", wq)
    commit(repo, "workqueue: mark touched workqueues\n\nFor wqci's tests of pipeline/analysis/touched.py.")
    wq = wq.replace("\traise_softirq_irqoff(BH_SOFTIRQ);\n",
                    "\tif (!pool)\n\t\treturn;\n\n\traise_softirq_irqoff(BH_SOFTIRQ);\n")
    wq = wq.replace("\twq->touched = true;\n", "\tWRITE_ONCE(wq->touched, true);\n")
    write(repo, "kernel/workqueue.c", wq)
    nbd = SPLAT_NBD.replace("\tkfree(args);\n", "\tkfree(args);\n\tnbd_put_work(work);\n")
    write(repo, "drivers/block/nbd.c", nbd)
    commit(repo, "workqueue, nbd: shift kick_bh_pool and put the work\n\n"
           "For wqci's tests of pipeline/analysis/touched.py.")
    return repo


def lkp():
    repo = new_repo("lkp")
    filler = lambda n: "/*\n" + "".join(f" * filler line {i}\n" for i in range(n)) + " */\n"
    # include/linux/list.h: list_add_tail's body at line 169
    list_h = filler(163) + ("static inline void list_add_tail(struct list_head *new, struct list_head *head)\n{\n"
                            "\tif (head)\n\t\tprev = head->prev;\n\t__list_add(new, prev, head);\n}\n")
    mutex = filler(589) + ("static int __mutex_lock_common(struct mutex *lock, unsigned int state)\n{\n"
                           + "".join(f"\tstep_{i}(lock);\n" for i in range(20)) + "\treturn 0;\n}\n")
    core = ("/* A stand-in for kernel/sched/core.c. */\nvoid sched_show_task(struct task_struct *p)\n{\n"
            "\tpr_info(\"task:%s\\n\", p->comm);\n}\n")
    write(repo, "include/linux/list.h", list_h)
    write(repo, "kernel/locking/mutex.c", mutex)
    write(repo, "kernel/sched/core.c", core)
    commit(repo, "base")
    lines = list_h.splitlines(keepends=True)
    assert lines[168] == "\t\tprev = head->prev;\n", lines[168]
    lines[168] = "\t\tprev = READ_ONCE(head->prev);\n"
    write(repo, "include/linux/list.h", "".join(lines))
    lines = mutex.splitlines(keepends=True)
    assert lines[599] == "\tstep_6(lock);\n", lines[599]
    lines[599] = "\tstep_6_locked(lock);\n"
    write(repo, "kernel/locking/mutex.c", "".join(lines))
    write(repo, "kernel/sched/core.c", core.replace("task:%s", "task:%-15s"))
    commit(repo, "list, mutex, sched: change the lines of a real lkp report\n\n"
           "For wqci's tests of pipeline/analysis/touched.py.")
    return repo


for name, make, extra in (("tricky", tricky, []), ("shift", shift, ["--cover-letter"]), ("lkp", lkp, [])):
    repo = make()
    out = OUT / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    n = int(git(repo, "rev-list", "--count", "HEAD")) - 1
    git(repo, "format-patch", "-q", "--zero-commit", "--no-signature", "-M", *extra, f"-{n}", "-o", str(out))
shutil.rmtree(SCRATCH)
