"""/proc/lock_stat parsing and its cases, on a dump recorded from a real lockstat-flavour guest."""

import pytest

from pipeline.model.cases import ModuleRun, SuiteRun
from pipeline.suites import lockstat
from tests.conftest import DATA

DUMP = (DATA / "lockstat" / "x86_64-test_workqueue.txt").read_text()


def test_class_lines_parse_with_their_columns():
    stats = lockstat.parse(DUMP)
    assert stats["&pool->lock"] == lockstat.LockStat(contentions=16157, acquisitions=138220, wait_us=59501270.24,
                                                      hold_us=9879011.33)
    assert stats["&rq->__lock"] == lockstat.LockStat(1919, 1915970, 1109290.14, 13103351.94)
    assert stats["&wq->mutex"] == lockstat.LockStat(0, 82, 0.0, 841.65)
    # contention-point lines ("&pool->lock  2362  [<...>] worker_thread+0xb1") are not classes
    assert all(not name.startswith("-") and "[<" not in name for name in stats)


def test_versions_subclasses_and_read_write_sides_sum_under_one_name():
    text = ("                             &pool->lock:   1   2   0.10  1.00  3.00  1.50   4   10   0.1  2.0  20.00  2.00\n"
            "                           &pool->lock/1:   0   1   0.10  1.00  1.00  1.00   0    5   0.1  2.0   5.00  1.00\n"
            "                         &mm->mmap_lock-W:  0   0   0.00  0.00  0.00  0.00   0    3   0.1  2.0   6.00  2.00\n"
            "                         &mm->mmap_lock-R:  0   0   0.00  0.00  0.00  0.00   0    7   0.1  2.0   7.00  1.00\n")
    stats = lockstat.parse(text)
    assert stats == {"&pool->lock": lockstat.LockStat(3, 15, 4.0, 25.0),
                     "&mm->mmap_lock": lockstat.LockStat(0, 10, 0.0, 13.0)}


def test_metrics_are_per_acquisition():
    m = lockstat.parse(DUMP)["&pool->lock"].metrics()
    assert m["acquisitions"] == 138220
    assert m["hold_us_per_acq"] == pytest.approx(9879011.33 / 138220)
    assert m["contentions_per_acq"] == pytest.approx(16157 / 138220)
    assert m["wait_us_per_acq"] == pytest.approx(59501270.24 / 138220)


def test_cases_name_each_class_and_a_class_never_taken_reads_zero():
    mod = ModuleRun(variant="", command="modprobe test_workqueue", exit_code=1, output="", log="", duration=1.0,
                    lock_stat=DUMP)
    cases = lockstat.cases(SuiteRun("test_workqueue", (mod,)), ("&pool->lock", "nosuch_lock"))
    assert [c.name for c in cases] == ["test_workqueue.lockstat.pool-lock", "test_workqueue.lockstat.nosuch_lock"]
    assert cases[0].properties["lock_class"] == "&pool->lock"
    assert cases[1].metrics["acquisitions"] == 0.0 and cases[1].metrics["hold_us_per_acq"] == 0.0


def test_a_kernel_without_lock_stat_gives_no_cases():
    mod = ModuleRun(variant="", command="modprobe test_workqueue", exit_code=1, output="", log="", duration=1.0)
    assert lockstat.cases(SuiteRun("test_workqueue", (mod,)), ("&pool->lock",)) == []
