"""Running suites in a booted guest: load the module, wait, unload, cut out its log.

Each module run is framed by markers written to /dev/kmsg, so its part of the
kernel log (and of the serial console, for triage) can be cut out exactly. A
run that exceeds its timeout becomes an error case with forensics (sysrq t and
w, the console tail), and the caller reboots the guest before the next suite.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.guest import qemu
from pipeline.model.errors import GuestError
from pipeline.guest.ssh import Guest
from pipeline.model.status import Status, worst
from pipeline.suites import lockstat, parser as find_parser
from pipeline.suites.config import SuiteConfig
from pipeline.model.cases import Case, ModuleRun, SuiteRun

SYSRQ_KEYS = ("t", "w")
# kmod's tools by absolute path: Debian's busybox-static shell runs its own applet for
# a bare "modprobe" whatever PATH says, and busybox's modprobe calls init_module again
# after a failed finit_module (test_workqueue fails its init on purpose: it would run twice).
MODPROBE = "/usr/sbin/modprobe"
LSMOD = "/usr/sbin/lsmod"
CONSOLE_SETTLE = 3.0  # seconds for a sysrq dump to reach the serial console


@dataclass(frozen=True)
class SuiteOutcome:
    suite: str
    cases: tuple[Case, ...]
    log: Path
    duration: float
    needs_reboot: bool = False

    @property
    def status(self) -> Status:
        return worst(c.status for c in self.cases)


def marker(kind: str, suite: str, run: int) -> str:
    return f"wqci: {kind} suite {suite} run {run}"


def between(log: str, suite: str, run: int) -> str:
    """The kernel log lines between this run's begin and end markers."""
    begin, end = marker("begin", suite, run), marker("end", suite, run)
    lines = log.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.endswith(begin)), None)
    if start is None:
        return log
    stop = next((i for i, ln in enumerate(lines[start:], start) if ln.endswith(end)), len(lines))
    return "\n".join(lines[start + 1:stop])


def load_command(cfg: SuiteConfig, variant: dict[str, str]) -> str:
    params = {**cfg.params, **variant}
    args = [f"{k}={v}" for k, v in params.items()]
    return shlex.join([MODPROBE, cfg.module, *args])


def module_run(conn: Guest, cfg: SuiteConfig, variant: dict[str, str], run: int) -> ModuleRun:
    label = ",".join(variant.values())
    # lock_stat only where the kernel has it (the lockstat flavour); elsewhere nothing is read
    counting = bool(cfg.lock_stat) and conn.run(lockstat.RESET, timeout=30).exited == 0
    conn.check(f"echo '{marker('begin', cfg.name, run)}' > /dev/kmsg")
    command = load_command(cfg, variant)
    started = time.monotonic()
    result = conn.run(command + " 2>&1", timeout=cfg.timeout)
    output, code, timed_out = result.stdout, result.exited, result.timed_out
    if not timed_out and cfg.duration:
        time.sleep(cfg.duration)
    if not timed_out:
        # unload whatever stayed loaded (locktorture, a passing ww_mutex selftest)
        unload = conn.run(f"{LSMOD} | grep -q '^{cfg.module.replace('-', '_')} ' && {MODPROBE} -r {cfg.module} "
                          "2>&1 || true", timeout=cfg.timeout)
        output += unload.stdout
        timed_out = unload.timed_out
        if cfg.duration and unload.exited:
            code = code or unload.exited
    duration = time.monotonic() - started
    if timed_out:
        return ModuleRun(variant=label, command=command, exit_code=-1, output=output, log="", duration=duration,
                         timed_out=True)
    conn.check(f"echo '{marker('end', cfg.name, run)}' > /dev/kmsg")
    stats = conn.run(lockstat.READ, timeout=60).stdout if counting else ""
    log = between(conn.dmesg(), cfg.name, run)
    return ModuleRun(variant=label, command=command, exit_code=code, output=output, log=log, duration=duration,
                     lock_stat=stats)


def forensics(conn: Guest, vm: qemu.Vm) -> str:
    """Task states and blocked tasks into the console, over SSH or, failing that, QMP."""
    how = "sysrq via /proc/sysrq-trigger"
    try:
        done = conn.run("; ".join(f"echo {k} > /proc/sysrq-trigger" for k in SYSRQ_KEYS), timeout=30)
        if done.timed_out or done.exited:
            raise GuestError(detail="sysrq over SSH failed")
    except GuestError:
        how = "sysrq via QMP send-key"
        for key in SYSRQ_KEYS:
            try:
                vm.qmp("send-key", keys=[{"type": "qcode", "data": k} for k in ("alt", "sysrq", key)])
            except (OSError, ValueError):
                how = "no forensics: neither SSH nor QMP answered"
    time.sleep(CONSOLE_SETTLE)  # let the dump reach the console
    return f"{how}\nconsole tail:\n{qemu.console_tail(vm.req.console, 80)}"


def run_suite(conn: Guest, vm: qemu.Vm, cfg: SuiteConfig, out_dir: Path, first_run: int = 1) -> SuiteOutcome:
    """All variants and repeats of one suite; stops at a hang (the guest is then suspect)."""
    started = time.monotonic()
    runs: list[ModuleRun] = []
    number = first_run
    hung = None
    for _ in range(cfg.repeats):
        for variant in cfg.variants:
            mod = module_run(conn, cfg, dict(variant), number)
            number += 1
            runs.append(mod)
            if mod.timed_out:
                hung = forensics(conn, vm)
                break
        if hung:
            break
    done = SuiteRun(suite=cfg.name, runs=tuple(runs), params=dict(cfg.params))
    cases = list(find_parser(cfg.parser)(done)) + lockstat.cases(done, cfg.lock_stat)
    if hung:
        cases = [c if c.status is not Status.ERROR else
                 replace(c, message=f"timed out after {cfg.timeout:.0f} s", text=hung) for c in cases]
    log = out_dir / f"{cfg.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("\n\n".join(f"$ {m.command}\n{m.output}\n--- kernel log ---\n{m.log}"
                               + (f"\n--- {lockstat.PROC} ---\n{m.lock_stat}" if m.lock_stat else "")
                               for m in runs) + "\n")
    return SuiteOutcome(suite=cfg.name, cases=tuple(cases), log=log, duration=time.monotonic() - started,
                        needs_reboot=hung is not None)

