"""vCPU pinning under KVM, on real host threads standing in for QEMU's vCPU threads."""

import os
import threading

import pytest

from pipeline.guest import qemu
from pipeline.model.errors import GuestError


class FakeVm:
    def __init__(self, reply):
        self.reply = reply

    def qmp(self, command, **arguments):
        assert command == "query-cpus-fast"
        return self.reply


def test_each_vcpu_thread_is_pinned_round_robin_over_the_host_cpus():
    host = sorted(os.sched_getaffinity(0))
    started, stop, tids = threading.Barrier(4), threading.Event(), []

    def vcpu():
        tids.append(threading.get_native_id())
        started.wait()
        stop.wait(10)

    threads = [threading.Thread(target=vcpu) for _ in range(3)]
    for t in threads:
        t.start()
    started.wait()
    try:
        vm = FakeVm({"return": [{"cpu-index": i, "thread-id": tid} for i, tid in enumerate(tids)]})
        pins = qemu.pin_vcpus(vm, host)
        assert pins == {i: host[i % len(host)] for i in range(3)}
        assert [os.sched_getaffinity(tid) for tid in tids] == [{host[i % len(host)]} for i in range(3)]
    finally:
        stop.set()
        for t in threads:
            t.join()


def test_a_qmp_error_is_a_guest_error():
    with pytest.raises(GuestError, match="QMP query-cpus-fast"):
        qemu.pin_vcpus(FakeVm({"error": {"class": "CommandNotFound"}}), [0])
