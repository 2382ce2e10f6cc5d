"""QEMU: the argv from arch + topology + artifacts, the accelerator, the VM's lifecycle.

The argv is a list built from data, never a shell string. The VM is a
proc.Process in its own process group: leaving the `Vm` context (normally, on
an exception, on Ctrl-C) always terminates QEMU.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from pipeline import proc
from pipeline.config import Arch, Layout
from pipeline.model.errors import GuestError, MissingTool
from pipeline.guest.topology import Topology

# What on the console means the boot is over before it began.
FATAL_RE = re.compile(r"(Kernel panic - not syncing.*|Oops: .*|BUG: kernel NULL pointer dereference.*|"
                      r"Internal error: Oops.*|BUG: unable to handle .*)")
KVM_PROBE_SECONDS = 5.0


@dataclass(frozen=True)
class Accel:
    name: str  # kvm or tcg
    arg: str  # the -accel argument
    reason: str


def host_arch() -> str:
    machine = platform.machine()
    return {"aarch64": "arm64", "amd64": "x86_64"}.get(machine, machine)


def choose_accel(layout: Layout, arch: Arch, mode: str, kernel: Path) -> Accel:
    """`auto` uses KVM only when a real guest actually runs under it here."""
    tcg = arch.qemu.tcg
    if mode == "tcg":
        return Accel("tcg", tcg, "requested with --accel tcg")
    if mode == "kvm":
        return Accel("kvm", "kvm", "requested with --accel kvm")
    if arch.name != host_arch():
        return Accel("tcg", tcg, f"guest arch {arch.name} differs from host {host_arch()}")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Accel("tcg", tcg, "/dev/kvm is missing or not accessible")
    works, why = kvm_probe(layout, arch, kernel)
    return Accel("kvm", "kvm", why) if works else Accel("tcg", tcg, why)


def kvm_probe(layout: Layout, arch: Arch, kernel: Path) -> tuple[bool, str]:
    """Boot the kernel under KVM for a few seconds and look for its banner.

    /dev/kvm can open while guests abort or hang without a single byte of
    output, so existence proves nothing. The answer is cached per host boot.
    """
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    cache = layout.cache / "kvm-probe.json"
    try:
        known = json.loads(cache.read_text())
        if known.get("boot_id") == boot_id and known.get("arch") == arch.name:
            return known["works"], known["reason"] + " (cached for this host boot)"
    except (OSError, ValueError, KeyError):
        pass
    console = layout.cache / "kvm-probe.console"
    console.unlink(missing_ok=True)
    argv = [arch.qemu.binary, "-machine", arch.qemu.machine, "-accel", "kvm", "-cpu", "host", "-m", "256M",
            "-kernel", str(kernel), "-append", f"console={arch.qemu.console} earlyprintk=serial panic=-1",
            "-display", "none", "-nodefaults", "-serial", f"file:{console}", "-no-reboot"]
    started = time.monotonic()
    with proc.Process(argv, merge_stderr=True) as qemu:
        while time.monotonic() - started < KVM_PROBE_SECONDS and qemu.poll() is None:
            if console.exists() and b"Linux version" in console.read_bytes():
                break
            time.sleep(0.2)
        code = qemu.poll()
    text = console.read_bytes() if console.exists() else b""
    if b"Linux version" in text:
        works, reason = True, "KVM probe: the kernel printed its banner under KVM"
    elif code is not None:
        works, reason = False, f"KVM probe: QEMU exited with {code}: {''.join(qemu.out).strip()[-200:]}"
    else:
        works, reason = False, f"KVM probe: no console output within {KVM_PROBE_SECONDS:.0f} s under KVM"
    cache.write_text(json.dumps({"boot_id": boot_id, "arch": arch.name, "works": works, "reason": reason}))
    return works, reason


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class LaunchRequest:
    arch: Arch
    topology: Topology
    kernel: Path
    initrd: Path
    cmdline: str
    accel: Accel
    run_dir: Path
    port: int

    @property
    def console(self) -> Path:
        return self.run_dir / "console.log"

    @property
    def qmp(self) -> Path:
        return qmp_path(self.run_dir)


UNIX_PATH_MAX = 107


def qmp_path(run_dir: Path) -> Path:
    """The QMP socket: in the run directory, unless that path is too long for a unix
    socket (108 bytes); then a short directory under /tmp named after the run."""
    path = run_dir / "qmp.sock"
    if len(str(path)) <= UNIX_PATH_MAX:
        return path
    import hashlib
    import tempfile

    tag = hashlib.sha256(str(run_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"wqci-qmp-{tag}.sock"


def argv(req: LaunchRequest) -> list[str]:
    q, t = req.arch.qemu, req.topology
    args = [
        q.binary, "-machine", q.machine, "-accel", req.accel.arg,
        "-cpu", "host" if req.accel.name == "kvm" else q.cpu,
        "-smp", f"{t.cpus},sockets={t.sockets},cores={t.cores},threads={t.threads}",
        "-m", f"{t.memory_mb}M",
    ]
    if t.nodes > 1:
        for n in range(t.nodes):
            cpus = t.node_cpus(n)
            args += ["-object", f"memory-backend-ram,id=mem{n},size={t.node_memory_mb()}M",
                     "-numa", f"node,nodeid={n},cpus={cpus[0]}-{cpus[-1]},memdev=mem{n}"]
        for a in range(t.nodes):
            for b in range(a + 1, t.nodes):
                args += ["-numa", f"dist,src={a},dst={b},val={t.distance(a, b)}"]
    args += [
        "-kernel", str(req.kernel), "-initrd", str(req.initrd), "-append", req.cmdline,
        "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{req.port}-:22",
        # romfile= : no iPXE option ROM needed (nor the ipxe-qemu package); the kernel boots directly
        "-device", "virtio-net-pci,netdev=net0,romfile=",
        "-display", "none", "-nodefaults", "-monitor", "none",
        "-serial", f"file:{req.console}",
        "-qmp", f"unix:{req.qmp},server=on,wait=off",
        "-no-reboot",
    ]
    return args


def console_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no console output)"
    tail = [ln.rstrip() for ln in text.splitlines()[-lines:]]
    return "\n".join(tail) if tail else "(no console output)"


def ssh_banner(port: int, timeout: float = 2.0) -> bool:
    """True once the guest's SSH server answers (slirp accepts before the guest listens)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


class Vm:
    """One QEMU guest; a context manager that always terminates it."""

    def __init__(self, req: LaunchRequest) -> None:
        self.req = req
        self.argv = argv(req)
        self.process: proc.Process | None = None
        self.started = 0.0

    def start(self) -> "Vm":
        from shutil import which

        if which(self.req.arch.qemu.binary) is None:
            package = "qemu-system-arm" if "aarch64" in self.req.arch.qemu.binary else "qemu-system-x86"
            raise MissingTool(tool=self.req.arch.qemu.binary, hint=f"Debian package {package}; run `make deps`")
        self.req.run_dir.mkdir(parents=True, exist_ok=True)
        self.req.console.unlink(missing_ok=True)
        self.req.qmp.unlink(missing_ok=True)
        self.started = time.monotonic()
        self.process = proc.Process(self.argv, log_path=self.req.run_dir / "qemu.log", merge_stderr=True)
        return self

    def __enter__(self) -> "Vm":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def fail(self, what: str) -> GuestError:
        return GuestError(detail=f"{self.req.arch.name} guest {what}",
                          report=f"{what}\nconsole tail ({self.req.console}):\n{console_tail(self.req.console)}")

    def wait_ready(self, timeout: float, ready: Callable[[], bool] | None = None) -> float:
        """Seconds from QEMU's start until SSH answers; fail early on panic or exit."""
        assert self.process is not None
        ready = ready or (lambda: ssh_banner(self.req.port))
        while True:
            elapsed = time.monotonic() - self.started
            if self.process.poll() is not None:
                qemu_out = "".join(self.process.out).strip().splitlines()
                why = f": {qemu_out[-1]}" if qemu_out else ""
                raise self.fail(f"QEMU exited with code {self.process.poll()} before SSH answered{why}")
            fatal = self.fatal_line()
            if fatal:
                raise self.fail(f"crashed during boot after {elapsed:.1f} s: {fatal}")
            if ready():
                return time.monotonic() - self.started
            if elapsed > timeout:
                raise self.fail(f"SSH did not answer within {timeout:.0f} s")
            time.sleep(0.5)

    def fatal_line(self) -> str | None:
        try:
            text = self.req.console.read_text(errors="replace")
        except OSError:
            return None
        m = FATAL_RE.search(text)
        return m.group(1).strip() if m else None

    def qmp(self, command: str, **arguments: object) -> dict:
        """One QMP command over the control socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.req.qmp))
            stream = s.makefile("rw")
            stream.readline()  # greeting
            for msg in ({"execute": "qmp_capabilities"}, {"execute": command, "arguments": arguments}):
                stream.write(json.dumps(msg) + "\n")
                stream.flush()
                while True:
                    reply = json.loads(stream.readline())
                    if "return" in reply or "error" in reply:
                        break
            return reply

    def stop(self, grace: float = 10.0) -> None:
        """Ask QEMU to quit; kill its process group if it does not."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.qmp("quit")
            except (OSError, ValueError):
                pass
            deadline = time.monotonic() + grace
            while self.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
        self.process.kill()
        self.req.qmp.unlink(missing_ok=True)


def pin_vcpus(vm: "Vm", host_cpus: Sequence[int]) -> dict[int, int]:
    """Under KVM each vCPU is a host thread: pin vCPU i to host_cpus[i % len], so the
    scheduler of the host does not move them between runs of an A/B. Returns
    vCPU -> host CPU. More vCPUs than host CPUs share CPUs, and the A/B says so
    (compare.representativeness)."""
    reply = vm.qmp("query-cpus-fast")
    if "return" not in reply:
        raise GuestError(detail=f"QMP query-cpus-fast: {reply.get('error', reply)}")
    pins = {}
    for entry in reply["return"]:
        index, thread = int(entry["cpu-index"]), int(entry["thread-id"])
        pins[index] = host_cpus[index % len(host_cpus)]
        os.sched_setaffinity(thread, {pins[index]})
    return pins
