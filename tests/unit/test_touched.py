"""What a series changes, and which of it a finding passes through (pipeline/analysis/touched.py).

The series are the real ones in patches/ and the small ones in tests/data/touched/ (README.md
there). The findings come from the real reports in tests/data/splats/.
"""

from dataclasses import replace
from pathlib import Path

from pipeline import config
from pipeline.analysis.touched import FileChange, Span, Touch, changes_of, describe, frames_in, parse_diff, touches
from pipeline.triage import findings as triage
from tests.conftest import DATA, ROOT

TOUCHED = DATA / "touched"
SPLATS = DATA / "splats"


def series(name: str):
    return changes_of(config.load_series_file(ROOT / "patches" / name / "series.yaml").patch_paths())


def small(name: str):
    return changes_of(sorted((TOUCHED / name).glob("*.patch")))


def report(log: str, kind: str | None = None) -> triage.Finding:
    found = triage.extract((SPLATS / log).read_text())
    return next(f for f in found if kind is None or f.kind == kind)


def names(found: list[Touch]) -> list[tuple[str, str, tuple[int, ...], bool]]:
    return [(t.function, t.file, t.patches, t.guessed) for t in found]


# ---------------------------------------------------------------- what a series changes


def test_fastwake_v1_per_patch():
    one, two = series("fastwake-v1").patches
    assert (one.label, two.label) == ("1/2", "2/2")
    # patch 1 renames kick_pool() to kick_pool_pick() (hunks 1-2) and adds a new kick_pool() wrapper
    # (hunk 3). Hunks 2 and 3 have kick_pool in their headers (the pre-image) but are in kick_pool_pick.
    assert one.files == (FileChange("kernel/workqueue.c", "modified", ("kick_pool", "kick_pool_pick"), (
        Span(1275, 1275, "kick_pool_pick"),  # the new signature
        Span(1283, 1283, "kick_pool_pick"),  # return NULL
        Span(1287, 1287, "kick_pool_pick"),  # return NULL
        Span(1321, 1322, "kick_pool_pick"),  # return p; }
        Span(1331, 1333, "kick_pool"),  # the wrapper's signature, { and first line
        Span(1335, 1336, "kick_pool"),  # if (!p) return false;
    )),)
    # patch 2: the process_one_work() hunks have "__acquires(&pool->lock)" as their header; the diff
    # does not name the function, so their lines are kept without one
    assert two.files == (FileChange("kernel/workqueue.c", "modified", ("__queue_work",), (
        Span(2304, 2304, "__queue_work"), Span(2427, 2427, "__queue_work"), Span(2442, 2443, "__queue_work"),
        Span(3269, 3269, None), Span(3327, 3327, None), Span(3340, 3341, None),
    )),)


def test_lines_are_numbered_in_the_final_tree():
    one, two, three = series("fastwake-v1-claim").patches
    # patch 3 adds 12 lines inside kick_pool_pick() at 1321: patch 1's wrapper and all of patch 2 move
    assert one.files[0].spans[-2:] == (Span(1343, 1345, "kick_pool"), Span(1347, 1348, "kick_pool"))
    assert two.files[0].spans[0] == Span(2316, 2316, "__queue_work")
    assert three.files[0].functions == ("kick_pool_pick", "worker_thread")
    assert three.label == "3/3"


def test_shifted_lines_and_a_cover_letter():
    first, second = small("shift").patches  # 0000-cover-letter.patch is not numbered
    assert (first.file, first.label) == ("0001-workqueue-mark-touched-workqueues.patch", "1/2")
    # patch 2 inserts 3 lines in kick_bh_pool(): patch 1's lines 20 and 34 are 23 and 37 in the end
    assert first.files == (FileChange("kernel/workqueue.c", "modified", ("kick_pool", "touch_wq_lockdep_map"),
                                      (Span(23, 23, "kick_pool"), Span(37, 37, "touch_wq_lockdep_map"))),)
    assert second.files == (
        FileChange("drivers/block/nbd.c", "modified", ("recv_work",), (Span(8, 8, "recv_work"),)),
        FileChange("kernel/workqueue.c", "modified", ("kick_bh_pool", "touch_wq_lockdep_map"),
                   (Span(7, 8, "kick_bh_pool"), Span(37, 37, "touch_wq_lockdep_map"))),
    )


def test_wake_prefer_prototypes_comments_and_previous_function_headers():
    (patch,) = series("wake-prefer").patches
    assert [(f.path, f.functions) for f in patch.files] == [
        ("include/linux/sched.h", ()),  # a multi-line extern prototype
        # not ttwu_state_match or cpu_curr_snapshot, which the hunk headers name: those hunks
        # start in comments after the end of those functions
        ("kernel/sched/core.c", ("try_to_wake_up", "wake_up_process", "wake_up_process_prefer", "wake_up_state",
                                 "default_wake_function")),
        ("kernel/sched/sched.h", ()),  # not is_per_cpu_kthread from the header: a prototype after it
        ("kernel/sched/swait.c", ("swake_up_locked",)),
        ("kernel/workqueue.c", ("kick_pool",)),
    ]


def test_a_comment_changes_no_function():
    one, two, three = changes_of(sorted((DATA / "series" / "bisect-build").glob("*.patch"))).patches
    assert one.files == (FileChange("kernel/workqueue.c", "modified", (), ()),)
    assert two.files == (FileChange("kernel/workqueue.c", "modified", ("kick_pool",),
                                    (Span(1273, 1273, "kick_pool"),)),)
    assert three.files == (FileChange("kernel/sched/core.c", "modified", (), ()),)


def test_tricky_shapes():
    (patch,) = small("tricky").patches
    assert patch.label == "1/1"
    assert patch.files == (
        FileChange("firmware/blob.bin", "added", (), ()),
        # the new prototype is no function; queue_work()'s body changed
        FileChange("include/linux/workqueue.h", "modified", ("queue_work",),
                   (Span(4, 5, None), Span(10, 10, "queue_work"))),
        # kick_pool_pick, not kick_bh_pool from the hunk header; count_workers through its return type
        # line; nothing for the comment in __flush_workqueue; no name under "__acquires(&pool->lock)"
        FileChange("kernel/workqueue.c", "modified", ("kick_pool_pick", "count_workers"),
                   (Span(10, 14, "kick_pool_pick"), Span(30, 30, "count_workers"), Span(56, 56, None))),
        FileChange("kernel/wq_b.c", "renamed", ("a_fn",), (Span(13, 13, "a_fn"),)),
        FileChange("kernel/wq_new.c", "added", ("wq_new_pick", "wq_new_init"),
                   (Span(2, 2, None), Span(4, 9, "wq_new_pick"), Span(11, 14, "wq_new_init"))),
        FileChange("kernel/wq_old.c", "deleted", ("old_helper",), ()),
        FileChange("lib/nonl.c", "modified", ("nonl_fn",), (Span(3, 3, "nonl_fn"),)),  # "\ No newline"
    )


def test_cover_letter_and_message_only_patch_change_nothing(tmp_path):
    cover = tmp_path / "0000-cover-letter.patch"
    cover.write_text((TOUCHED / "shift" / "0000-cover-letter.patch").read_text())
    empty = tmp_path / "0001-empty.patch"
    empty.write_text("From: A <a@example.org>\nSubject: [PATCH 1/1] nothing\n\nNo diff here.\n---\n-- \n2.51.0\n")
    (patch,) = changes_of([cover, empty]).patches
    assert (patch.label, patch.files) == ("1/1", ())
    assert parse_diff(cover.read_text()) == []


def test_plain_unified_diff_and_stripped_blank_context():
    text = ("--- a/lib/x.c\n+++ b/lib/x.c\n@@ -1,4 +1,4 @@ int f(void)\n {\n\n-\treturn 1;\n+\treturn 2;\n }\n"
            "--- a/lib/y.c\n+++ b/lib/y.c\n@@ -3 +3 @@ int g(void)\n-\tg_old();\n+\tg_new();\n")
    x, y = parse_diff(text)
    assert (x.old, x.new, y.old, y.new) == ("lib/x.c", "lib/x.c", "lib/y.c", "lib/y.c")
    assert x.hunks[0].lines == (" {", " ", "-\treturn 1;", "+\treturn 2;", " }")
    assert (y.hunks[0].old_len, y.hunks[0].new_len, y.hunks[0].context) == (1, 1, "int g(void)")


def test_to_dict():
    first = small("shift").patches[0]
    assert first.to_dict() == {"patch": "1/2", "file": "0001-workqueue-mark-touched-workqueues.patch", "files": [
        {"path": "kernel/workqueue.c", "status": "modified", "functions": ["kick_pool", "touch_wq_lockdep_map"],
         "spans": [{"first": 23, "last": 23, "function": "kick_pool"},
                   {"first": 37, "last": 37, "function": "touch_wq_lockdep_map"}]}]}


# ---------------------------------------------------------------- what a finding passes through


def test_kcsan_against_fastwake_v1():
    race = report("kcsan-data-race.log")
    found = touches(race, series("fastwake-v1"))
    # both from the second access's stack; the first stack passes through nothing changed
    assert names(found) == [("kick_pool", "kernel/workqueue.c", (1,), False),
                            ("__queue_work", "kernel/workqueue.c", (2,), False)]
    assert describe(found) == "touches kick_pool (changed by 1/2), __queue_work (changed by 2/2)"
    assert found[0].to_dict() == {"function": "kick_pool", "file": "kernel/workqueue.c", "patches": ["1/2"],
                                  "guessed": False}


def test_lockdep_every_stack_counts():
    circular = report("lockdep-circular.log")
    found = touches(circular, small("shift"))
    # touch_wq_lockdep_map is only in the "-> #1" dependency stack, not in the main frames
    assert "touch_wq_lockdep_map" not in circular.frames
    assert names(found) == [("touch_wq_lockdep_map", "kernel/workqueue.c", (1, 2), False),
                            ("recv_work", "drivers/block/nbd.c", (2,), False)]
    assert describe(found) == "touches touch_wq_lockdep_map (changed by 1/2, 2/2), recv_work (changed by 2/2)"


def test_two_splats_each_finding_its_own_touches():
    changes = small("shift")
    recursive, race = triage.extract((SPLATS / "two-splats.log").read_text())
    # first seen in the "at: touch_wq_lockdep_map kernel/workqueue.c:3876 [inline]" line
    assert names(touches(recursive, changes)) == [("touch_wq_lockdep_map", "kernel/workqueue.c", (1, 2), False)]
    assert names(touches(race, changes)) == [("kick_pool", "kernel/workqueue.c", (1,), False)]


def test_decoded_lines_inlined_locations_and_guessed_frames():
    # lkp decoded this report itself: "__mutex_lock (... kernel/locking/mutex.c:600 kernel/locking/mutex.c:760)"
    deadlock = report("real-multi-lkp-drm-6.17.log", "lockdep")
    found = touches(deadlock, small("lkp"))
    assert names(found) == [
        ("list_add_tail", "include/linux/list.h", (1,), False),  # inlined into drm_client_register (line 169)
        ("sched_show_task", "kernel/sched/core.c", (1,), True),  # only "? sched_show_task (...)"
        ("__mutex_lock_common", "kernel/locking/mutex.c", (1,), False),  # inlined into __mutex_lock (line 600)
    ]
    assert describe(found) == ("touches list_add_tail (changed by 1/1), sched_show_task (changed by 1/1; only in ? "
                               "frames), __mutex_lock_common (changed by 1/1)")


def test_decoded_line_finds_an_unnamed_hunk():
    # The KCSAN report as decode_stacktrace.sh would print it on a fastwake-v1 kernel (line numbers
    # of the patched workqueue.c). process_one_work's hunks carry no name, its line 3327 does.
    race = report("kcsan-data-race.log")
    decoded = ("read to 0xffff888237d2e8a4 of 4 bytes by task 3399 on cpu 0:\n"
               " kick_pool_pick (kernel/workqueue.c:1283)\n"
               " __queue_work (kernel/workqueue.c:2427 (discriminator 1))\n"
               " process_one_work (kernel/workqueue.c:3327)\n"
               " worker_thread (kernel/workqueue.c:3401)\n")
    found = touches(replace(race, decoded=decoded), series("fastwake-v1"))
    # the decoded report first, then what only the raw text has (kick_pool)
    assert names(found) == [("kick_pool_pick", "kernel/workqueue.c", (1,), False),
                            ("__queue_work", "kernel/workqueue.c", (2,), False),
                            ("process_one_work", "kernel/workqueue.c", (2,), False),
                            ("kick_pool", "kernel/workqueue.c", (1,), False)]


def test_nothing_touched():
    fastwake = series("fastwake-v1")
    assert touches(report("hung-task.log"), fastwake) == []
    # syzbot's line numbers come from another tree and fall outside fastwake's changes
    assert touches(report("lockdep-circular.log"), fastwake) == []
    assert describe([]) == ""


def test_frame_forms():
    text = ("RIP: 0010:kick_pool.constprop.0+0x1c/0x80\n"
            " ? __queue_work.isra.0.cold+0x8/0x10 [wq_test]\n"
            " need_more_worker kernel/workqueue.c:934 [inline]\n"
            " #0: ffff (&pool->lock){-.-.}-{2:2}, at: kick_pool_pick (kernel/workqueue.c:869 (discriminator 1))\n"
            " lock((work_completion)(&args->work));\n")
    assert [(f.name, f.guessed, f.locations) for f in frames_in(text)] == [
        ("kick_pool", False, ()),
        ("__queue_work", True, ()),
        ("need_more_worker", False, (("kernel/workqueue.c", 934),)),
        ("kick_pool_pick", False, (("kernel/workqueue.c", 869),)),
    ]


def test_same_name_in_another_file_is_not_a_match():
    race = report("kcsan-data-race.log")
    other = replace(race, text="", decoded=" kick_pool (drivers/other/pool.c:10)\n ? __queue_work+0x8/0x10\n")
    assert names(touches(other, series("fastwake-v1"))) == [("__queue_work", "kernel/workqueue.c", (2,), True)]


def test_describe_names_the_file_when_a_name_is_in_two_files():
    found = [Touch("init", "a.c", (1,), 2), Touch("init", "b.c", (2,), 2, guessed=True)]
    assert describe(found) == "touches init in a.c (changed by 1/2), init in b.c (changed by 2/2; only in ? frames)"
