"""Booting a built kernel: initramfs, keys, accelerator, QEMU, SSH, topology check.

`booted()` is a context manager: whatever happens inside (a failing suite, an
exception, Ctrl-C), leaving it closes SSH and terminates QEMU.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pipeline.guest import cpio
from pipeline.guest import ssh as guest_mod
from pipeline.guest import qemu
from pipeline.guest import rootfs
from pipeline.build.kernel import BuildResult
from pipeline.config import Arch, Fields, Layout, load_yaml
from pipeline.model import progress
from pipeline.model.errors import GuestError
from pipeline.model.status import Status
from pipeline.guest.topology import Topology

PORT_ATTEMPTS = 3


@dataclass(frozen=True)
class BootConfig:
    cmdline: tuple[str, ...]
    timeouts: dict[str, float]


def load_boot_config(layout: Layout) -> BootConfig:
    path = layout.configs / "boot.yaml"
    f = Fields(load_yaml(path), path)
    f.check_keys({"cmdline", "boot_timeout"})
    t = f.sub("boot_timeout")
    t.check_keys({"kvm", "tcg"})
    return BootConfig(cmdline=f.strs("cmdline"),
                      timeouts={"kvm": float(t.get("kvm", (int, float))), "tcg": float(t.get("tcg", (int, float)))})


@dataclass(frozen=True)
class BootRequest:
    arch: Arch
    topology: Topology
    build: BuildResult
    run_dir: Path
    accel: str = "auto"  # auto, kvm or tcg
    timeout: float | None = None
    extra_cmdline: tuple[str, ...] = ()


@dataclass(frozen=True)
class BootResult:
    status: Status
    seconds_to_ssh: float
    accel: qemu.Accel
    argv: tuple[str, ...]
    cmdline: str
    console: Path
    port: int
    run_dir: Path
    topology: dict = field(default_factory=dict)
    pinned: dict[int, int] = field(default_factory=dict)  # vCPU -> host CPU (KVM only)


def cmdline(cfg: BootConfig, arch: Arch, extra: tuple[str, ...]) -> str:
    return " ".join([*(arg.format(console=arch.qemu.console) for arg in cfg.cmdline), *extra])


def assemble_initrd(layout: Layout, req: BootRequest, keys: guest_mod.Keys) -> Path:
    """Base rootfs (cached) + the build's modules + this run's keys."""
    base = rootfs.base_archive(layout, req.arch, log_path=req.run_dir / "rootfs.log")
    modules = rootfs.modules_archive(req.build.artifacts["modules"], req.build.out / "modules.cpio.gz")
    run_keys = rootfs.keys_archive(req.run_dir / "keys.cpio.gz", keys.host_key, keys.client_pub + "\n")
    return cpio.concat(req.run_dir / "initramfs.cpio", [base, modules, run_keys])


def start_vm(req: BootRequest, initrd: Path, line: str, accel: qemu.Accel) -> qemu.Vm:
    """Start QEMU on a free port; another process taking the port first is retried."""
    for attempt in range(PORT_ATTEMPTS):
        launch = qemu.LaunchRequest(arch=req.arch, topology=req.topology, kernel=req.build.image, initrd=initrd,
                                    cmdline=line, accel=accel, run_dir=req.run_dir, port=qemu.free_port())
        vm = qemu.Vm(launch).start()
        time.sleep(0.3)
        if vm.alive() or "forwarding" not in "".join(vm.process.out) or attempt == PORT_ATTEMPTS - 1:
            return vm
        vm.stop()
    raise AssertionError("unreachable")


@contextmanager
def booted(layout: Layout, req: BootRequest) -> Iterator[tuple[qemu.Vm, guest_mod.Guest, BootResult]]:
    cfg = load_boot_config(layout)
    req.run_dir.mkdir(parents=True, exist_ok=True)
    keys = guest_mod.make_keys(req.run_dir / "keys")
    initrd = assemble_initrd(layout, req, keys)
    accel = qemu.choose_accel(layout, req.arch, req.accel, req.build.image)
    line = cmdline(cfg, req.arch, req.extra_cmdline)
    vm = start_vm(req, initrd, line, accel)
    conn = None
    try:
        limit = req.timeout or cfg.timeouts[accel.name]
        with progress.task(f"boot {req.arch.name} until SSH answers", limit, "s", clock=True,
                           kind=f"boot {req.arch.name} {accel.name}"):
            seconds = vm.wait_ready(limit)
        # vCPU threads are real host threads only under KVM; TCG's stay where the emulator puts them
        pinned = qemu.pin_vcpus(vm, sorted(os.sched_getaffinity(0))) if accel.name == "kvm" else {}
        port = vm.req.port
        (req.run_dir / "keys" / "known_hosts").write_text(keys.known_hosts(port))
        conn = guest_mod.Guest(port, keys).open()
        seen = check_topology(conn, req.topology)
        yield vm, conn, BootResult(status=Status.PASS, seconds_to_ssh=seconds, accel=accel, argv=tuple(vm.argv),
                                   cmdline=line, console=vm.req.console, port=port, run_dir=req.run_dir,
                                   topology=seen, pinned=pinned)
    finally:
        if conn is not None:
            conn.close()
        vm.stop()


TOPOLOGY_SCRIPT = (
    "echo cpus $(grep -c ^processor /proc/cpuinfo); "
    "for d in /sys/devices/system/node/node[0-9]*; do "
    "echo \"node ${d##*node}|$(cat $d/cpulist)|$(cat $d/distance)\"; done"
)


def parse_topology(text: str) -> dict:
    seen: dict = {"cpus": 0, "nodes": {}}
    for line in text.splitlines():
        if line.startswith("cpus "):
            seen["cpus"] = int(line.split()[1])
        elif line.startswith("node "):
            node, cpus, distance = (line[5:].split("|") + ["", ""])[:3]
            seen["nodes"][int(node)] = {"cpulist": cpus.strip(), "distance": " ".join(distance.split())}
    return seen


def check_topology(conn: guest_mod.Guest, topo: Topology) -> dict:
    """The guest must show the CPUs, nodes, cpulists and distances asked for."""
    seen = parse_topology(conn.check(TOPOLOGY_SCRIPT, timeout=30))
    want = topo.expected()
    problems = []
    if seen["cpus"] != want["cpus"]:
        problems.append(f"{seen['cpus']} CPUs instead of {want['cpus']}")
    if sorted(seen["nodes"]) != sorted(want["nodes"]):
        problems.append(f"nodes {sorted(seen['nodes'])} instead of {sorted(want['nodes'])}")
    else:
        for node, facts in want["nodes"].items():
            for key, value in facts.items():
                if seen["nodes"][node][key] != value:
                    problems.append(f"node{node} {key} '{seen['nodes'][node][key]}' instead of '{value}'")
    if problems:
        raise GuestError(detail=f"guest topology differs from {topo.name}: " + "; ".join(problems))
    return seen
