"""Console and dmesg triage: whole kernel reports, normalised titles, fingerprints.

A finding is one report (a KCSAN race, a lockdep splat, a WARN, a stall...)
with a kind, a title that does not depend on addresses, PIDs, CPU numbers or
timestamps, a fingerprint (kind plus the normalised top frames) and the full
text. Findings with the same fingerprint are one finding with a count.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from pipeline import proc

PREFIX_RE = re.compile(r"^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s?)?(?:\[\s*[TC]\d+\]\s?)?")
OFFSET_RE = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+")
FRAME_RE = re.compile(r"^\s*(\? )?([A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+/0x[0-9a-f]+")
INLINE_FRAME_RE = re.compile(r"^\s+([A-Za-z_.$][\w.$]*) \S+:\d+ \[inline\]")
DECODED_FRAME_RE = re.compile(r"^\s*(\? )?([A-Za-z_.$][\w.$]*) \([^()]*:\d+\)")
WARN_AT_RE = re.compile(r"WARNING: (?:CPU: \d+ PID: \d+ at \S+:\d+ |\S+:\d+ at )([\w.$]+)")
TRACE_START_RE = re.compile(r"^(Call [Tt]race:|stack backtrace:|Backtrace:)")
TRACE_LINE_RE = re.compile(
    r"^\s*(\? )?[\w.$]+\+0x[0-9a-f]+/0x[0-9a-f]+|^\s+[\w.$]+ \S+:\d+ \[inline\]|^\s*</?(TASK|IRQ|NMI|SOFTIRQ)>|"
    r"^\s*(RIP|RSP|RAX|RBX|RCX|RDX|RSI|RDI|RBP|R\d+|FS|CS|CR\d|DR\d|Code|pc|lr|sp|pstate|x\d+)\s*:|"
    r"^\s*\[<[0-9a-f]+>\]|^---\[ end|^\s*(\? )?[\w.$]+ \([^()]*:\d+\)")
PC_RE = re.compile(r"^(?:RIP: [0-9a-f]{4}:|pc : |PC is at |epc : )(?:\[<[0-9a-f]+>\] )?([A-Za-z_][\w.$]*)")
RULE_RE = re.compile(r"^={20,}$")
CUT_RE = re.compile(r"^-+\[ cut here \]-+$")
END_TRACE_RE = re.compile(r"^-+\[ end trace [0-9a-f]* ?\]-+$")

# Frames that say how the report was printed, not where the problem is.
NOISE_FRAMES = {
    "dump_stack", "dump_stack_lvl", "show_stack", "dump_backtrace", "__dump_stack", "__warn", "warn_slowpath_fmt",
    "report_bug", "handle_bug", "exc_invalid_op", "asm_exc_invalid_op", "do_error_trap", "die", "bug_handler",
    "call_break_hook", "brk_handler", "do_debug_exception", "el1_dbg", "el1h_64_sync_handler", "el1h_64_sync",
    "kcsan_report_known_origin", "kcsan_setup_watchpoint", "kcsan_found_watchpoint", "print_report",
    "kasan_report", "__asan_load8", "__asan_store8", "__tsan_read4", "__tsan_write4", "__tsan_read8",
    "__tsan_write8", "lock_acquire", "lock_release", "__lock_acquire", "print_usage_bug", "mark_lock",
    "valid_state", "check_prev_add", "check_prevs_add", "validate_chain", "print_circular_bug",
    "check_noncircular", "lockdep_rcu_suspicious", "__might_resched", "__might_sleep", "__schedule_bug",
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
    # lockdep internals
    "mark_lock_irq", "mark_usage", "lockdep_hardirqs_on_prepare", "trace_hardirqs_on",
    "__trace_hardirqs_on_caller", "check_deadlock", "print_deadlock_bug", "print_unlock_imbalance_bug",
    "__lock_release", "lock_is_held_type", "__list_add_valid", "__list_del_entry_valid",
    "__refcount_add", "__refcount_inc", "refcount_inc", "__list_add", "list_add_tail", "list_add",
    "rt_spin_lock", "rtlock_slowlock_locked", "__mutex_unlock_slowpath", "mutex_unlock", "rcu_dump_cpu_stacks",
}
NOISE_PREFIXES = ("atomic_", "raw_atomic_", "arch_atomic_", "__sanitizer", "__tsan", "__asan", "asm_", "__kcsan", "kcsan_report", "_raw_spin_", "__raw_spin_",
                  "instrument_", "__ubsan_handle", "mutex_lock", "_raw_read_", "_raw_write_")


@dataclass(frozen=True)
class Pattern:
    kind: str
    regex: re.Pattern
    title: str  # format with the regex's named groups


def _p(kind: str, regex: str, title: str) -> Pattern:
    return Pattern(kind, re.compile(regex), title)


# Order matters: specific lockdep/refcount/list headlines before generic WARNING/BUG ones.
PATTERNS: tuple[Pattern, ...] = (
    _p("kcsan", r"^BUG: KCSAN: (?P<what>.+)$", "KCSAN: {what}"),
    _p("kasan", r"^BUG: KASAN: (?P<what>[\w-]+) in (?P<func>\S+)", "KASAN: {what} in {func}"),
    _p("ubsan", r"^UBSAN: (?P<what>[\w-]+) in (?P<file>[^:\s]+)", "UBSAN: {what} in {file}"),
    _p("lockdep", r"^WARNING: (?P<what>possible circular locking dependency detected|possible recursive locking "
       r"detected|inconsistent lock state|suspicious RCU usage|bad unlock balance detected!|possible irq lock "
       r"inversion dependency detected|\S+-safe -> \S+-unsafe lock order detected|held lock freed!|lock held "
       r"when returning to user space!|Nested lock was not taken|lock held at task exit time!)", "{what}"),
    _p("lockdep", r"^BUG: (?P<what>MAX_LOCKDEP_\w+ too low!|looking up invalid subclass: \d+)", "{what}"),
    _p("wq_lockup", r"^BUG: workqueue lockup - pool", "workqueue lockup"),
    _p("soft_lockup", r"^watchdog: BUG: soft lockup - CPU#\d+ stuck", "soft lockup"),
    _p("hard_lockup", r"^(?:watchdog: )?(?:CPU\d+: )?Watchdog detected hard LOCKUP on cpu", "hard lockup"),
    _p("rcu_stall", r"^(?:rcu: )?INFO: (?P<flavor>rcu_\w+) (?:self-)?detected stalls?", "rcu stall"),
    _p("hung_task", r"^INFO: task (?P<comm>.+?):\d+ blocked for more than \d+ seconds", "task hung"),
    _p("atomic_sleep", r"^BUG: (?P<what>sleeping function called from invalid context|scheduling while atomic"
       r"|workqueue leaked atomic, lock or RCU|using smp_processor_id\(\) in preemptible)", "{what}"),
    _p("list_corruption", r"^(?P<what>list_(?:add|del)(?: double add| corruption))", "{what}"),
    _p("refcount", r"^refcount_t: (?P<what>[^;.]+)", "refcount_t: {what}"),
    _p("oops", r"^BUG: (?P<what>unable to handle page fault|kernel NULL pointer dereference|unable to handle "
       r"kernel paging request)", "{what}"),
    _p("oops", r"^Unable to handle kernel (?P<what>paging request|NULL pointer dereference)",
       "unable to handle kernel {what}"),
    _p("bug", r"^kernel BUG at (?P<file>[^:]+):\d+!", "kernel BUG"),
    _p("warn", r"^WARNING: CPU: \d+ PID: \d+ at (?P<file>\S+):\d+", "WARNING"),
    _p("warn", r"^WARNING: (?P<file>\S+):\d+ at [\w.$]+", "WARNING"),
    _p("oops", r"^(?:Internal error: )?Oops(?: - BUG)?: ", "Oops"),
    _p("panic", r"^Kernel panic - not syncing: (?P<why>.*)$", "Kernel panic - not syncing: {why}"),
)

# Kinds whose report names the function from its WARNING/PC line or first frame.
NAMED_BY_LOCATION = {"warn": "WARNING in", "bug": "kernel BUG in", "soft_lockup": "soft lockup in",
                     "hard_lockup": "hard lockup in", "rcu_stall": "rcu stall in", "hung_task": "task hung in",
                     "oops": None, "atomic_sleep": None, "refcount": None, "list_corruption": None}


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

    def to_dict(self) -> dict:
        return {"kind": self.kind, "title": self.title, "fingerprint": self.fingerprint,
                "frames": list(self.frames), "where": self.where, "count": self.count,
                "text": self.decoded or self.text}


def strip_prefix(line: str) -> str:
    return PREFIX_RE.sub("", line.rstrip("\r\n"), count=1)


def normalize(text: str) -> str:
    """Drop what changes from run to run: offsets, addresses, numbers, [comm:pid]."""
    text = OFFSET_RE.sub("", text)
    text = re.sub(r"\b0x[0-9a-f]+\b", "ADDR", text)
    text = re.sub(r"\[[\w/:.-]+:\d+\]", "", text)
    text = re.sub(r"\b\d+(\.\d+)?s?\b", "N", text)
    return " ".join(text.split())


def match(line: str) -> tuple[Pattern, re.Match] | None:
    for pattern in PATTERNS:
        m = pattern.regex.match(line)
        if m:
            return pattern, m
    return None


def frames_of(lines: Sequence[str]) -> list[str]:
    out = []
    for line in lines:
        m = FRAME_RE.match(line)
        if m and line[:1].isspace() and not m.group(1):
            name = m.group(2)
        elif (m := INLINE_FRAME_RE.match(line)):
            name = m.group(1)
        elif (m := DECODED_FRAME_RE.match(line)) and not m.group(1) and not line.rstrip().endswith(":"):
            name = m.group(2)
        else:
            continue
        name = clean_frame(name)
        if not is_noise(name):
            out.append(name)
    return out


PC_NAMED = {"soft_lockup", "hard_lockup", "rcu_stall", "oops", "bug"}


def location(kind: str, lines: Sequence[str]) -> str | None:
    """Where the report happened: the spinning or faulting PC for lockups, stalls and
    oopses (even inside a lock primitive: that is the lockup), the WARNING line's
    function for warnings unless it only reports for its caller."""
    if kind in PC_NAMED:
        for line in lines:
            if m := PC_RE.match(line.strip()):
                return clean_frame(m.group(1))
    for line in lines:
        if (m := WARN_AT_RE.search(line)) and not is_noise(clean_frame(m.group(1))):
            return clean_frame(m.group(1))
    return None


def is_noise(name: str) -> bool:
    return name in NOISE_FRAMES or name.startswith(NOISE_PREFIXES)


def clean_frame(name: str) -> str:
    return re.sub(r"\.(?:constprop|isra|part|cold|llvm)(?:\.\d+)?$", "", OFFSET_RE.sub("", name))


def make_title(pattern: Pattern, m: re.Match, lines: Sequence[str], frames: Sequence[str]) -> str:
    groups = {k: v or "" for k, v in m.groupdict().items()}
    func = clean_frame(groups.get("func", ""))
    if func and is_noise(func) and frames:
        # "KASAN: ... in instrument_atomic_read_write": name the caller instead
        groups["func"] = frames[0]
    title = OFFSET_RE.sub("", pattern.title.format(**groups))
    if pattern.kind == "kcsan":
        title = kcsan_title(title)
    if pattern.kind in NAMED_BY_LOCATION:
        where = location(pattern.kind, lines) or (frames[0] if frames else None)
        prefix = NAMED_BY_LOCATION[pattern.kind]
        if where:
            title = f"{prefix} {where}" if prefix else f"{title} in {where}"
    return normalize(title)


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


CONTEXT_RE = re.compile(
    r"^(\s|CPU: |Hardware name: |Workqueue: |Modules linked in:|Tainted: |Sending NMI|NMI backtrace|task:|"
    r"rcu: |\(detected by|Showing |workqueue |pool \d+:|INFO: lockdep|other info|Chain exists|\*\*\*|"
    r"-> #\d|the existing dependency|\d+ locks? held|no locks held|#\d+:|irq event stamp:|hardirqs |softirqs |"
    r"[-=]{10,}$|\[ BUG:|Preemption disabled at:|in_atomic\(\)|preempt_count:|RCU nest depth|"
    r"#PF: |PGD |Oops|ESR = |Mem abort|Data abort|FAR = )")
PRE_TRACE_LINES = {"lockdep": 400, "wq_lockup": 200, "rcu_stall": 120}
DELIMITED = {"kcsan", "kasan", "ubsan"}  # open and close with a ===== rule
ENDS_WITH_TRACE_MARK = {"warn", "bug", "refcount", "list_corruption", "oops"}
# A panic caused by the report just before it belongs to that report.
CONSEQUENTIAL_PANIC_RE = re.compile(r"Fatal exception|panic_on_warn|kasan\.fault|softlockup|hung_task|"
                                    r"Hard LOCKUP|RCU Stall|Oops", re.I)
INTERLEAVE_LOOKAHEAD = 3


OOPS_LINE_RE = re.compile(r"^(?:Internal error: )?Oops")


def continues(kind: str, cut: bool, hit_kind: str, line: str, distance: int) -> bool:
    """A headline-like line that is part of the current report, not a new one."""
    if cut and hit_kind == "warn" and distance <= 2:
        return True  # a cut-here block's own WARNING line
    if OOPS_LINE_RE.match(line) and kind in ("oops", "bug", "list_corruption") and distance <= 20:
        return True  # "Oops: ..." after "BUG: unable to handle ..." or "kernel BUG at"
    return kind == "list_corruption" and hit_kind == "bug" and distance <= 5


def next_headline(lines: Sequence[str], headline: int, kind: str, cut: bool) -> int:
    """Where the next report starts."""
    for i in range(headline + 1, len(lines)):
        line = lines[i]
        if CUT_RE.match(line) and i + 1 < len(lines):
            line = lines[i + 1]  # a cut mark starts whatever its next line is
        elif not match(line):
            continue
        hit = match(line)
        if hit is not None and continues(kind, cut, hit[0].kind, line, i - headline):
            continue
        return i
    return len(lines)


def report_end(lines: Sequence[str], headline: int, kind: str, cut: bool) -> int:
    """Index one past the report's last line."""
    limit = min(next_headline(lines, headline, kind, cut), headline + 600)
    if kind in DELIMITED:
        for i in range(headline + 1, limit):
            if RULE_RE.match(lines[i]):
                return i + 1
    if cut or kind in ENDS_WITH_TRACE_MARK:
        for i in range(headline, limit):
            if END_TRACE_RE.match(lines[i]):
                return i + 1
    return _trace_end(lines, headline, limit, kind)


def _trace_end(lines: Sequence[str], headline: int, limit: int, kind: str) -> int:
    """Follow a report without closing delimiter: header lines, then its stack trace(s).

    Other printk lines can land in the middle of a trace; a line that fits
    nothing ends the report only if no trace line follows shortly after it.
    """
    last, in_trace = headline + 1, False
    cap = headline + PRE_TRACE_LINES.get(kind, 80)
    for i in range(headline + 1, limit):
        line = lines[i]
        if not line.strip():
            continue
        if TRACE_START_RE.match(line):
            in_trace, last = True, i + 1
        elif TRACE_LINE_RE.match(line) or CONTEXT_RE.match(line):
            last = i + 1
        elif in_trace:
            ahead = lines[i + 1:i + 1 + INTERLEAVE_LOOKAHEAD]
            if not any(TRACE_LINE_RE.match(a) for a in ahead):
                break
        elif i > cap:
            break
    return last


def main_frames(kind: str, body: Sequence[str]) -> list[str]:
    """The frames that identify the report: the first access of a race, lockdep's own backtrace."""
    if kind == "kcsan":
        first: list[str] = []
        for line in body[1:]:
            if first and (not line.strip() or line.startswith(("read", "write"))):
                break
            first += frames_of([line])
        return first
    if kind == "lockdep":
        marks = [i for i, ln in enumerate(body) if ln.startswith("stack backtrace:")]
        if marks:
            return frames_of(body[marks[-1]:])
    return frames_of(body)


def _start_of(lines: Sequence[str], i: int) -> tuple[int, int, bool] | None:
    """(start, headline, cut) for a report whose headline or cut mark is at line i."""
    if match(lines[i]):
        start, cut = i, False
        if i > 0 and RULE_RE.match(lines[i - 1]):
            start = i - 1
        for back in (1, 2):
            if i >= back and CUT_RE.match(lines[i - back]):
                start, cut = i - back, True
        return start, i, cut
    if CUT_RE.match(lines[i]):
        for j in range(i + 1, min(i + 4, len(lines))):
            if match(lines[j]):
                return i, j, True
    return None


def extract(text: str, where: str = "console", offset: int = 0) -> list[Finding]:
    """Every report in text, in order (not yet deduplicated)."""
    lines = [strip_prefix(ln) for ln in text.splitlines()]
    findings: list[Finding] = []
    i = 0
    while i < len(lines):
        found = _start_of(lines, i)
        if found is None:
            i += 1
            continue
        start, headline, cut = found
        pattern, m = match(lines[headline])
        # syzbot prints one headline per inlined frame; the last one names the real function
        while headline + 1 < len(lines) and (nxt := match(lines[headline + 1])) and nxt[0] is pattern:
            headline, m = headline + 1, nxt[1]
        end = report_end(lines, headline, pattern.kind, cut)
        body = lines[start:end]
        if pattern.kind == "panic" and findings and CONSEQUENTIAL_PANIC_RE.search(lines[headline]):
            prev = findings[-1]
            findings[-1] = replace(prev, text=prev.text + "\n" + "\n".join(body))
            i = max(end, headline + 1)
            continue
        frames = main_frames(pattern.kind, body)
        title = make_title(pattern, m, body, frames)
        findings.append(Finding(kind=pattern.kind, title=title, fingerprint=fingerprint(pattern.kind, title, frames),
                                frames=tuple(frames[:5]), text="\n".join(body), where=where,
                                first_line=offset + start + 1))
        i = max(end, headline + 1)
    return findings


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    merged: dict[str, Finding] = {}
    for f in findings:
        if f.fingerprint in merged:
            have = merged[f.fingerprint]
            merged[f.fingerprint] = replace(have, count=have.count + f.count)
        else:
            merged[f.fingerprint] = f
    return list(merged.values())


MARK_RE = re.compile(r"wqci: (begin|end) suite (\S+)")


def split_by_suite(console: str) -> list[tuple[str, str, int]]:
    """Console text split at the markers wqci writes to /dev/kmsg: (where, text, first line)."""
    parts, current, where, first = [], [], "boot", 0
    for n, line in enumerate(console.splitlines()):
        m = MARK_RE.search(line)
        if m:
            parts.append((where, "\n".join(current), first))
            where = m.group(2) if m.group(1) == "begin" else "idle"
            current, first = [], n + 1
        else:
            current.append(line)
    parts.append((where, "\n".join(current), first))
    return [p for p in parts if p[1].strip()]


def triage(console: str) -> list[Finding]:
    found = []
    for where, text, first in split_by_suite(console):
        found += extract(text, where, first)
    return dedupe(found)


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


def load_known(path: Path, tree: str) -> tuple[KnownFinding, ...]:
    """configs/known-findings.yaml entries for one base tree."""
    from pipeline.config import Fields, load_yaml

    if not path.exists():
        return ()
    top = Fields(load_yaml(path) or {}, path)
    out = []
    for entry in top.items(tree, []):
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
