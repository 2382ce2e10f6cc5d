"""Pasted logs -> plain console lines (pipeline/triage/logtext.py), and reading log files."""

import bz2
import gzip
import io
import lzma

import pytest
import yaml

from pipeline.model.errors import UsageError
from pipeline.triage import logtext
from tests.conftest import DATA

SPLATS = DATA / "splats"
CORPUS = yaml.safe_load((SPLATS / "SOURCES.yaml").read_text())["files"]
PASTED = {"syslog-warn-skb.log", "syslog-atomic-sleep.log", "quoted-guess-unwinder-panic.log",
          "dmesg-x-lkp-lockdep-circular.log"}
PLAIN = [e["file"] for e in CORPUS if e["file"] not in PASTED]


@pytest.mark.parametrize("name", PLAIN)
def test_a_plain_console_is_left_as_it_is(name):
    text = (SPLATS / name).read_text()
    assert logtext.normalise(text) == text


@pytest.mark.parametrize("name", sorted(PASTED))
def test_normalising_twice_changes_nothing(name):
    once = logtext.normalise((SPLATS / name).read_text())
    assert logtext.normalise(once) == once


@pytest.mark.parametrize("pasted, plain", [
    # syslog, with and without the kernel time, with and without a host name
    ("Aug 23 19:30:27 host kernel: [   38.302714] WARNING: CPU: 1 PID: 2", "[   38.302714] WARNING: CPU: 1 PID: 2"),
    ("Aug 23 19:30:27 host kernel: [   38.302714]  foo+0x1/0x2", "[   38.302714]  foo+0x1/0x2"),
    ("Aug 23 19:30:27 host kernel: WARNING: CPU: 1 PID: 2", "WARNING: CPU: 1 PID: 2"),
    ("Aug 23 19:30:27 host kernel:  foo+0x1/0x2", " foo+0x1/0x2"),
    ("Dec 11 10:28:54 kernel:  foo+0x1/0x2", " foo+0x1/0x2"),
    ("Sep  1 06:22:39 serv1 kernel: kernel BUG at rmap.c:398!", "kernel BUG at rmap.c:398!"),
    # journalctl -o short-precise, short-iso, short-iso-precise, short-full, short-monotonic, short-unix
    ("Aug 23 19:30:27.123456 host kernel: Call Trace:", "Call Trace:"),
    ("2025-08-23T19:30:27+0200 host kernel: Call Trace:", "Call Trace:"),
    ("2025-08-23T19:30:27.123456+02:00 host kernel: Call Trace:", "Call Trace:"),
    ("Sat 2025-08-23 19:30:27 CEST host kernel: Call Trace:", "Call Trace:"),
    ("[   38.302714] host kernel:  <TASK>", "[   38.302714]  <TASK>"),
    ("1755970227.123456 host kernel: Call Trace:", "Call Trace:"),
    # another program's line in the same syslog: nothing of the kernel's
    ("Aug 23 19:30:27 host systemd[1]: Started Session 3 of User root.", ""),
    ("May 17 18:48:15 auro-desktop steam[6275]: LHR-84CF93F9: Triggered keepalive", ""),
    # dmesg -x, -T, -r, --time-format iso, -d
    ("kern  :warn  : [  173.884312] WARNING: possible circular", "[  173.884312] WARNING: possible circular"),
    ("kern :warn : [ 173.914305] dump_stack_lvl (lib/dump_stack.c:108)", "[ 173.914305] dump_stack_lvl (lib/dump_stack.c:108)"),
    ("user  :notice: [   20.000000] wqci: end suite x run 1", "[   20.000000] wqci: end suite x run 1"),
    ("[Sat Aug 23 19:30:27 2025]  foo+0x1/0x2", " foo+0x1/0x2"),
    ("<4>[   38.302714]  foo+0x1/0x2", "[   38.302714]  foo+0x1/0x2"),
    ("2025-08-23T19:30:27,123456+02:00 rcu: INFO: rcu_preempt self-detected stall on CPU",
     "rcu: INFO: rcu_preempt self-detected stall on CPU"),
    ("[   38.302714 <    0.000123>]  foo+0x1/0x2", "[   38.302714]  foo+0x1/0x2"),
    # colours of dmesg --color=always
    ("\x1b[33m[   38.302714] \x1b[0mWARNING: CPU: 1 PID: 2", "[   38.302714] WARNING: CPU: 1 PID: 2"),
])
def test_transport_prefixes_are_removed(pasted, plain):
    assert logtext.normalise(pasted) == plain


@pytest.mark.parametrize("quote", ["> ", ">> ", "> > ", "> > > "])
def test_mail_quotes_are_removed_but_not_kasan_markers(quote):
    report = ["BUG: KASAN: slab-use-after-free in recv_work+0x694/0xa80",
              " recv_work+0x694/0xa80",
              " ffff8880549ba000: fa fb fb fb",
              ">ffff8880549ba080: fb fb fb fb",
              "                   ^"]
    assert logtext.normalise("\n".join(quote + ln for ln in report)).splitlines() == report
    assert logtext.normalise("\n".join(report)).splitlines() == report


def test_an_indented_paste_keeps_the_indentation_of_frames():
    pasted = ["Here is the log:", "",
              "    WARNING: CPU: 0 PID: 1 at kernel/workqueue.c:2252 __queue_work+0xd20/0xf90",
              "    Call Trace:", "     <TASK>", "     queue_delayed_work_on+0x18b/0x280",
              "           process_one_work+0x932/0x1b70", "", "Thanks"]
    assert logtext.normalise("\n".join(pasted)).splitlines() == [
        "Here is the log:", "",
        "WARNING: CPU: 0 PID: 1 at kernel/workqueue.c:2252 __queue_work+0xd20/0xf90",
        "Call Trace:", " <TASK>", " queue_delayed_work_on+0x18b/0x280",
        "       process_one_work+0x932/0x1b70", "", "Thanks"]


def test_the_frames_of_a_log_without_times_are_not_dedented():
    text = "Call Trace:\n <TASK>\n foo+0x1/0x2\n bar+0x3/0x4\n </TASK>\n"
    assert logtext.normalise(text) == text


@pytest.mark.parametrize("line, caller, message", [
    ("[   38.302714][  T123] msg", "T123", "msg"),
    ("[   38.302714][ T1]  foo+0x1/0x2", "T1", " foo+0x1/0x2"),
    ("[ 19.416406][ T1] foo (x.c:1)", "T1", "foo (x.c:1)"),
    ("[   74.367039] [   T1234] RSP: 0018", "T1234", "RSP: 0018"),
    ("[   38.302714][    C1]  <IRQ>", "C1", " <IRQ>"),
    ("[   38.302714][T123] msg", "T123", "msg"),
    ("[  T123] msg", "T123", "msg"),
    ("[   38.302714]  foo+0x1/0x2", None, " foo+0x1/0x2"),
    (" foo+0x1/0x2", None, " foo+0x1/0x2"),
    ("[TTM] Zone  kernel: Available graphics memory", None, "[TTM] Zone  kernel: Available graphics memory"),
    ("root@ubuntu:~# [43905.483065] ------------[ cut here ]------------", None, "------------[ cut here ]------------"),
])
def test_split_prefix(line, caller, message):
    assert logtext.split_prefix(line) == (caller, message)


def test_lines_are_those_an_editor_shows():
    assert logtext.split_lines("a\r\nb\x0cc\n\nd") == ["a", "b\x0cc", "", "d"]


LOG = "[    1.000000] Linux version 6.17.0\n[    2.000000] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2\n"


@pytest.mark.parametrize("pack", [lambda b: b, gzip.compress, lzma.compress, bz2.compress],
                         ids=["plain", "gzip", "xz", "bzip2"])
def test_read_log_decompresses_by_content_not_name(tmp_path, pack):
    path = tmp_path / "console.txt"  # no .gz: the magic bytes decide
    path.write_bytes(pack(LOG.encode()))
    assert logtext.read_log(str(path)) == LOG


def test_read_log_normalises(tmp_path):
    path = tmp_path / "kern.log"
    path.write_text("Aug 23 19:30:27 host kernel: [    1.000000] Linux version 6.17.0\n")
    assert logtext.read_log(str(path)) == "[    1.000000] Linux version 6.17.0\n"


def test_read_log_reads_stdin_for_dash(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(LOG.encode()))))
    assert logtext.read_log("-") == LOG


def test_nul_padding_left_by_a_crash_is_not_binary(tmp_path):
    path = tmp_path / "kern.log"
    path.write_bytes(LOG.encode() + b"\x00" * 4096 + LOG.encode())
    assert logtext.read_log(str(path)) == LOG + "\n" + LOG


@pytest.mark.parametrize("data, why", [
    (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00", "binary data (NUL bytes), not a kernel log"),
    (LOG.encode() + b"\x00" + LOG.encode(), "binary data (NUL bytes), not a kernel log"),
    # 25 control characters, DEL and 128 undecodable bytes in every 255
    (gzip.compress(bytes(range(1, 256)) * 40), "binary data (6160 of 10200 characters are not text), not a kernel log"),
])
def test_read_log_refuses_what_is_not_a_log(tmp_path, data, why):
    path = tmp_path / "blob"
    path.write_bytes(data)
    with pytest.raises(UsageError) as err:
        logtext.read_log(str(path))
    assert str(err.value) == f"{path}: {why}"


def test_read_log_refuses_a_broken_archive(tmp_path):
    path = tmp_path / "console.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(UsageError) as err:
        logtext.read_log(str(path))
    assert str(err.value).startswith(f"{path}: not a valid gzip file (")  # then the decompressor's words


def test_read_log_reports_an_unreadable_path(tmp_path):
    with pytest.raises(UsageError) as err:
        logtext.read_log(str(tmp_path / "missing.log"))
    assert str(err.value) == f"{tmp_path / 'missing.log'}: No such file or directory"
    with pytest.raises(UsageError) as err:
        logtext.read_log(str(tmp_path))
    assert str(err.value) == f"{tmp_path}: Is a directory"
