import gzip
import subprocess
from pathlib import Path

import pytest

from pipeline import config
from pipeline.guest import boot
from pipeline.guest import cpio
from pipeline.guest import qemu
from pipeline.guest import topology
from pipeline.model.errors import ConfigError, GuestError

LAYOUT = config.Layout()


def topo(name=None):
    return topology.load_topologies(LAYOUT).get(name)


def launch(arch="x86_64", name=None, accel=None, tmp=Path("/tmp/run")):
    a = config.load_arch(LAYOUT, arch)
    acc = accel or qemu.Accel("tcg", a.qemu.tcg, "test")
    return qemu.LaunchRequest(arch=a, topology=topo(name), kernel=Path("/k/bzImage"), initrd=Path("/k/initrd"),
                              cmdline="console=ttyS0", accel=acc, run_dir=tmp, port=2222)


def test_default_topology_is_two_numa_nodes():
    t = topo()
    assert (t.name, t.cpus, t.nodes, t.memory_mb) == ("smp8-numa2", 8, 2, 4096)
    assert t.expected() == {"cpus": 8, "nodes": {0: {"cpulist": "0-3", "distance": "10 20"},
                                                  1: {"cpulist": "4-7", "distance": "20 10"}}}


def test_all_topologies_load_and_smt8_has_threads():
    names = topology.load_topologies(LAYOUT).topologies
    assert {"smp8-numa2", "smp8-flat", "smp8-numa4", "smt8"} <= set(names)
    assert names["smt8"].threads == 2 and names["smt8"].cpus == 8
    assert names["smp8-numa4"].expected()["nodes"][3] == {"cpulist": "6-7", "distance": "20 20 20 10"}


def test_overrides():
    t = topo().with_overrides(cpus=4, nodes=None, memory="2G")
    assert (t.cpus, t.nodes, t.memory_mb) == (4, 2, 2048)
    assert t.name == "smp8-numa2*"
    t = topo().with_overrides(nodes=4)
    assert (t.cpus, t.nodes, t.sockets) == (8, 4, 4)
    with pytest.raises(ConfigError):
        topo().with_overrides(cpus=3)


def test_cpulist():
    assert topology.cpulist([0, 1, 2, 3, 6, 8, 9]) == "0-3,6,8-9"


def test_x86_argv():
    argv = qemu.argv(launch())
    joined = " ".join(argv)
    assert argv[0] == "qemu-system-x86_64"
    assert "-machine q35 -accel tcg,thread=multi -cpu max" in joined
    assert "-smp 8,sockets=2,cores=4,threads=1 -m 4096M" in joined
    assert "-object memory-backend-ram,id=mem0,size=2048M -numa node,nodeid=0,cpus=0-3,memdev=mem0" in joined
    assert "-numa node,nodeid=1,cpus=4-7,memdev=mem1" in joined
    assert "-numa dist,src=0,dst=1,val=20" in joined
    assert "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22" in argv
    assert "-no-reboot" in argv and "file:/tmp/run/console.log" in argv
    assert "unix:/tmp/run/qmp.sock,server=on,wait=off" in argv


def test_arm64_argv_and_kvm_cpu():
    argv = qemu.argv(launch("arm64", "smp8-flat"))
    joined = " ".join(argv)
    assert argv[0] == "qemu-system-aarch64"
    assert "-machine virt,gic-version=3 -accel tcg,thread=multi -cpu max" in joined
    assert "-numa" not in argv
    kvm = qemu.argv(launch(accel=qemu.Accel("kvm", "kvm", "probe")))
    assert kvm[kvm.index("-cpu") + 1] == "host"


def test_accel_for_foreign_arch_is_tcg():
    a = config.load_arch(LAYOUT, "arm64" if qemu.host_arch() == "x86_64" else "x86_64")
    accel = qemu.choose_accel(LAYOUT, a, "auto", Path("/nonexistent"))
    assert accel.name == "tcg" and "differs from host" in accel.reason


def test_cmdline_from_config():
    cfg = boot.load_boot_config(LAYOUT)
    line = boot.cmdline(cfg, config.load_arch(LAYOUT, "arm64"), ("wq.extra=1",))
    assert line.startswith("console=ttyAMA0 panic=-1") and line.endswith("wq.extra=1")


def test_parse_topology_output():
    seen = boot.parse_topology("cpus 8\nnode 0|0-3|10 20\nnode 1|4-7|20 10\n")
    assert seen == {"cpus": 8, "nodes": {0: {"cpulist": "0-3", "distance": "10 20"},
                                         1: {"cpulist": "4-7", "distance": "20 10"}}}


class FakeConn:
    def __init__(self, out):
        self.out = out

    def check(self, command, timeout=60):
        return self.out


def test_topology_mismatch_is_an_error():
    with pytest.raises(GuestError) as exc:
        boot.check_topology(FakeConn("cpus 8\nnode 0|0-7|10\n"), topo())
    assert "nodes [0] instead of [0, 1]" in str(exc.value)
    with pytest.raises(GuestError) as exc:
        boot.check_topology(FakeConn("cpus 2\nnode 0|0-1|10 20\nnode 1||20 10\n"), topo())
    assert "2 CPUs instead of 8" in str(exc.value) and "node1 cpulist '' instead of '4-7'" in str(exc.value)


def test_cpio_round_trip(tmp_path):
    src = tmp_path / "src"
    (src / "lib" / "modules").mkdir(parents=True)
    (src / "lib" / "modules" / "a.ko").write_bytes(b"\x7fELF module")
    (src / "init").write_text("#!/bin/sh\n")
    (src / "init").chmod(0o755)
    archive = cpio.write(tmp_path / "x.cpio.gz", cpio.tree(src) + [cpio.symlink("bin/sh", "/bin/busybox")])
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["cpio", "-idm", "--quiet"], input=gzip.decompress(archive.read_bytes()), cwd=out, check=True)
    assert (out / "lib/modules/a.ko").read_bytes() == b"\x7fELF module"
    assert (out / "init").stat().st_mode & 0o777 == 0o755
    assert (out / "bin/sh").is_symlink() and str((out / "bin/sh").readlink()) == "/bin/busybox"
    # reproducible
    again = cpio.write(tmp_path / "y.cpio.gz", cpio.tree(src) + [cpio.symlink("bin/sh", "/bin/busybox")])
    assert again.read_bytes() == archive.read_bytes()


def test_concat_gives_one_uncompressed_initramfs(tmp_path):
    first = cpio.write(tmp_path / "a.cpio.gz", [cpio.file("etc/a", b"A")])
    plain = tmp_path / "b.cpio"
    plain.write_bytes(cpio.pack([cpio.file("etc/b", b"B")]))
    joined = cpio.concat(tmp_path / "initramfs.cpio", [first, plain])
    data = joined.read_bytes()
    assert data[:6] == b"070701"  # newc magic, not gzip
    assert data == gzip.decompress(first.read_bytes()) + plain.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    # cpio(1) reads the first archive; the kernel reads them all (each ends in TRAILER!!!)
    subprocess.run(["cpio", "-idm", "--quiet"], input=data, cwd=out, check=True)
    assert (out / "etc/a").read_bytes() == b"A"
    assert data.count(b"TRAILER!!!") == 2


def test_qmp_socket_path_fits_a_unix_socket(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "boot-1"
    path = qemu.qmp_path(deep)
    assert len(str(path)) <= 107 and path.name.startswith("wqci-qmp-")
    assert qemu.qmp_path(deep) == path  # stable for the run
    assert qemu.qmp_path(Path("/tmp/run")) == Path("/tmp/run/qmp.sock")
