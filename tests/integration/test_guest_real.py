"""Real debug kernels booted under QEMU (TCG here), reached over SSH, topology checked.

Faults: a kernel that panics during boot, a guest whose SSH never answers, QEMU
killed mid-run. Each must end quickly with a clear error and leave no QEMU.
"""

import os
import signal
import subprocess
import time

import pytest

from pipeline import config
from pipeline.guest import boot
from pipeline.jobs import prepare
from pipeline.guest import topology
from pipeline.model.errors import GuestError


def qemu_pids() -> set[int]:
    done = subprocess.run(["pgrep", "-f", "qemu-system-"], capture_output=True, text=True)
    return {int(p) for p in done.stdout.split()}


@pytest.fixture(scope="module")
def kernels(layout, base_tree, tmp_path_factory):
    """fastwake-v1 debug kernels, built (or taken from the cache) once for this module."""
    built = {}
    for arch_name in ("x86_64", "arm64"):
        arch = config.load_arch(layout, arch_name)
        p = prepare.prepare(layout, prepare.Variant(series="fastwake-v1"), arch, tmp_path_factory.mktemp("prep"))
        assert p.ok, [s.message for s in p.stages]
        built[arch_name] = p.build
    return built


@pytest.fixture(autouse=True)
def no_qemu_left():
    before = qemu_pids()
    yield
    time.sleep(0.5)
    assert qemu_pids() - before == set(), "a QEMU process outlived the test"


def boot_request(layout, kernels, arch_name, topo_name, run_dir, **kw):
    return boot.BootRequest(arch=config.load_arch(layout, arch_name),
                            topology=topology.load_topologies(layout).get(topo_name),
                            build=kernels[arch_name], run_dir=run_dir, **kw)


@pytest.mark.parametrize("arch_name, topo_name, cpus, nodes", [
    ("x86_64", "smp8-numa2", 8, 2),
    ("x86_64", "smt8", 8, 1),
    ("arm64", "smp8-numa2", 8, 2),
])
def test_boots_smp_numa_guest(layout, kernels, tmp_path, arch_name, topo_name, cpus, nodes):
    req = boot_request(layout, kernels, arch_name, topo_name, tmp_path)
    with boot.booted(layout, req) as (vm, conn, result):
        assert result.accel.name == "tcg"  # KVM does not work on these machines; the probe says why
        assert conn.check("nproc").strip() == str(cpus)
        listed = conn.check("ls /sys/devices/system/node").split()
        assert sorted(n for n in listed if n.startswith("node") and n[4:].isdigit()) == \
            [f"node{i}" for i in range(nodes)]
        if topo_name == "smt8":
            siblings = conn.check("cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list").strip()
            assert siblings == "0-1"
        # modules from the build are in the initramfs, and modprobe is kmod's (busybox's
        # would rerun a failing init)
        assert "test_workqueue" in conn.check("modinfo -F name test_workqueue")
        assert "kmod" in conn.check("/usr/sbin/modprobe --version")
        # SFTP works (dropbear finds sftp-server)
        (tmp_path / "hello.txt").write_text("hello\n")
        conn.put(tmp_path / "hello.txt", "/tmp/hello.txt")
        assert conn.check("cat /tmp/hello.txt") == "hello\n"
        assert "Linux version" in conn.dmesg()
    print(f"{arch_name} {topo_name}: SSH after {result.seconds_to_ssh:.1f} s")


def test_panic_during_boot_ends_quickly(layout, kernels, tmp_path):
    req = boot_request(layout, kernels, "x86_64", "smp8-numa2", tmp_path, extra_cmdline=("init=/nonexistent",
                                                                                       "rdinit=/nonexistent"))
    started = time.monotonic()
    with pytest.raises(GuestError) as exc:
        with boot.booted(layout, req):
            pass
    assert time.monotonic() - started < 120
    msg = str(exc.value) + str(exc.value.fields.get("report", ""))
    assert "Kernel panic" in msg or "QEMU exited" in msg
    assert "console tail" in str(exc.value.fields.get("report", ""))


def test_ssh_that_never_answers_times_out(layout, kernels, tmp_path):
    req = boot_request(layout, kernels, "x86_64", "smp8-flat", tmp_path, extra_cmdline=("wqci.nossh",), timeout=45)
    with pytest.raises(GuestError) as exc:
        with boot.booted(layout, req):
            pass
    assert "SSH did not answer within 45 s" in str(exc.value)


def test_qemu_killed_mid_run_is_a_guest_error(layout, kernels, tmp_path):
    req = boot_request(layout, kernels, "x86_64", "smp8-flat", tmp_path)
    with pytest.raises(GuestError) as exc:
        with boot.booted(layout, req) as (vm, conn, _):
            os.kill(vm.process.pid, signal.SIGKILL)
            conn.run("sleep 30", timeout=60)
    assert "lost the SSH connection" in str(exc.value)
