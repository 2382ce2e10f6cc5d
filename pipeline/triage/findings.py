"""Console and dmesg triage: whole kernel reports, normalised titles, fingerprints.

A finding is one report (a KCSAN race, a lockdep splat, a WARN, a stall...)
with a kind, a title that does not depend on addresses, PIDs, CPU numbers,
timestamps or on how the log was captured, a fingerprint (kind, title and the
top frames) and the full text. Findings with the same fingerprint are one
finding with a count.

Reports are separated before they are read: other CPUs print in the middle of
a report, and two reports can be printed at the same time. Each line goes to
the open report that can take it (by its printk caller id when the kernel has
CONFIG_PRINTK_CALLER, else by what the line is and by how the reports' lines
have been alternating), so a report keeps the same frames, title and
fingerprint whatever is printed between its lines.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

from pipeline import proc
from pipeline.triage import logtext

OFFSET_RE = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+")
_NAME = r"[A-Za-z_.$][\w.$]*"
# "[<ffffffff8123abcd>] " (old x86, arm64), "[c0000000] " (ppc), "[<(ptrval)>] " (a hashed pointer)
_ADDRS = r"(?:\[<?(?:0x)?(?:[0-9a-f]+|\(ptrval\))>?\]\s*)*"
# " foo+0x12/0x34 [mod]", " ? foo+0x12/0x34", " [<ffffffff81234567>] foo+0x12/0x34", ppc "... (unreliable)"
FRAME_RE = re.compile(rf"^\s*{_ADDRS}(?P<q>\? )?(?P<name>{_NAME})\+0x[0-9a-f]+/0x[0-9a-f]+(?P<unrel>.*\(unreliable\))?")
# syzbot's symbolizer: " foo include/linux/x.h:12 [inline]"
INLINE_FRAME_RE = re.compile(rf"^\s*(?P<q>\? )?(?P<name>{_NAME}) \S+:\d+(?: \(discriminator \d+\))? \[inline\]")
# decode_stacktrace.sh: "foo (kernel/x.c:12)", "foo (a.h:3 kernel/x.c:12 (discriminator 1))" (inlines on one line)
_LOC = r"(?:[^()]|\([^()]*\))*"
DECODED_FRAME_RE = re.compile(rf"^\s*(?P<q>\? )?(?P<name>{_NAME}) \({_LOC}:[\d?]+{_LOC}\)(?!.*:\s*$)")
# arm32: "[<c010f4a8>] (unwind_backtrace) from [<c010b8b4>] (show_stack+0x10/0x14)", newer "foo from bar+0x1/0x2"
ARM_FRAME_RE = re.compile(rf"^\s*(?:\[<[0-9a-f]+>\] )?\(?(?P<name>{_NAME})(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?(?: \[[\w-]+\])?\)? from "
                          rf"(?:\[<[0-9a-f]+>\] \(|{_NAME}\+0x)")
WARN_AT_RE = re.compile(r"WARNING: (?:CPU: \d+ PID: \d+ at \S+:\d+ |\S+:\d+ at |at \S+:\d+ )([\w.$]+)")
PC_RE = re.compile(r"^\s*(?:RIP: [0-9a-f]{4}:|pc : |PC is at |epc : |NIP:? +|IP: )(?:\[<[0-9a-f]+>\] )?"
                   r"(?P<name>[A-Za-z_][\w.$]*)(?P<inline> \S+:\d+ \[inline\])?")
TRACE_START_RE = re.compile(r"^(?:Call [Tt]race:|stack backtrace:|Backtrace:|(?:Allocated|Freed) by task \d+:|"
                            r"Allocated:|Freed:|(?:Second to last|Last) potentially related work creation:|"
                            r"Uninit was (?:stored to memory|created) at:|page last (?:allocated via|free pid) |"
                            r".* stack trace:$)")
TASK_END_RE = re.compile(r"^\s*</TASK>")
# What the task or CPU that prints a stack prints before it
DEVICE_RE = re.compile(r"^(?:CPU: \d+ |Hardware name: |Workqueue: |Modules linked in:)")
# Lines after which a report's header lists frames: lockdep's dependency chain, where a lock was taken...
AT_INTRO_RE = re.compile(r"^(?:-> #\d|.* at:$|Preemption disabled at:)")
# Lines that begin another CPU's or task's backtrace inside a report (registers may come before "Call Trace:")
BACKTRACE_START_RE = re.compile(r"^(?:NMI backtrace for cpu|task:|Task dump for CPU|Sending NMI)")
TRACE_LINE_RE = re.compile(
    r"^\s*</?(?:TASK|IRQ|NMI|SOFTIRQ|EOI)>|"
    r"^\s*(?:RIP|RSP|RAX|RBX|RCX|RDX|RSI|RDI|RBP|R\d+|FS|CS|CR\d|DR\d|Code|pc|lr|sp|pstate|x\d+|EIP|EAX|ESI|"
    r"ESP|DS|NIP|MSR|LR|CTR|GPR\d+|epc|ra|gp|status|badaddr|cause)\s*:|"
    r"^\s*\[<[0-9a-f]+>\]|^\s*-{3} interrupt:")
RULE_RE = re.compile(r"^={20,}$")
CUT_RE = re.compile(r"^-+\[ cut here \]-+$")
END_TRACE_RE = re.compile(r"^-+\[ end (?:trace [0-9a-f]* ?|Kernel panic - not syncing:.*)\]-+$")
# KCSAN prints each access and its stack: "write to 0xffff... of 4 bytes by task 1 on cpu 0:"
ACCESS_RE = re.compile(r"^(?:race at unknown origin, with )?(?:read|write|read-write|assert no \w+)"
                       r"(?: \((?:marked|reordered|scoped)\))* to 0x[0-9a-f]+ of \d+ bytes by .* on cpu \d+:$")
MARK_RE = re.compile(r"wqci: (begin|end) suite (\S+)(?: run (\d+))?")

# Frames that say how the report was printed, not where the problem is.
NOISE_FRAMES = {
    "dump_stack", "dump_stack_lvl", "show_stack", "dump_backtrace", "__dump_stack", "__warn", "warn_slowpath_fmt",
    "warn_slowpath_common", "warn_slowpath_null", "__warn_printk",
    "report_bug", "handle_bug", "exc_invalid_op", "asm_exc_invalid_op", "do_error_trap", "die", "bug_handler",
    "call_break_hook", "brk_handler", "do_debug_exception", "el1_dbg", "el1h_64_sync_handler", "el1h_64_sync",
    "kcsan_report_known_origin", "kcsan_setup_watchpoint", "kcsan_found_watchpoint", "print_report",
    "kasan_report", "__asan_load8", "__asan_store8", "__tsan_read4", "__tsan_write4", "__tsan_read8",
    "__tsan_write8", "lock_acquire", "lock_release", "__lock_acquire", "print_usage_bug", "mark_lock",
    "valid_state", "check_prev_add", "check_prevs_add", "validate_chain", "print_circular_bug",
    "check_noncircular", "lockdep_rcu_suspicious", "__might_resched", "__might_sleep", "___might_sleep",
    "__schedule_bug",
    "schedule_debug", "refcount_warn_saturate", "__list_add_valid_or_report", "__list_del_entry_valid_or_report",
    "ubsan_epilogue", "__ubsan_handle_out_of_bounds", "panic", "nmi_cpu_backtrace", "nmi_trigger_cpumask_backtrace",
    "rcu_dump_cpu_stacks", "print_cpu_stall", "check_cpu_stall", "rcu_pending", "rcu_sched_clock_irq",
    "watchdog_timer_fn", "__hrtimer_run_queues", "hrtimer_interrupt", "show_regs", "sched_show_task",
    "debug_show_all_locks", "check_hung_uninterruptible_tasks", "watchdog", "kthread", "ret_from_fork",
    "ret_from_fork_asm", "print_address_description", "check_region_inline", "kasan_check_range",
    "kasan_report_invalid_free", "__kasan_check_read", "__kasan_check_write", "end_report", "start_report",
    # scheduler and sleeping primitives: where a task waits, not why
    "context_switch", "__schedule", "schedule", "__schedule_loop", "schedule_loop", "schedule_timeout",
    "schedule_preempt_disabled", "io_schedule", "do_wait_for_common", "__wait_for_common", "wait_for_common",
    "wait_for_completion", "__mutex_lock", "__mutex_lock_common", "mutex_lock_nested", "schedule_rtlock",
    "rwsem_down_write_slowpath", "rwsem_down_read_slowpath", "down_write", "down_read", "preempt_schedule_common",
    "_cond_resched", "__cond_resched",
    # timer interrupts that carry stall and lockup reports
    "update_process_times", "tick_sched_handle", "tick_sched_timer", "tick_nohz_handler",
    "__sysvec_apic_timer_interrupt", "sysvec_apic_timer_interrupt", "asm_sysvec_apic_timer_interrupt",
    "hrtimer_interrupt", "irq_exit_rcu", "__irq_exit_rcu", "handle_softirqs", "__do_softirq",
    # NMI entry: how a backtrace of another CPU was taken
    "nmi_cpu_backtrace_handler", "nmi_handle", "default_do_nmi", "exc_nmi", "end_repeat_nmi", "repeat_nmi",
    # lockdep internals
    "mark_lock_irq", "mark_usage", "lockdep_hardirqs_on_prepare", "trace_hardirqs_on",
    "__trace_hardirqs_on_caller", "check_deadlock", "print_deadlock_bug", "print_unlock_imbalance_bug",
    "__lock_release", "lock_is_held_type", "__list_add_valid", "__list_del_entry_valid",
    "__refcount_add", "__refcount_inc", "refcount_inc", "__list_add", "list_add_tail", "list_add",
    "rt_spin_lock", "rtlock_slowlock_locked", "__mutex_unlock_slowpath", "mutex_unlock", "rcu_dump_cpu_stacks",
    "mark_held_locks", "debug_check_no_locks_freed",
    # how older and other kernels print and enter: arm32's unwinder, a sleeping task's switch, pre-5.8 x86
    # interrupt entry, preemption points, the refcount helpers of 4.x
    "unwind_backtrace", "__switch_to", "preempt_schedule", "preempt_schedule_notrace", "preempt_schedule_irq",
    "el1_irq", "smp_apic_timer_interrupt", "apic_timer_interrupt", "irq_exit", "refcount_error_report",
    "ex_handler_refcount", "refcount_inc_checked", "refcount_add_checked", "refcount_sub_and_test_checked",
    "refcount_dec_and_test_checked", "refcount_inc_not_zero_checked", "refcount_add_not_zero_checked",
}
# the top-level directories of a kernel tree: where a source path in a report really starts
SOURCE_TOP_RE = re.compile(r"(?:^|/)((?:arch|block|certs|crypto|drivers|fs|include|init|io_uring|ipc|kernel|lib|mm|"
                           r"net|rust|samples|security|sound|virt)/\S+)$")
ADDRESS_RE = re.compile(r"(?:0x)?[0-9a-f]{6,16}")
LIST_WHAT_RE = re.compile(r"^(list_(?:add|del)(?: double add| corruption))")
# lockdep's line for a lock: "ffff888012345678 (&pool->lock){-.-.}-{2:2}, at: foo+0x12/0x34"
# (printk continuation can put ", at: ..." on a line of its own)
LOCK_AT_RE = re.compile(rf"(?:\)\{{[^}}]*\}}(?:-\{{\d:\d\}})?|^\s*), at: (?:\[<[0-9a-f]+>\] )?(?P<name>{_NAME})(?:\+0x|$| )")
NOISE_PREFIXES = ("atomic_", "raw_atomic_", "arch_atomic_", "__sanitizer", "__tsan", "__asan", "asm_", "__kcsan",
                  "kcsan_report", "_raw_spin_", "__raw_spin_", "instrument_", "__ubsan_handle", "mutex_lock",
                  "_raw_read_", "_raw_write_", "__pfx_")
# Frames that are no place for a title, after syzbot's skip list (pkg/report/linux.go): lock, refcount,
# wake-up, allocation, string and printing helpers say how the place got there, not what it is.
PLACE_SKIP_RE = re.compile(
    r"^_*(?:refcount_|kref_|mutex_|rt_mutex_|down_|up_read|up_write|raw_spin_|spin_|read_lock|write_lock|"
    r"wake_up|might_|lockdep_|printk|vprintk|dev_(?:warn|err|info|notice|crit|alert|emerg|printk)|"
    r"mem(?:cpy|set|move|cmp|chr|dup)|str(?:n?cpy|scpy|lcpy|n?cmp|n?len|dup)|copy_(?:to|from)_user|"
    r"k[mvz]?alloc|kcalloc|krealloc|kv?free|kmem_cache_|slab_|list_|rb_|debug_object|se_sys_|do_sys_|ksys_|"
    r"arch_local_irq_|local_irq_|trace_hardirqs_|trace_preempt_|preempt_|ftrace_)")


@dataclass(frozen=True)
class Pattern:
    kind: str
    regex: re.Pattern
    title: str  # format with the regex's named groups: the title when the report names no place
    place: str | None = None  # where the place comes from: "pc", "warn", "at" (a lock's), "frames"
    named: str | None = None  # the title with {place}


def _p(kind: str, regex: str, title: str, place: str | None = None, named: str | None = None) -> Pattern:
    return Pattern(kind, re.compile(regex), title, place, named)


_DEADLOCK = (r"possible circular locking dependency detected|possible recursive locking detected|"
             r"possible irq lock inversion dependency detected|\S+-safe -> \S+-unsafe lock order detected")
_LOCKDEP_HEAD = r"^(?:(?:WARNING|BUG|INFO): |\[ INFO: )"
# Order matters: specific lockdep/refcount/list headlines before generic WARNING/BUG ones.
# Titles with a place follow syzbot's ("possible deadlock in X", "refcount bug in X", ...), without
# its "WARNING: "/"BUG: "/"INFO: " prefixes.
PATTERNS: tuple[Pattern, ...] = (
    _p("kcsan", r"^BUG: KCSAN: (?P<what>.+)$", "KCSAN: {what}"),
    _p("kasan", r"^BUG: KASAN: (?P<what>[\w-]+) in (?P<func>\S+)", "KASAN: {what} in {func}"),
    _p("ubsan", r"^UBSAN: Undefined behaviour in (?P<file>[^:\s]+)", "UBSAN: undefined behaviour in {file}"),  # < 5.9
    _p("ubsan", r"^UBSAN: (?P<what>[\w-]+) in (?P<file>[^:\s]+)", "UBSAN: {what} in {file}"),
    _p("lockdep", _LOCKDEP_HEAD + rf"(?P<what>{_DEADLOCK})", "{what}", "frames", "possible deadlock in {place}"),
    # named by where the lock in question was taken ("..., at: foo+0x1/0x2"), as syzbot does
    _p("lockdep", _LOCKDEP_HEAD + r"(?P<what>inconsistent lock state|held lock freed)(?P<rest>!?\.?)", "{what}{rest}",
       "at", "{what} in {place}"),
    _p("lockdep", _LOCKDEP_HEAD + r"(?P<what>suspicious RCU usage|bad unlock balance|"
       r"lock held when returning to user space|lock held at task exit time|"
       r"trying to register non-static key)(?P<rest>(?: detected)?!?\.?)", "{what}{rest}", "frames",
       "{what} in {place}"),
    _p("lockdep", r"^WARNING: (?P<what>Nested lock was not taken)", "{what}", "frames",
       "nested lock was not taken in {place}"),
    _p("lockdep", r"^(?:WARNING|BUG): \S+/\d+ (?P<what>still has locks held)!", "{what}!", "frames",
       "{what} in {place}"),
    _p("lockdep", r"^BUG: (?P<what>MAX_LOCKDEP_\w+ too low!|looking up invalid subclass: \d+)", "{what}"),
    _p("wq_lockup", r"^BUG: workqueue lockup - pool", "workqueue lockup"),
    _p("soft_lockup", r"^(?:watchdog: )?BUG: soft lockup - CPU#\d+ stuck", "soft lockup", "pc",
       "soft lockup in {place}"),
    _p("hard_lockup", r"^(?:(?:NMI )?watchdog: )?(?:CPU\d+: )?Watchdog detected hard LOCKUP on cpu", "hard lockup",
       "pc", "hard lockup in {place}"),
    _p("rcu_stall", r"^(?:rcu: )?INFO: (?P<flavor>rcu_\w+) (?:self-)?detected (?:expedited )?stalls?", "rcu stall",
       "pc", "rcu stall in {place}"),
    _p("hung_task", r"^INFO: task (?P<comm>.+?):\d+ blocked (?:in I/O wait )?for more than \d+ seconds", "task hung",
       "frames", "task hung in {place}"),
    _p("atomic_sleep", r"^BUG: (?P<what>sleeping function called from invalid context|scheduling while atomic"
       r"|workqueue leaked atomic, lock or RCU|workqueue leaked lock or atomic|using \w+\(\) in preemptible)", "{what}",
       "frames", "{what} in {place}"),
    _p("list_corruption", r"^(?P<what>list_(?:add|del)(?: double add| corruption))", "{what}", "frames",
       "{what} in {place}"),
    # before 5.x, CONFIG_DEBUG_LIST warned first and said what after: "WARNING: ... at lib/list_debug.c:62
    # func+0x.." then "list_del corruption. ..."
    _p("list_corruption", r"^WARNING: (?:CPU: \d+ PID: \d+ at )?\S*lib/list_debug\.c:\d+", "list corruption", "warn",
       "list corruption in {place}"),
    _p("refcount", r"^refcount_t: (?P<what>[^;.]+)", "refcount bug", "frames", "refcount bug in {place}"),
    # 4.x x86's fast refcount (no REFCOUNT_FULL) names the place itself, then warns from kernel/panic.c
    _p("refcount", r"^refcount_t (?:overflow|hit zero|saturated) at (?P<func>[\w.$]+)", "refcount bug in {func}"),
    _p("refcount", r"^WARNING: (?:CPU: \d+ PID: \d+ at )?kernel/panic\.c:\d+ refcount_error_report", "refcount bug",
       "frames", "refcount bug in {place}"),
    _p("refcount", r"^WARNING: (?:CPU: \d+ PID: \d+ at )?lib/refcount\.c:\d+", "refcount bug", "frames",
       "refcount bug in {place}"),
    _p("oops", r"^BUG: (?P<what>unable to handle page fault|kernel NULL pointer dereference|unable to handle "
       r"kernel paging request)", "{what}", "pc", "{what} in {place}"),
    _p("oops", r"^(?:Oops: )?(?P<what>general protection fault)", "{what}", "pc", "{what} in {place}"),
    _p("oops", r"^Unable to handle kernel (?P<what>paging request|NULL pointer dereference)",
       "unable to handle kernel {what}", "pc", "unable to handle kernel {what} in {place}"),
    _p("bug", r"^kernel BUG at (?P<file>[^:]+):\d+!", "kernel BUG", "pc", "kernel BUG in {place}"),
    _p("warn", r"^WARNING: CPU: \d+ PID: \d+ at (?P<file>\S+):\d+", "WARNING", "warn", "WARNING in {place}"),
    _p("warn", r"^WARNING: (?P<file>\S+):\d+ at [\w.$]+", "WARNING", "warn", "WARNING in {place}"),
    _p("warn", r"^WARNING: at (?P<file>\S+):\d+ [\w.$]+", "WARNING", "warn", "WARNING in {place}"),
    _p("oops", r"^(?:Internal error: )?Oops(?: - BUG)?: ", "Oops", "pc", "Oops in {place}"),
    _p("panic", r"^Kernel panic - not syncing: (?P<why>.*)$", "Kernel panic - not syncing: {why}"),
)

# Where a report's lines may go (see _Report.takes).
DELIMITED = {"kcsan", "kasan", "ubsan"}  # open and close with a ===== rule
ENDS_WITH_TRACE_MARK = {"warn", "bug", "refcount", "list_corruption", "oops", "ubsan", "panic"}
SINGLE_STACK = {"lockdep", "atomic_sleep"}  # done at the end of their one stack
MULTI_CPU = {"rcu_stall", "hard_lockup", "soft_lockup", "wq_lockup", "hung_task"}  # print other CPUs' backtraces
LOCKUP_KINDS = {"soft_lockup", "hard_lockup"}  # the spinning PC is the place, even in a lock primitive
# Printed one at a time (one watchdog, a report lock, lockdep off after its first report): a new
# headline of the kind ends the last report of the kind, it cannot be printed at the same time.
SERIAL_KINDS = {"lockdep", "kcsan", "kasan", "wq_lockup", "rcu_stall", "hung_task"}
REGS_BEFORE_TRACE = {"warn", "bug", "oops", "refcount", "list_corruption", "soft_lockup", "hard_lockup",
                     "rcu_stall", "panic"}  # print the registers of the report's own context before its stack
DEVICE_IN_HEAD = {"warn", "bug", "oops", "refcount", "list_corruption", "ubsan", "kasan", "atomic_sleep",
                  "soft_lockup", "hard_lockup", "panic"}  # print "CPU: ..." and "Hardware name: ..." before their stack
HEAD_OTHER_LINES = 6  # free-text lines a header may hold (a WARN's message, "invalid opcode: 0000 [#1]")
STARTS_WITH_RULE = {"kcsan", "kasan", "ubsan", "lockdep"}
CUT_KINDS = {"warn", "refcount", "bug", "ubsan"}  # the headlines a "cut here" line announces
PRE_TRACE_LINES = {"lockdep": 400, "wq_lockup": 200, "rcu_stall": 120}
MAX_REPORT_LINES = 600
INTERLEAVE_LOOKAHEAD = 8  # lines that no report takes before a report is over
STARVE = 25  # lines other reports take in a row before a report without its own is over
PERIODS = range(1, 13)  # interleaving patterns tried: blocks (1), line by line (2), blocks of 5 and 5 (10)...
PATTERN_WINDOW = 48  # lines they are judged on
TERMINAL_FRAMES = {"ret_from_fork", "ret_from_fork_asm", "el0t_64_sync", "el0t_32_sync", "el0t_64_irq",
                   "__secondary_switched", "__primary_switched", "secondary_startup_64",
                   "secondary_startup_64_no_verify", "ret_from_exception"}
CONTEXT_RE = re.compile(
    r"^(\s|CPU: |Hardware name: |Workqueue: |Modules linked in:|Tainted: |Sending NMI|NMI backtrace|task:|"
    r"rcu: |\(detected by|Showing |workqueue |pool \d+:|INFO: lockdep|other info|Chain exists|\*\*\*|"
    r"-> #\d|the existing dependency|\d+ locks? held|no locks held|#\d+:|irq event stamp:|hardirqs |softirqs |"
    r"[-=]{10,}$|\[ BUG:|Preemption disabled at:|in_atomic\(\)|preempt_count:|RCU nest depth|"
    r"#PF: |PGD |Oops|ESR = |Mem abort|Data abort|FAR = |Task dump for CPU|Stack:|Kernel Offset:|"
    r".* (?:Not tainted|Tainted: ).*$|[0-9a-f]{8,16} \(.*\)\{.*, at:|.* is trying to (?:acquire|release) lock)")
# A panic caused by the report just before it belongs to that report.
CONSEQUENTIAL_PANIC_RE = re.compile(r"Fatal exception|panic_on_warn|kasan\.fault|softlockup|hung_task|"
                                    r"Hard LOCKUP|RCU Stall|Oops|Attempted to kill (?:the idle task|init)", re.I)
OOPS_LINE_RE = re.compile(r"^(?:Internal error: )?Oops")
_NOT_PRINTING_MODULES = frozenset(k for p in PATTERNS for k in [p.kind]) - {
    "lockdep", "kcsan", "kasan", "atomic_sleep", "hung_task", "wq_lockup"}
# Lines only some kinds of report print: no other report takes them. With no caller ids,
# this is what tells two reports printed at the same time apart.
SPECIFIC: tuple[tuple[re.Pattern, frozenset[str]], ...] = (
    (re.compile(r"^(?:-> #\d|.* is trying to (?:acquire|release) lock|but task is already holding lock|"
                r"which lock already depends|the existing dependency chain|other info that might help|"
                r"\s*Possible (?:unsafe|interrupt unsafe) locking scenario|\s*\*\*\* DEADLOCK \*\*\*|"
                r"stack backtrace:|Chain exists of:|.* state was registered at:|inconsistent \{|"
                r"but there are no more locks to release|[0-9a-f]{8,16} \(.*\)\{|\s+r?lock\(|\s+CPU0\b|"
                r"\s*May be due to missing lock nesting|.* suspicious rcu_dereference|rcu_scheduler_active = |"
                r"\S+ #\d+ (?:Not tainted|Tainted: )|-{10,}$)"),
     frozenset({"lockdep"})),
    (re.compile(ACCESS_RE.pattern + r"|^(?:value changed:|Reported by Kernel Concurrency Sanitizer)"),
     frozenset({"kcsan"})),
    (re.compile(r"^(?:(?:Read|Write) of size \d+ at addr|Allocated by task|Freed by task|The buggy address|"
                r"Memory state around the buggy address|>?\s*[0-9a-f]{8,16}: (?:[0-9a-f]{2} ){4}|\s+\^$|"
                r"(?:Last|Second to last) potentially related work|page last (?:allocated|free)|page_owner tracks|"
                r"page dumped because|page: refcount:|(?:head|raw): [0-9a-f]{16} |(?:anon )?flags: 0x|page_type: |"
                r"memcg:[0-9a-f]+$)"),
     frozenset({"kasan"})),
    (re.compile(r"^Modules linked in:"), _NOT_PRINTING_MODULES | {"panic"}),
    (re.compile(r"^(?:in_atomic\(\): \d|preempt_count: [0-9a-f]+, expected|RCU nest depth: |Preemption disabled at:)"),
     frozenset({"atomic_sleep"})),
    (re.compile(r"^INFO: lockdep is turned off\."), frozenset({"atomic_sleep", "hung_task", "lockdep"})),
    (re.compile(r"^(?:rcu: |\s*\(t=\d+ jiffies|\(detected by \d)"), frozenset({"rcu_stall"})),
    (re.compile(r'^(?:"echo 0 > /proc/sys/kernel/hung_task_timeout_secs"|INFO: task .* is blocked on |'
                r'\s+(?:Not tainted|Tainted: )|Showing all locks held in the system)'), frozenset({"hung_task"})),
    (re.compile(r"^task:\S+\s+state:"),
     frozenset({"hung_task", "rcu_stall", "wq_lockup", "soft_lockup", "hard_lockup"})),
    (re.compile(r"^(?:Showing busy workqueues|workqueue \S+: flags=|\s+pwq \d+:|\s+(?:in-flight|pending|inactive): |"
                r"pool \d+: cpus=|Showing backtraces of running workers)"), frozenset({"wq_lockup"})),
)
# Lines a report prints once (the first five once per backtrace): a second one is another report's.
ONCE_RE = re.compile(r"^(?:(?P<cpu>CPU: \d+ )|(?P<hw>Hardware name: )|(?P<mod>Modules linked in:)|(?P<wq>Workqueue: )|"
                     r"(?P<trace>Call [Tt]race:)|(?P<ver>\S+ #\d+ .*(?:Not tainted|Tainted: ))|(?P<dash>-{10,}$)|"
                     r"(?P<acquire>.* is trying to (?:acquire|release) lock)|(?P<holding>but task is already holding)|"
                     r"(?P<depends>which lock already depends)|(?P<chain>the existing dependency chain)|"
                     r"(?P<info>other info that might help)|(?P<scenario>\s*Possible unsafe locking scenario)|"
                     r"(?P<deadlock>\s*\*\*\* DEADLOCK)|(?P<bt>stack backtrace:))")
PER_BACKTRACE = {"cpu", "hw", "mod", "wq", "trace"}
# The task a line is about. A report names its task in its header (the WARNING line, "in_atomic(): ...
# pid: 1127", "kworker/u33:1/5298 is trying to acquire lock:", "by task ...") and again on its "CPU: N
# PID: M" line: a "CPU:" line naming another task belongs to another report.
PID_RE = re.compile(r"^(?:WARNING: )?CPU: \d+ (?:UID: \d+ )?PID: (?P<a>\d+)|, CPU#\d+: \S+/(?P<b>\d+)$|"
                    r"\bpid: (?P<c>\d+), name: | by task (?P<d>\d+) on cpu | by task \S+/(?P<e>\d+)$|"
                    r"^\S+/(?P<f>\d+) is trying to (?:acquire|release)|locks? held by \S+/(?P<g>\d+)|"
                    r"^INFO: task \S+:(?P<h>\d+) blocked|stuck for \d+s! \[\S+:(?P<i>\d+)\]|"
                    r"scheduling while atomic: \S+/(?P<j>\d+)/")
_SPECIFIC_RE = re.compile("|".join(f"(?P<s{n}>{rx.pattern})" for n, (rx, _) in enumerate(SPECIFIC)))


@dataclass(frozen=True)
class Finding:
    kind: str
    title: str
    fingerprint: str
    frames: tuple[str, ...]
    text: str
    where: str
    count: int = 1
    first_line: int = 0
    decoded: str = ""
    runs: tuple[int, ...] = ()  # the runs of its suite (wqci's markers) in which it was printed

    def to_dict(self) -> dict:
        return {"kind": self.kind, "title": self.title, "fingerprint": self.fingerprint,
                "frames": list(self.frames), "where": self.where, "count": self.count,
                "runs": list(self.runs), "text": self.decoded or self.text}


@dataclass(frozen=True)
class Frame:
    name: str
    inline: bool = False  # symbolized inline expansion: absent from an unsymbolized log of the same kernel


def strip_prefix(line: str) -> str:
    """A console line without its "[time]" and "[caller]" prefix."""
    return logtext.split_prefix(line.rstrip("\r\n"))[1]


def normalize(text: str) -> str:
    """Drop what changes from run to run: offsets, addresses, numbers, [comm:pid]."""
    text = OFFSET_RE.sub("", text)
    text = re.sub(r"\b0x[0-9a-f]+\b", "ADDR", text)
    text = re.sub(r"\[[\w/:.-]+:\d+\]", "", text)
    text = re.sub(r"\b\d+(\.\d+)?s?\b", "N", text)
    return " ".join(text.split())


# Every headline starts with one of these: a quick test before the patterns.
HEAD_HINT_RE = re.compile(r"^(?:BUG|WARNING|INFO|\[ INFO|UBSAN|rcu|watchdog|NMI watchdog|CPU\d+: Watchdog|list_|"
                          r"refcount_t|Unable to handle|kernel BUG|Oops|Internal error|general protection|"
                          r"Kernel panic)")


def match(line: str) -> tuple[Pattern, re.Match] | None:
    if not HEAD_HINT_RE.match(line):
        return None
    for pattern in PATTERNS:
        m = pattern.regex.match(line)
        if m:
            return pattern, m
    return None


# ------------------------------------------------------------------------------------------ frames


@functools.lru_cache(maxsize=1 << 16)
def frame_of(line: str) -> tuple[Frame, bool] | None:
    """(frame, reliable) for a stack frame line, in any of the printed or symbolized forms."""
    if m := FRAME_RE.match(line):
        return Frame(clean_frame(m.group("name"))), not (m.group("q") or m.group("unrel"))
    if m := INLINE_FRAME_RE.match(line):
        return Frame(clean_frame(m.group("name")), inline=True), not m.group("q")
    if m := DECODED_FRAME_RE.match(line):
        return Frame(clean_frame(m.group("name"))), not m.group("q")
    if m := ARM_FRAME_RE.match(line):
        return Frame(clean_frame(m.group("name"))), True
    return None


def frames_of(lines: Sequence[str]) -> list[str]:
    """The reliable, non-noise function names of these lines, in order."""
    return [f.name for f in _frames(lines)]


def _frames(lines: Sequence[str]) -> list[Frame]:
    out = []
    for line in lines:
        got = frame_of(line)
        # "? func" frames were found by scanning the stack (the guess unwinder prints every frame so):
        # they may be stale and change from run to run
        if got and got[1] and not is_noise(got[0].name):
            out.append(got[0])
    return out


def is_noise(name: str) -> bool:
    return name in NOISE_FRAMES or name.startswith(NOISE_PREFIXES)


def clean_frame(name: str) -> str:
    return re.sub(r"(?:\.(?:constprop|isra|part|cold|llvm|lto_priv)(?:\.\d+)?)+$", "", OFFSET_RE.sub("", name))


def main_frames(kind: str, body: Sequence[str]) -> list[Frame]:
    """The frames that identify the report: the first access of a race, lockdep's own backtrace,
    otherwise the call trace (frames printed before it, "Preemption disabled at:", are not)."""
    if kind == "kcsan":
        access = [i for i, ln in enumerate(body) if ACCESS_RE.match(ln)]
        if access:
            end = access[1] if len(access) > 1 else len(body)
            stop = next((i for i in range(access[0] + 1, end)
                         if body[i].startswith(("value changed", "Reported by")) or RULE_RE.match(body[i])), end)
            return _frames(body[access[0] + 1:stop])
    marks = [i for i, ln in enumerate(body) if TRACE_START_RE.match(ln)]
    if kind == "lockdep":
        marks = [i for i in marks if body[i].startswith("stack backtrace:")] or marks
        return _frames(body[marks[-1]:] if marks else body)
    return _frames(body[marks[0]:] if marks else body)


# ------------------------------------------------------------------------------------------ titles


def place_of(pattern: Pattern, body: Sequence[str], frames: Sequence[Frame]) -> str | None:
    """The function a report is about: the spinning or faulting PC for lockups, stalls and oopses,
    the WARNING line's function for warnings, else the first frame worth naming."""
    if pattern.place == "pc":
        for line in body:
            m = PC_RE.match(line)
            # syzbot prints one PC line per inlined function; the unsymbolized console only the last
            if m and not m.group("inline"):
                name = clean_frame(m.group("name"))
                if pattern.kind in LOCKUP_KINDS or not is_noise(name):
                    return name
    if pattern.place == "at":
        for line, after in zip(body, [*body[1:], ""]):
            if line.endswith(", at:"):  # a mail client wrapped the lock's line
                line = f"{line} {after.strip()}"
            # where a lock was taken: never how the report was printed, but maybe a lock helper
            if (m := LOCK_AT_RE.search(line)) and not PLACE_SKIP_RE.match(name := clean_frame(m.group("name"))):
                return name
    if pattern.place == "warn":
        for line in body:
            name = clean_frame(m.group(1)) if (m := WARN_AT_RE.search(line)) else ""
            if name and not ADDRESS_RE.fullmatch(name) and not is_noise(name):  # no kallsyms: an address
                return name
    return next((f.name for f in frames if not f.inline and not PLACE_SKIP_RE.match(f.name)), None)


def make_title(pattern: Pattern, m: re.Match, body: Sequence[str], frames: Sequence[Frame]) -> str:
    groups = {k: v or "" for k, v in m.groupdict().items()}
    func = clean_frame(groups.get("func", ""))
    if func and is_noise(func) and frames:
        # "KASAN: ... in instrument_atomic_read_write": name the caller instead
        groups["func"] = frames[0].name
    if groups.get("file"):
        groups["file"] = source_path(groups["file"])
    place = place_of(pattern, body, frames) if pattern.place else None
    if not place and pattern.kind == "warn" and groups.get("file"):
        place = groups["file"]  # a kernel without kallsyms names no function, only the file
    if pattern.kind == "list_corruption" and "what" not in groups:  # the older WARNING first: what it was follows
        what = next((m.group(1) for ln in body[:6] if (m := LIST_WHAT_RE.match(ln))), None)
        pattern = replace(pattern, named=f"{what} in {{place}}", title=what) if what else pattern
    # A report with no reliable frame (x86 guess unwinder: every frame "? func") keeps its headline's title.
    title = pattern.named.format(place=place, **groups) if place and pattern.named else pattern.title.format(**groups)
    title = OFFSET_RE.sub("", title)
    if pattern.kind == "kcsan":
        title = kcsan_title(title)
    return normalize(title)


def source_path(path: str) -> str:
    """A source path as the tree names it: "../drivers/x.c" and "/build/linux-6.1/fs/x.c"
    (an out-of-tree or distribution build) become "drivers/x.c" and "fs/x.c"."""
    m = SOURCE_TOP_RE.search(path)
    return m.group(1) if m else path


def kcsan_title(title: str) -> str:
    """Drop a side of "data-race in A / B" that only says where an interrupt landed.

    The same race on pwq->stats shows up as "trace_hardirqs_on / wq_worker_tick",
    "sysvec_apic_timer_interrupt / wq_worker_tick", ...: one finding, not four.
    """
    head, sep, sides = title.partition(" in ")
    names = [clean_frame(n.strip()) for n in sides.split(" / ")]
    kept = [n for n in names if not is_noise(n)] or names
    return f"{head}{sep}{' / '.join(kept)}" if sep else title


def fingerprint(kind: str, title: str, frames: Sequence[str]) -> str:
    key = f"{kind}|{title}|{'|'.join(frames[:3])}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def _fingerprint_frames(frames: Sequence[Frame]) -> list[str]:
    # inline frames only exist where the log was symbolized: leave them out so that a syzbot-style
    # paste and the raw console of the same kernel give the same fingerprint
    return [f.name for f in frames if not f.inline]


# ------------------------------------------------------------------------------------------ lines


@dataclass(frozen=True)
class Line:
    caller: str | None  # printk caller id ("T123", "C1") with CONFIG_PRINTK_CALLER
    text: str  # the message, with the kernel's indentation
    kind: str  # see classify()
    only: frozenset[str] | None = None  # the kinds of report that print such a line, if only some do
    pid: str | None = None  # the task the line names (PID_RE)


def classify(text: str) -> str:
    if not text.strip():
        return "blank"
    if MARK_RE.search(text):
        return "mark"
    if CUT_RE.match(text):
        return "cut"
    if RULE_RE.match(text):
        return "rule"
    if END_TRACE_RE.match(text):
        return "end"
    if match(text):
        return "head"
    if TRACE_START_RE.match(text) or ACCESS_RE.match(text):
        return "tstart"
    if frame_of(text):
        return "frame"
    if TRACE_LINE_RE.match(text):
        return "tline"
    if CONTEXT_RE.match(text):
        return "context"
    return "other"


def parse(text: str) -> list[Line]:
    out = []
    for raw in logtext.split_lines(logtext.normalise(text)):
        caller, msg = logtext.split_prefix(raw)
        m = _SPECIFIC_RE.match(msg)
        only = SPECIFIC[int(m.lastgroup[1:])][1] if m else None
        pid = PID_RE.search(msg)
        out.append(Line(caller, msg, classify(msg), only, pid and next(g for g in pid.groups() if g)))
    return out


# ------------------------------------------------------------------------------------------ reports


@dataclass(eq=False)
class _Report:
    """A report being read: the lines it owns and what it expects next."""

    start: int
    caller: str | None
    cut: bool = False
    head: int | None = None  # None while a "cut here" block waits for its headline
    pattern: Pattern | None = None
    m: re.Match | None = None
    owned: list[int] = field(default_factory=list)
    phase: str = "head"  # "head" (before its stack), "trace", "done"
    stack: str = "none"  # "open" inside a stack, "ending" past its first frame, "closed" after it,
    # "pre" when another backtrace is announced
    task_marks: bool = False  # saw <TASK>: x86 marks the end of the stack with </TASK>
    head_frames: bool = False  # its header announced frames ("-> #1 ...:", "Preemption disabled at:")
    indent: int | None = None  # of the frames of its current stack: one stack, one indentation
    seen: set[str] = field(default_factory=set)  # ONCE_RE lines of its current backtrace
    rule_len: int | None = None  # length of the ===== rule it opened with
    backtrace: bool = False  # printed "NMI backtrace for cpu N" or a task dump header
    pids: set[str] = field(default_factory=set)  # tasks its lines named
    starved: int = 0  # lines other reports took since this one took one
    merge_into: "_Report | None" = None  # a consequential panic: its lines belong to that report

    @property
    def kind(self) -> str:
        return self.pattern.kind if self.pattern else "warn"

    def own(self, i: int) -> None:
        self.owned.append(i)
        self.starved = 0

    def takes(self, line: Line, i: int, strict: bool = False) -> bool:
        """Whether this line can belong to this report (which one it goes to is decided by _choose).

        The strict answer also asks whether this kind of report prints such a line at this point
        (a lockdep report prints no registers before its "stack backtrace:", a KCSAN report no
        "Call Trace:"...): it is what keeps two reports printed at the same time apart.
        """
        cls, kind = line.kind, self.kind
        if line.only is not None and kind not in line.only:
            return False
        if self.head is None:  # "cut here" and a WARN message before the WARNING line, no "CPU: ..." yet
            return cls in ("other", "context") and i - self.start <= 8 and not DEVICE_RE.match(line.text)
        if self.stack == "closed" and cls in ("frame", "tline"):
            return False  # its stack is over: frames now are another report's
        if self.stack == "ending" and cls == "frame":
            frame, reliable = frame_of(line.text)
            if reliable and frame.name not in TERMINAL_FRAMES:
                return False  # past ret_from_fork only ret_from_fork_asm and "? " frames remain
        if self.stack == "pre" and cls == "frame":
            return False
        if cls == "end":
            return kind in ENDS_WITH_TRACE_MARK or self.cut
        if cls == "rule":
            # its closing rule: as long as its opening one (lockdep's is as long as its headline)
            return kind in DELIMITED and self.phase != "head" and self.rule_len in (None, len(line.text.strip()))
        if strict:
            return self._prints(line, i)
        if cls in ("frame", "tline", "tstart", "context"):
            return True
        if cls == "other":
            if kind in DELIMITED:
                return True
            return self.phase == "head" and i - self.head <= PRE_TRACE_LINES.get(kind, 80)
        return False

    def _prints(self, line: Line, i: int) -> bool:
        cls, kind, head = line.kind, self.kind, self.phase == "head"
        if (m := ONCE_RE.match(line.text)) and m.lastgroup in self.seen:
            return False
        if line.pid and self.pids and line.pid not in self.pids and kind not in MULTI_CPU:
            return False  # "CPU: 2 PID: 1127" after "in_atomic(): ... pid: 5341": another report's
        if cls == "tstart":
            if line.only is not None:
                return True
            # lockdep's stack comes after "stack backtrace:", a stall's after "NMI backtrace for cpu N"
            return not (kind == "kcsan" or (head and (kind == "lockdep" or (kind in MULTI_CPU and kind not in
                                                                          LOCKUP_KINDS and not self.backtrace))))
        if cls == "tline":
            # a stall's registers come with the backtrace of the CPU that stalls
            return not head or (kind in REGS_BEFORE_TRACE and (kind != "rcu_stall" or self.backtrace))
        if cls == "frame":
            if self.indent is not None and _indent(line.text) != self.indent:
                return False  # lockdep's dependency chains are indented deeper than a call trace
            return self.stack in ("open", "ending") or (head and self.head_frames)
        if cls == "context" and head and DEVICE_RE.match(line.text):
            return kind in DEVICE_IN_HEAD or self.backtrace  # "CPU: ..." before its stack, or another task's
        if cls == "context":
            return True
        if cls == "other":
            if kind in DELIMITED and not head:
                return True
            return head and (len(self.owned) <= HEAD_OTHER_LINES or i - self.head <= PRE_TRACE_LINES.get(kind, 0))
        return False

    def after(self, line: Line) -> None:
        """Advance the state with a line this report took."""
        cls = line.kind
        if line.pid:
            self.pids.add(line.pid)
        if cls == "frame" and self.indent is None:
            self.indent = _indent(line.text)
        elif cls == "tstart":
            self.indent = None  # lockdep's chains share one indentation, its stack backtrace has another
        if cls == "tstart":
            self.phase, self.stack = "trace", "open"
        elif self.stack == "closed" and cls == "context" and BACKTRACE_START_RE.match(line.text):
            self.stack = "pre"
        if "<TASK>" in line.text:
            self.task_marks = True
        if BACKTRACE_START_RE.match(line.text) or line.text.startswith("stack backtrace:"):
            self.backtrace = True
            self.seen -= PER_BACKTRACE  # another task's or CPU's backtrace: it has its own "CPU:", "Call Trace:"...
        if m := ONCE_RE.match(line.text):
            self.seen.add(m.lastgroup)
        if self.phase == "head" and AT_INTRO_RE.match(line.text):
            self.head_frames = True
        if cls == "end" or (cls == "rule" and self.kind in DELIMITED and self.head is not None):
            self.phase = "done"
        elif self.stack in ("open", "ending") and TASK_END_RE.match(line.text):
            self.stack = "closed"  # x86 closes a task's stack with </TASK>
            if self.kind in SINGLE_STACK and not self.cut:
                self.phase = "done"
        elif self.stack == "open" and cls == "frame" and frame_of(line.text)[0].name in TERMINAL_FRAMES:
            self.stack = "ending"  # without </TASK> (arm64, stack_trace_print()): a task's stack starts there
            if self.kind in SINGLE_STACK and not self.cut and not self.task_marks:
                self.phase = "done"


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def _continues(r: _Report, pattern: Pattern, line: Line, lines: Sequence[Line]) -> bool:
    """A headline-like line that is part of open report r, not a new report."""
    if r.head is None:
        return pattern.kind in CUT_KINDS  # the headline of a "cut here" block
    n = len(r.owned)
    if (pattern is r.pattern and lines[r.head].text.rstrip().endswith("[inline]")
            and all(lines[k].kind == "other" for k in r.owned if k > r.head) and len(r.owned) <= 8):
        return True  # syzbot prints one headline per inlined function; the last names the real one
    if r.phase != "head":
        return False
    if n <= 6 and ((r.kind == "refcount" and pattern.kind == "refcount")
                   or (r.kind == "list_corruption" and ("list_debug.c" in line.text
                                                        or pattern.kind == "list_corruption"))):
        # "refcount_t: ..." then its WARNING, "list_add corruption" then "kernel BUG at lib/list_debug.c",
        # and the older WARNING at lib/list_debug.c then "list_del corruption"
        return True
    return bool(OOPS_LINE_RE.match(line.text)) and r.kind in ("oops", "bug", "list_corruption") and n <= 25


def _same_source(r: _Report, line: Line) -> bool:
    return r.caller is None or line.caller is None or r.caller == line.caller


class _Separator:
    """Reads the console once, giving each line to at most one report."""

    def __init__(self, lines: Sequence[Line]):
        self.lines = lines
        self.owner: list[_Report | None] = [None] * len(lines)
        # who took each line by the strict rules: what _choose learns the interleaving pattern from
        self.strong: list[_Report | None] = [None] * len(lines)
        self.reports: list[_Report] = []
        self.open: list[_Report] = []
        self.pending_rules: list[int] = []  # recent ===== lines nobody took: the start of the next report

    def run(self) -> list[_Report]:
        for i, line in enumerate(self.lines):
            if line.kind in ("blank", "mark"):
                continue
            if line.kind == "head":
                self._headline(i, line)
            elif line.kind == "cut" and not self._cut_continues(i, line):
                self._end_reports_of(line.caller)
                self._open(_Report(start=i, caller=line.caller, cut=True), i)
            elif line.kind != "cut":
                self._give(i, line)
            if line.kind == "rule" and self.owner[i] is None:
                self.pending_rules = [k for k in self.pending_rules if i - k <= 6] + [i]
            self.open = [r for r in self.open if r.phase != "done" and not self._over(r, i)]
        return [r for r in self.reports if r.pattern is not None]

    def _headline(self, i: int, line: Line) -> None:
        pattern, m = match(line.text)
        cands = [r for r in self.open if _same_source(r, line) and _continues(r, pattern, line, self.lines)]
        # "refcount_t: ..." then its WARNING line, "Oops: ..." after "BUG: unable to handle ...": those
        # continue their report; else of two "cut here" blocks waiting, the first gets the first headline
        going = [r for r in cands if r.head is not None]
        if cands:
            if going or line.caller:
                r = self._choose(going or cands, i, line)
            else:
                r = self._predict(cands, i, sure=True) or cands[0]
            if r.head is None or pattern is r.pattern:
                r.head, r.pattern, r.m = i, pattern, m
            self._take(r, i, line)
            return
        self._end_reports_of(line.caller)
        if pattern.kind in SERIAL_KINDS:
            for r in self.open:
                if r.kind == pattern.kind and _same_source(r, line):
                    r.phase = "done"
        start = i
        rules = [k for k in self.pending_rules if i - k <= 6 and self.owner[k] is None]
        if pattern.kind in STARTS_WITH_RULE and rules:
            # lockdep underlines its headline with a rule as long as it, KASAN and KCSAN use 66 "="
            width = len(line.text.strip()) if pattern.kind == "lockdep" else 66
            same = [k for k in rules if len(self.lines[k].text.strip()) == width]
            start = (same or rules)[-1]
            self.pending_rules.remove(start)
        r = _Report(start=start, caller=line.caller, head=i, pattern=pattern, m=m)
        if pattern.kind == "panic" and CONSEQUENTIAL_PANIC_RE.search(line.text):
            r.merge_into = next((p for p in reversed(self.reports) if p.pattern and _same_source(p, line)), None)
        if start != i:
            self.owner[start] = self.strong[start] = r
            r.owned.append(start)
            r.rule_len = len(self.lines[start].text.strip())
        self._open(r, i)

    def _end_reports_of(self, caller: str | None) -> None:
        """One CPU or task prints one report at a time: a new one ends its previous one."""
        if caller:
            for r in self.open:
                if r.caller == caller and r.kind not in MULTI_CPU:
                    r.phase = "done"

    def _cut_continues(self, i: int, line: Line) -> bool:
        """"cut here" inside a list corruption report, before its "kernel BUG at"."""
        for r in reversed(self.open):
            if _same_source(r, line) and r.kind == "list_corruption" and r.phase == "head" and len(r.owned) <= 3:
                self._take(r, i, line)
                return True
        return False

    def _open(self, r: _Report, i: int) -> None:
        self.reports.append(r)
        self.open.append(r)
        self._take(r, i, self.lines[i])

    def _take(self, r: _Report, i: int, line: Line) -> None:
        self.owner[i] = r
        if line.kind in ("head", "cut"):
            self.strong[i] = r
        r.own(i)
        for other in self.open:
            if other is not r and _same_source(other, line):  # another task printing is no news
                other.starved += 1
        r.after(line)

    def _give(self, i: int, line: Line) -> None:
        cands = [r for r in self.open if self._may_take(r, line, i, strict=True)]
        if cands:
            r = self._choose(cands, i, line)
            if line.kind != "other" or line.only:  # free text says nothing about who prints
                self.strong[i] = r
            self._take(r, i, line)
        elif cands := [r for r in self.open if self._may_take(r, line, i)]:
            self._take(self._choose(cands, i, line), i, line)

    def _may_take(self, r: _Report, line: Line, i: int, strict: bool = False) -> bool:
        if r.caller and line.caller and r.caller != line.caller:
            # another CPU's NMI backtrace ("[  C3]") in a stall report, unless that CPU prints its own report
            if (r.kind not in MULTI_CPU or not line.caller.startswith("C")
                    or line.kind not in ("frame", "tline", "tstart", "context")):
                return False
            if any(o.caller == line.caller for o in self.open):
                return False
        return r.takes(line, i, strict)

    def _choose(self, cands: list[_Report], i: int, line: Line) -> _Report:
        if len(cands) > 1 and line.caller:
            same = [r for r in cands if r.caller == line.caller]
            cands = same or cands
        if len(cands) == 1:
            return cands[0]
        if got := self._predict(cands, i, sure=False):
            return got
        # a frame goes to a report that is in its stack rather than one still printing its header
        tracing = [r for r in cands if r.phase == "trace"]
        pool = tracing if line.kind == "frame" and tracing else cands
        return max(pool, key=lambda r: r.owned[-1])

    def _predict(self, cands: list[_Report], i: int, sure: bool) -> _Report | None:
        """The report the interleaving so far says line i belongs to.

        Without caller ids, continue the way the open reports have been sharing the lines:
        line by line (period 2 for two reports), or in blocks (period 1). With sure=True,
        only when one period explains the past lines better than the others.
        """
        if not self._interleaved(cands, i):
            # one report at a time so far: the one printing goes on (a new headline takes over)
            recent = next((self.strong[k] for k in range(i - 1, max(-1, i - PATTERN_WINDOW), -1)
                           if self.strong[k] is not None and self.strong[k] in cands), None)
            return None if sure else recent
        scored = sorted(((self._score(p, i), p) for p in PERIODS), key=lambda sp: (-sp[0], sp[1]))
        if sure and scored[0][0] <= 0 and scored[0][0] <= self._score(1, i):
            return None  # no line of evidence for blocks against line-by-line or the reverse
        for _, period in scored:
            for back in range(i - period, max(-1, i - 9 * period), -period):
                if self.strong[back] is not None:
                    if self.strong[back] in cands:
                        return self.strong[back]
                    break
            if sure:
                return None
        return None

    def _interleaved(self, cands: list[_Report], i: int) -> bool:
        """Whether the candidates took turns: one went on after another had started (A, B, A)."""
        order: list[_Report] = []
        for k in range(max(0, i - PATTERN_WINDOW), i):
            r = self.strong[k]
            if r is None or r not in cands or (order and order[-1] is r):
                continue
            if r in order:
                return True
            order.append(r)
        return False

    def _score(self, p: int, i: int) -> int:
        """How well "line k went to the report line k-p went to" explains the last lines."""
        s = 0
        for k in range(max(p, i - PATTERN_WINDOW), i):
            a, b = self.strong[k], self.strong[k - p]
            if a is not None and b is not None:
                s += 1 if a is b else -2  # an exact pattern beats "mostly blocks"
        return s

    def _over(self, r: _Report, i: int) -> bool:
        """Whether r ended before line i+1: too long without a line of its own, or past its stack."""
        if r.starved > STARVE:
            return True
        if r.head is None:
            return i - r.start > 8
        if i - r.head > MAX_REPORT_LINES:
            return True
        line = self.lines[i]
        if self.owner[i] is not None or line.kind in ("blank", "mark", "head", "cut") or not _same_source(r, line):
            return False  # its own line, or another report's or task's printed in between: not a gap
        if r.phase == "trace" and r.kind not in DELIMITED and not r.takes(line, i):
            # a line that fits nothing ends the report unless lines of it follow shortly after
            ahead = [k for k in range(i + 1, min(len(self.lines), i + 1 + 2 * INTERLEAVE_LOOKAHEAD))
                     if self.lines[k].kind not in ("blank", "mark") and _same_source(r, self.lines[k])]
            ahead = ahead[:INTERLEAVE_LOOKAHEAD]
            return not any(self.lines[k].kind != "other" and r.takes(self.lines[k], k, strict=True) for k in ahead)
        if r.phase == "head" and not r.takes(line, i):
            return i - r.head > PRE_TRACE_LINES.get(r.kind, 80)
        return False


# ------------------------------------------------------------------------------------------ findings


def extract(text: str, where: str = "console", offset: int = 0) -> list[Finding]:
    """Every report in text, in order (not yet deduplicated).

    text may be a raw paste (it is normalised here). `where` names the part of the run
    the text comes from; triage() instead names each report by the suite markers.
    """
    lines = parse(text)
    return _findings(lines, [(where, 0)] * len(lines), offset)


def _findings(lines: Sequence[Line], where_at: Sequence[tuple[str, int]], offset: int) -> list[Finding]:
    reports = _Separator(lines).run()
    merged: dict[int, list[int]] = {id(r): list(r.owned) for r in reports}
    for r in reports:
        if r.merge_into is not None and id(r.merge_into) in merged:
            merged[id(r.merge_into)] += merged.pop(id(r))
    owner = {k: key for key, ks in merged.items() for k in ks}
    findings = []
    for r in reports:
        if id(r) not in merged:
            continue
        owned = sorted(merged[id(r)])
        body = [lines[k].text for k in sorted(r.owned)]
        frames = main_frames(r.kind, body)
        title = make_title(r.pattern, r.m, body, frames)
        names = tuple(f.name for f in frames)
        where, run = where_at[r.start]
        findings.append(Finding(kind=r.kind, title=title,
                                fingerprint=fingerprint(r.kind, title, _fingerprint_frames(frames)),
                                frames=names[:5], text=_text(lines, owned, id(r), owner),
                                where=where, first_line=offset + r.start + 1, runs=(run,) if run else ()))
    return findings


def _text(lines: Sequence[Line], owned: list[int], key: int, owner: dict[int, int]) -> str:
    """The report's lines from its first to its last, without other reports' lines and wqci markers."""
    keep = [lines[k].text for k in range(owned[0], owned[-1] + 1)
            if owner.get(k, key) == key and lines[k].kind != "mark"]
    return "\n".join(keep)


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    merged: dict[str, Finding] = {}
    for f in findings:
        if f.fingerprint in merged:
            have = merged[f.fingerprint]
            merged[f.fingerprint] = replace(have, count=have.count + f.count,
                                            runs=tuple(sorted(set(have.runs) | set(f.runs))))
        else:
            merged[f.fingerprint] = f
    return list(merged.values())


def suite_at(lines: Sequence[Line]) -> list[tuple[str, int]]:
    """For each console line, the suite running when it was printed and the number of its run:
    from the markers wqci writes to /dev/kmsg, ("boot", 0) before the first one, ("idle", 0)
    between an end and the next begin."""
    out, where = [], ("boot", 0)
    for line in lines:
        if line.kind == "mark":
            m = MARK_RE.search(line.text)
            where = (m.group(2), int(m.group(3) or 0)) if m.group(1) == "begin" else ("idle", 0)
        out.append(where)
    return out


def triage(console: str) -> list[Finding]:
    """The findings of a whole console or pasted log, each placed in the suite where it started.

    Reports are read over the whole console, not per suite: a marker printed in the middle of
    a report is skipped, it neither cuts the report nor changes its title or fingerprint.
    """
    lines = parse(console)
    return dedupe(_findings(lines, suite_at(lines), 0))


def decode(findings: Sequence[Finding], src: Path, vmlinux: Path, modules: Path | None = None) -> list[Finding]:
    """Add file:line to each report's stack with the kernel's decode_stacktrace.sh."""
    script = src / "scripts" / "decode_stacktrace.sh"
    if not script.is_file() or not vmlinux.is_file():
        return list(findings)
    out = []
    for f in findings:
        argv = [str(script), str(vmlinux), str(src)] + ([str(modules)] if modules else [])
        done = proc.run(argv, stdin_data=f.text + "\n", check=False, timeout=120)
        out.append(replace(f, decoded=done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else f)
    return out


@dataclass(frozen=True)
class KnownFinding:
    match: re.Pattern
    reason: str


def load_known(path: Path, tree: str | None, must_exist: bool = False) -> tuple[KnownFinding, ...]:
    """configs/known-findings.yaml entries for one base tree (every tree's when tree is
    None, as for `wqci triage --known FILE`)."""
    from pipeline.config import Fields, load_yaml

    if not path.exists() and not must_exist:
        return ()
    top = Fields(load_yaml(path) or {}, path)
    out = []
    entries = top.items(tree, []) if tree is not None else [e for t in top.data for e in top.items(str(t))]
    for entry in entries:
        entry.check_keys({"match", "reason"})
        try:
            out.append(KnownFinding(re.compile(entry.str("match")), entry.str("reason").strip()))
        except re.error as exc:
            from pipeline.model.errors import ConfigError

            raise ConfigError(path=path, detail=f"{entry.where}.match: not a regex: {exc}") from None
    return tuple(out)


def known_reason(finding: Finding, known: Sequence[KnownFinding]) -> str | None:
    key = f"{finding.kind}: {finding.title}"
    return next((k.reason for k in known if k.match.search(key)), None)
