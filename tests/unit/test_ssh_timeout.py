"""Guest.run: a command that came back without an exit status once its timeout had passed
is a timeout, even when invoke did not say so (its timer thread was still closing the channel)."""

import time
from types import SimpleNamespace

from pipeline.guest import ssh


class Conn:
    def __init__(self, exited: int, takes: float):
        self.exited, self.takes = exited, takes

    def run(self, command, **kwargs):
        time.sleep(self.takes)
        return SimpleNamespace(stdout="partial", stderr="", exited=self.exited)


def guest(conn: Conn) -> ssh.Guest:
    g = object.__new__(ssh.Guest)
    g.conn = conn
    return g


def test_no_exit_status_after_the_timeout_is_a_timeout():
    result = guest(Conn(-1, 0.05)).run("modprobe test_workqueue", timeout=0.01)
    assert (result.timed_out, result.exited, result.stdout) == (True, -1, "partial")


def test_no_exit_status_before_the_timeout_is_not():
    result = guest(Conn(-1, 0.0)).run("true", timeout=60)
    assert (result.timed_out, result.exited) == (False, -1)


def test_a_real_exit_after_the_timeout_stays_an_exit():
    result = guest(Conn(1, 0.05)).run("false", timeout=0.01)
    assert (result.timed_out, result.exited) == (False, 1)
