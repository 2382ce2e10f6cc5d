"""The tree the wq-idle mboxes were written against, rebuilt bit for bit.

Fixed names, dates and contents make fixed commit ids, so the `base-commit:` line
recorded in wq-idle-v1-v2.mbox names a commit a test can create:

- base():     BASE, the commit the series was posted against (BASE_COMMIT);
- moved_on(): BASE plus one upstream commit that rewrites the line patch 2 changes,
              so the series applies on BASE but not on the tree's HEAD;
- lookalike(): a tree whose HEAD has BASE's files but another commit id (a tree
              without the base-commit, where the series still applies).

Run as a script to print the commit ids: `python tests/data/mbox/wq_idle_tree.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_COMMIT = "dd3ea52a6562933ae320c071a7fbc7a5295983cb"  # base(); the mbox records it

WORKQUEUE_C = """\
// SPDX-License-Identifier: GPL-2.0-only
/*
 * kernel/workqueue.c - generic async execution with shared worker pool
 *
 * A cut-down stand-in for the real file: wqci's unit tests only apply
 * patches to it, nothing compiles it.
 */
#include <linux/workqueue.h>
#include "workqueue_internal.h"

static bool kick_pool(struct worker_pool *pool)
{
	struct worker *worker = first_idle_worker(pool);

	lockdep_assert_held(&pool->lock);

	if (!need_more_worker(pool) || !worker)
		return false;

	wake_up_process(worker->task);
	return true;
}

static void idle_worker_timeout(struct timer_list *t)
{
	struct worker_pool *pool = from_timer(pool, t, idle_timer);
	bool do_cull = false;

	if (work_pending(&pool->idle_cull_work))
		return;

	raw_spin_lock_irq(&pool->lock);
	if (too_many_workers(pool))
		do_cull = true;
	raw_spin_unlock_irq(&pool->lock);

	if (do_cull)
		queue_work(system_unbound_wq, &pool->idle_cull_work);
}
"""

INTERNAL_H = """\
/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _KERNEL_WORKQUEUE_INTERNAL_H
#define _KERNEL_WORKQUEUE_INTERNAL_H

#define WORKER_DIE		(1 << 1)
#define WORKER_IDLE		(1 << 2)

#endif /* _KERNEL_WORKQUEUE_INTERNAL_H */
"""

UPSTREAM_LINE = "\tif (too_many_workers(pool) && pool->nr_idle > 2)\n"


def _git(repo: Path, *args: str, date: str = "2026-05-01T10:00:00+0000") -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Up Stream", "GIT_AUTHOR_EMAIL": "upstream@example.org",
           "GIT_COMMITTER_NAME": "Up Stream", "GIT_COMMITTER_EMAIL": "upstream@example.org",
           "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    return subprocess.run(["git", "-C", str(repo), "-c", "commit.gpgsign=false", *args], check=True,
                          capture_output=True, text=True, env=env).stdout


def _write(repo: Path, workqueue_c: str) -> None:
    (repo / "kernel").mkdir(parents=True, exist_ok=True)
    (repo / "kernel" / "workqueue.c").write_text(workqueue_c)
    (repo / "kernel" / "workqueue_internal.h").write_text(INTERNAL_H)


def base(repo: Path, date: str = "2026-05-01T10:00:00+0000") -> str:
    """A new repository at BASE (with another date: the same files, another commit)."""
    repo.mkdir(parents=True, exist_ok=True)
    _git(repo, "init", "-q", "-b", "master")
    _write(repo, WORKQUEUE_C)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "workqueue: the tree the wq-idle series was posted against", date=date)
    return _git(repo, "rev-parse", "HEAD").strip()


def moved_on(repo: Path) -> tuple[str, str]:
    """(BASE, HEAD): upstream changed the line patch 2 of the series changes."""
    first = base(repo)
    _write(repo, WORKQUEUE_C.replace("\tif (too_many_workers(pool))\n", UPSTREAM_LINE))
    _git(repo, "commit", "-q", "-am", "workqueue: keep two idle workers from the cull", date="2026-05-20T09:00:00+0000")
    return first, _git(repo, "rev-parse", "HEAD").strip()


def lookalike(repo: Path) -> str:
    return base(repo, date="2026-05-02T10:00:00+0000")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print("base:     ", base(Path(tmp) / "a"))
        print("moved on: ", moved_on(Path(tmp) / "b"))
        print("lookalike:", lookalike(Path(tmp) / "c"))
    sys.exit(0)
