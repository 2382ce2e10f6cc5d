"""A guest that replays recorded module output: the fake behind variant.run_variant's `booted`.

FakeMachine.booted stands in for guest/boot.py's booted: every boot writes a
serial console as QEMU does, and its guest answers the suite runner's commands
(markers to /dev/kmsg, modprobe, the unload, sysrq, dmesg) with what the script
says the module prints. A module scripted to HANG times out as a real one does;
the runner, the parsers, the reboot and the triage that follow are the real ones.
"""

from __future__ import annotations

import shlex
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator

from pipeline.guest import boot as boot_mod
from pipeline.guest.qemu import Accel
from pipeline.guest.ssh import CommandResult
from pipeline.model.status import Status
from pipeline.suites import runner
from tests.conftest import DATA


@dataclass(frozen=True)
class Module:
    """What one load of a module does: its modprobe output and exit code, the kernel log lines it prints."""

    output: str = ""
    log: str = ""
    exit_code: int = 0


HANG = Module(exit_code=-1)  # the load never returns


def recorded(name: str, keep: str) -> Module:
    """The first run of tests/data/suites/<name>.log, with only the kernel log lines that contain
    one of `keep` (|-separated): the module's own lines, without the reports printed in between."""
    chunk = (DATA / "suites" / f"{name}.log").read_text().split("\n$ ")[0]
    _, _, rest = chunk.partition("\n")
    output, _, log = rest.partition("--- kernel log ---\n")
    lines = [ln.split("] ", 1)[1] for ln in log.splitlines() if any(k in ln for k in keep.split("|"))]
    return Module(output.strip(), "\n".join(lines), 1 if "unavailable" in output else 0)


def ok(command: str, stdout: str = "") -> CommandResult:
    return CommandResult(command, stdout, "", 0, 0.0)


class FakeGuest:
    """The guest's shell as the suite runner uses it; the kernel's messages go to dmesg and the console."""

    def __init__(self, console: Path, load: Callable[[str], Module]) -> None:
        self.console = console
        self.load = load
        self.kernel_log: list[str] = []

    def printk(self, text: str) -> None:
        for line in text.splitlines():
            stamped = f"[{len(self.kernel_log) + 10:5d}.000000] {line}"
            self.kernel_log.append(stamped)
            with self.console.open("a") as f:
                f.write(stamped + "\n")

    def run(self, command: str, timeout: float = 60) -> CommandResult:
        if command.endswith("> /dev/kmsg"):  # echo 'wqci: begin suite X run N' > /dev/kmsg
            self.printk(shlex.split(command)[1])
            return ok(command)
        if command.startswith(runner.MODPROBE + " "):  # modprobe MODULE PARAMS... 2>&1
            module = self.load(shlex.split(command)[1])
            if module is HANG:
                return CommandResult(command, "", "", -1, timeout, timed_out=True)
            self.printk(module.log)
            return CommandResult(command, module.output, "", module.exit_code, 1.0)
        if command.endswith("|| true"):  # the unload: nothing stays loaded
            return ok(command)
        if "/proc/sysrq-trigger" in command:
            self.printk("sysrq: Show State\ntask:modprobe        state:D stack:0     pid:200")
            return ok(command)
        return CommandResult(command, "", f"sh: {command.split()[0]}: not found", 127, 0.0)

    def check(self, command: str, timeout: float = 60) -> str:
        done = self.run(command, timeout)
        assert done.exited == 0, done
        return done.stdout

    def dmesg(self) -> str:
        return "\n".join(self.kernel_log)


@dataclass
class FakeMachine:
    """Boots guests whose modules do what script(kernel label, boot of that kernel, module) says."""

    script: Callable[[str, int, str], Module]
    boots: list[tuple[str, int]] = field(default_factory=list)  # (kernel label, its boot number), in order

    @contextmanager
    def booted(self, layout, req: boot_mod.BootRequest) -> Iterator[tuple[object, FakeGuest, boot_mod.BootResult]]:
        label = req.build.request.label
        number = sum(1 for kernel, _ in self.boots if kernel == label) + 1
        self.boots.append((label, number))
        req.run_dir.mkdir(parents=True, exist_ok=True)
        console = req.run_dir / "console.log"
        console.write_text(f"[    0.000000] Linux version 7.2.13 ({label})\n")
        guest = FakeGuest(console, lambda module: self.script(label, number, module))
        vm = SimpleNamespace(req=SimpleNamespace(console=console), qmp=lambda *a, **kw: None)
        yield vm, guest, boot_mod.BootResult(
            status=Status.PASS, seconds_to_ssh=2.0, accel=Accel("tcg", "tcg", "no KVM (fake)"),
            argv=("qemu-system-x86_64",), cmdline="console=ttyS0", console=console, port=2222, run_dir=req.run_dir,
            topology={"cpus": req.topology.cpus})
