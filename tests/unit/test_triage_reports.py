"""Report kinds, titles that name a place, and the frames they come from (pipeline/triage/findings.py)."""

import re

import pytest

from pipeline.triage import findings as triage
from tests.conftest import DATA

SPLATS = DATA / "splats"


def read(name: str) -> str:
    return (SPLATS / name).read_text()


def one(text: str) -> triage.Finding:
    (finding,) = triage.extract(text)
    return finding


# ------------------------------------------------------------------------------------ rcu stalls


EXPEDITED = read("rcu-expedited-stall.log")


def test_an_expedited_rcu_stall_is_a_stall_named_by_its_place():
    f = one(EXPEDITED)
    assert (f.kind, f.title, f.frames[:3]) == ("rcu_stall", "rcu stall in advance_sched",
                                               ("spin_lock", "advance_sched", "__run_hrtimer"))


@pytest.mark.parametrize("headline", [
    "rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 1-... } 21009 jiffies s: 557 root: 0x2/.",
    "INFO: rcu_sched detected expedited stalls on CPUs/tasks: { 1-...D } 2651 jiffies s: 2425 root: 0x2/.",
    # pr_cont() pieces printed as lines of their own (syzbot, 6.10)
    "rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: {\n 1-....\n } 3076 jiffies s: 5117 root: 0x1/.",
])
def test_the_forms_of_the_expedited_stall_headline(headline):
    text = EXPEDITED.replace(EXPEDITED.splitlines()[0], headline)
    assert (one(text).title, one(text).fingerprint) == ("rcu stall in advance_sched", one(EXPEDITED).fingerprint)


# -------------------------------------------------------------------------------------- refcount


REFCOUNT = read("refcount.log")


def test_a_refcount_warning_is_one_refcount_finding_named_like_syzbot():
    f = one(REFCOUNT)
    assert (f.kind, f.title, f.fingerprint) == ("refcount", "refcount bug in sco_sock_timeout", "4e1453a6652d")


def test_a_refcount_warning_without_its_refcount_t_line_is_the_same_finding():
    text = REFCOUNT.replace("refcount_t: addition on 0; use-after-free.\n", "")
    f = one(text)
    assert (f.kind, f.title, f.fingerprint) == ("refcount", "refcount bug in sco_sock_timeout", "4e1453a6652d")
    assert text.splitlines()[1].startswith("WARNING: CPU: 0 PID: 10451 at lib/refcount.c:25")


def test_a_refcount_warning_in_the_new_warning_format():
    text = REFCOUNT.replace(
        "WARNING: CPU: 0 PID: 10451 at lib/refcount.c:25 refcount_warn_saturate+0x169/0x1e0 lib/refcount.c:25",
        "WARNING: lib/refcount.c:28 at refcount_warn_saturate+0x169/0x1e0, CPU#0: kworker/0:8/10451")
    f = one(text)
    assert (f.kind, f.title, f.fingerprint) == ("refcount", "refcount bug in sco_sock_timeout", "4e1453a6652d")


def test_the_brief_refcount_warning_line():
    text = ("------------[ cut here ]------------\n"
            "WARNING: CPU: 1 PID: 2345 at lib/refcount.c:28 refcount_warn_saturate+0x10a/0x110\n"
            "Call Trace:\n <TASK>\n __refcount_sub_and_test+0x1/0x2\n kref_put+0x1/0x2\n"
            " release_thing+0x20/0x40 [mymod]\n process_one_work+0x1/0x2\n </TASK>\n"
            "---[ end trace 0000000000000000 ]---\n")
    f = one(text)
    assert (f.kind, f.title, f.frames) == ("refcount", "refcount bug in release_thing",
                                          ("__refcount_sub_and_test", "kref_put", "release_thing", "process_one_work"))


# --------------------------------------------------------------------------------------- lockdep


@pytest.mark.parametrize("name, title", [
    ("lockdep-circular.log", "possible deadlock in nbd_config_put"),
    ("lockdep-recursive.log", "possible deadlock in __flush_workqueue"),
    ("lockdep-inconsistent.log", "inconsistent lock state in io_timeout_fn"),
    ("rcu-suspicious.log", "suspicious RCU usage in bpf_get_current_cgroup_id"),
    ("lockdep-bad-unlock.log", "bad unlock balance in l2cap_disconnect_rsp"),
    ("dmesg-x-lkp-lockdep-circular.log", "possible deadlock in dcache_dir_open_wrapper"),
])
def test_lockdep_titles_name_a_place(name, title):
    f = one(read(name))
    assert (f.kind, f.title) == ("lockdep", title)


@pytest.mark.parametrize("headline, title", [
    ("WARNING: possible irq lock inversion dependency detected", "possible deadlock in nbd_config_put"),
    ("WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected", "possible deadlock in nbd_config_put"),
    ("[ INFO: possible circular locking dependency detected ]", "possible deadlock in nbd_config_put"),
    # named by the first lock's "at:" that is not a lock helper (refcount_dec_and_mutex_lock)
    ("WARNING: held lock freed!", "held lock freed in process_one_work"),
    ("BUG: bad unlock balance detected!", "bad unlock balance in nbd_config_put"),
])
def test_other_lockdep_headlines(headline, title):
    text = read("lockdep-circular.log").replace("WARNING: possible circular locking dependency detected", headline)
    f = one(text)
    assert (f.kind, f.title) == ("lockdep", title)


# ----------------------------------------------------------------------------------------- frames


@pytest.mark.parametrize("line, frame, reliable", [
    (" kick_pool+0x4d/0x2c0", triage.Frame("kick_pool"), True),
    (" ? kick_pool+0x4d/0x2c0", triage.Frame("kick_pool"), False),
    (" write_flush.constprop.0+0xf4/0x140 [sunrpc]", triage.Frame("write_flush"), True),
    (" print_deadlock_bug.cold.12+0x1/0x2", triage.Frame("print_deadlock_bug"), True),
    # syzbot's symbolizer
    (" sco_sock_timeout+0x216/0x290 net/bluetooth/sco.c:88", triage.Frame("sco_sock_timeout"), True),
    (" sock_hold include/net/sock.h:702 [inline]", triage.Frame("sock_hold", inline=True), True),
    # decode_stacktrace.sh, with the nested parentheses of "(discriminator N)" and inline chains
    ("kick_pool (kernel/workqueue.c:869 (discriminator 1))", triage.Frame("kick_pool"), True),
    ("? foo (file.c:12 (discriminator 3))", triage.Frame("foo"), False),
    ("__mutex_lock (arch/x86/include/asm/atomic.h:23 include/linux/jump_label.h:262 kernel/locking/mutex.c:760)",
     triage.Frame("__mutex_lock"), True),
    ("__kmalloc_noprof (include/trace/events/kmem.h:54 (discriminator 2) mm/slub.c:4366 (discriminator 2) "
     "mm/slub.c:4377 (discriminator 2))", triage.Frame("__kmalloc_noprof"), True),
    ("check_noncircular (lockdep.c:?)", triage.Frame("check_noncircular"), True),
    ("dcache_dir_open_wrapper (fs/tracefs/event_inode.c:373) ", triage.Frame("dcache_dir_open_wrapper"), True),
    # old x86/arm64 with addresses, powerpc, arm32
    (" [<ffffffff81234567>] foo+0x12/0x34", triage.Frame("foo"), True),
    (" [<ffffffff81234567>] ? foo+0x12/0x34", triage.Frame("foo"), False),
    ("[<ffff000008089c30>] dump_backtrace+0x0/0x1e8", triage.Frame("dump_backtrace"), True),
    ("[c000000002c4f8b0] [c0000000001f4b0c] foo+0x1c/0x30 (unreliable)", triage.Frame("foo"), False),
    ("[c000000002c4f8b0] [c0000000001f4b0c] foo+0x1c/0x30", triage.Frame("foo"), True),
    ("[<c010f4a8>] (unwind_backtrace) from [<c010b8b4>] (show_stack+0x10/0x14)", triage.Frame("unwind_backtrace"), True),
    (" unwind_backtrace from show_stack+0x10/0x14", triage.Frame("unwind_backtrace"), True),
])
def test_frame_lines(line, frame, reliable):
    assert triage.frame_of(line) == (frame, reliable)


@pytest.mark.parametrize("line", [
    "RIP: 0010:__queue_work+0xd4b/0xf90 kernel/workqueue.c:2250",
    "ffff888027fc7a30 (&nbd->config_lock){+.+.}-{4:4}, at: refcount_dec_and_mutex_lock+0x51/0xc0 lib/refcount.c:118",
    "ffff88810045d368 (&sb->s_type->i_mutex_key#5){++++}-{3:3}, at: dcache_dir_open_wrapper (fs/tracefs/event_inode.c:373)",
    "-> #1 (eventfs_rwsem/1){.+.+}-{3:3}:",
    "Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.3-debian-1.16.3-2~bpo12+1 04/01/2014",
    "hardirqs last  enabled at (24937): [<ffffffff8946bc7f>] _raw_spin_unlock_irq+0x1f/0x40",
    "Workqueue: events_unbound async_run_entry_fn (async)",
    "Freeing unused kernel image (initmem) memory: 2668K",
    "Data read from device 3",
])
def test_lines_that_are_not_frames(line):
    assert triage.frame_of(line) is None


def test_decoded_frames_with_nested_parentheses_count():
    # LKP, decode_stacktrace.sh format: drm_client_modeset_probe (...:869 (discriminator 1)) was dropped before
    lockdep = triage.extract(read("real-multi-lkp-drm-6.17.log"))[0]
    assert lockdep.frames == ("drm_helper_probe_single_connector_modes", "drm_client_modeset_probe",
                              "__drm_fb_helper_initial_config_and_unlock", "drm_fbdev_client_hotplug",
                              "drm_client_register")


def symbolized_to_raw(text: str) -> str:
    """The console a syzbot report was symbolized from: no [inline] lines, no file:line."""
    lines = [ln for ln in text.splitlines() if not ln.rstrip().endswith("[inline]")]
    return "\n".join(re.sub(r"(\+0x[0-9a-f]+/0x[0-9a-f]+)(?: \[\w+\])? \S+:\d+$", r"\1", ln) for ln in lines) + "\n"


@pytest.mark.parametrize("name", ["refcount.log", "lockdep-recursive.log", "kcsan-data-race.log", "kernel-bug.log",
                                  "rcu-suspicious.log", "list-corruption.log"])
def test_a_symbolized_paste_and_the_raw_console_agree(name):
    symbolized, raw = one(read(name)), one(symbolized_to_raw(read(name)))
    assert "[inline]" not in raw.text
    assert (raw.title, raw.fingerprint) == (symbolized.title, symbolized.fingerprint)


# ------------------------------------------------------------------ x86 guess unwinder: "? " frames


def guessed(text: str) -> str:
    """The report as the x86 guess unwinder prints it: every frame "? func"."""
    out = []
    for line in text.splitlines():
        prefix = re.match(r"(?:\[[ \d.TC]+\])*\s*", line).end()
        frame = triage.frame_of(line[prefix:])
        out.append(line[:prefix] + "? " + line[prefix:] if frame and frame[1] else line)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("name, title", [
    ("lockdep-circular.log", "possible circular locking dependency detected"),
    ("atomic-sleep.log", "sleeping function called from invalid context"),
    ("hung-task.log", "task hung"),
    ("warn-cut-here.log", "WARNING in xfs_iunlink_lookup"),  # the WARNING line names the place
    ("rcu-stall.log", "rcu stall in __nfsd_file_cache_purge"),  # and the RIP line
])
def test_a_report_where_every_frame_is_a_guess_keeps_its_headline(name, title):
    text = guessed(read(name))
    assert "? " in text
    f = one(text)
    assert (f.title, f.frames) == (title, ())
    # stale "? " frames differ from run to run: they change neither title nor fingerprint
    other_run = re.sub(r"\? (\w+)\+0x[0-9a-f]+", r"? \1_stale+0x10", text)
    assert (one(other_run).title, one(other_run).fingerprint) == (f.title, f.fingerprint)


def test_a_real_guess_unwinder_trace_quoted_in_a_mail():
    f = one(read("quoted-guess-unwinder-panic.log"))
    assert (f.kind, f.title, f.frames, f.first_line) == (
        "panic", "Kernel panic - not syncing: alloc_low_pages: can not alloc memory", (), 7)


def test_reliable_frames_win_over_guesses_around_them():
    atomic = read("atomic-sleep.log")
    fewer_guesses = "\n".join(ln for ln in atomic.splitlines() if "] ? " not in ln) + "\n"
    assert one(fewer_guesses).fingerprint == one(atomic).fingerprint == "9f603644adfb"


# ------------------------------------------------------------------------------ pasted log forms


def test_a_syslog_warn_is_found_with_its_line_number():
    f = one(read("syslog-warn-skb.log"))
    assert (f.kind, f.title, f.first_line, f.frames[:3]) == (
        "warn", "WARNING in skb_release_head_state", 9, ("skb_release_all", "kfree_skb", "enqueue_to_backlog"))
    assert f.text.splitlines()[0] == "------------[ cut here ]------------"
    assert f.text.splitlines()[-1] == "---[ end trace 6b8bc0481012eb0c ]---"


def test_an_old_x86_warn_with_addresses_before_its_frames():
    # the 3.x layout: stack words, then "[<address>] function+off/len" frames
    text = ("------------[ cut here ]------------\n"
            "WARNING: CPU: 0 PID: 1 at fs/sysfs/dir.c:31 sysfs_warn_dup+0x64/0x80()\n"
            "sysfs: cannot create duplicate filename '/class/net/eth0'\n"
            "Modules linked in:\n"
            "CPU: 0 PID: 1 Comm: swapper/0 Not tainted 3.18.0 #1\n"
            " 0000000000000000 ffff88003e9f3d88 ffffffff8160b2c1 ffff88003e9f3dc0\n"
            "Call Trace:\n"
            " [<ffffffff8160b2c1>] dump_stack+0x19/0x1b\n"
            " [<ffffffff8105b7e2>] warn_slowpath_common+0x82/0xc0\n"
            " [<ffffffff8105b8c6>] warn_slowpath_fmt+0x46/0x50\n"
            " [<ffffffff81234567>] sysfs_warn_dup+0x64/0x80\n"
            " [<ffffffff81234600>] sysfs_create_dir_ns+0x7e/0x90\n"
            " [<ffffffff81350000>] ? kobject_add_internal+0x1/0x2\n"
            " [<ffffffff81350100>] kobject_add_internal+0xcb/0x3a0\n"
            "---[ end trace 8a3d7fbd4b8a6c42 ]---\n")
    f = one(text)
    assert (f.kind, f.title, f.frames) == ("warn", "WARNING in sysfs_warn_dup",
                                          ("sysfs_warn_dup", "sysfs_create_dir_ns", "kobject_add_internal"))
