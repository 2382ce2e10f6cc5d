"""Pasted kernel logs -> plain console lines, before any report is looked for.

A log reaches wqci from a serial console, `dmesg` (-T, -x, -r, --time-format iso),
syslog or the journal (`journalctl -k` in its short, short-precise, short-iso,
short-full, short-monotonic and short-unix forms), often inside a mail that quotes
and indents it. normalise() peels those layers off each line and keeps what the
kernel itself printed: the "[   12.345678]" time, the "[  T123]" / "[  C1]" caller
id (it tells the lines of two CPUs apart) and the message with its own indentation
(stack frames are indented, lockdep's dependency chains more than the call trace).

One output line per input line, so line numbers stay those of the input, and a
plain console comes out unchanged. read_log() reads a file (gzip, xz or bzip2
compressed or not, found by magic bytes) or stdin and refuses what is not text.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import sys
import zlib

from pipeline.model.errors import UsageError

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# "> ", ">> ", "> > ", " > " (a quote some clients indent), "| " (a forum's or a
# mail client's bar): a quote. Not ">ffff8880...": KASAN marks the bad shadow row that way.
QUOTE_RE = re.compile(r"^(?:[ \t]{0,3}(?:>(?:[ \t]|(?=[>\[])|$)|\|(?:[ \t]|$)))+")
_DATE = (r"(?:[^\W\d_]{3} [^\W\d_]{3} +\d{1,2} \d\d:\d\d:\d\d \d{4}"          # Fri Nov 27 12:23:48 2020 (logread)
         r"|[^\W\d_]{3,5}\.? +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)?"       # Aug 23 19:30:27[.123456]
         r"|(?:\w{3} )?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?"    # [Sat ]2025-08-23T19:30:27[.123]
         r"(?:Z|[+-]\d\d:?\d\d| [A-Z]{2,5})?"                           # +0200, +02:00, CEST
         r"|\d{9,}\.\d+)")                                              # short-unix
# syslog / journal: "<date> [host] [facility.level] tag[pid]: message"
SYSLOG_RE = re.compile(r"^(?:<\d{1,3}>)?" + _DATE + r"(?: (?!kernel:)[^\s:]+)?(?: \w+\.\w+)? "
                       r"(?P<tag>[^\s:\[]+)(?:\[\d+\])?: ?")
# journalctl -o short-monotonic keeps the kernel time: "[   38.302714] host kernel: message"
MONOTONIC_RE = re.compile(r"^(?P<ts>\[\s*\d+\.\d+\]) (?:[^\s:]+ )?kernel: ?")
DMESG_X_RE = re.compile(r"^(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|res\d|local\d)"
                        r"\s*:\s*(?:emerg|alert|crit|err|warn|notice|info|debug)\s*: ?")
DMESG_T_RE = re.compile(r"^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] ?")         # dmesg -T
DMESG_ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[.,]\d+(?:Z|[+-]\d\d:?\d\d) ")
DMESG_RELTIME_RE = re.compile(r"^\[(?:\w{3}\d{1,2} \d\d:\d\d|\s*\+\s*\d+\.\d+)\] ?")  # dmesg -e
DMESG_DELTA_RE = re.compile(r"^(?P<ts>\[\s*\d+\.\d+) <\s*\d+\.\d+>\]")             # dmesg -d
LEVEL_RE = re.compile(r"^<\d{1,3}>(?=\S)")                                           # dmesg -r
# a /dev/kmsg record: "level,seq,usec,flags[,caller=T12];message" (`cat /dev/kmsg`)
KMSG_RE = re.compile(r"^\d{1,3},\d+,(?P<usec>\d+),[-+c](?:,caller=(?P<caller>[TC]\d+))?[^;]*;")
# ... or such a record as the message of a syslog line without a tag: "May 25 07:29:42 host 0,16627,...;BUG: ..."
SYSLOG_KMSG_RE = re.compile(r"^" + _DATE + r"(?: [^\s:]+)? (?=\d{1,3},\d+,\d+,[-+c][,;])")
BARE_TAG_RE = re.compile(r"^kernel: ?")
# Any of the above: one test for the common case, a line with none of them.
OUTER_HINT_RE = re.compile("|".join(re.sub(r"\(\?P<\w+>", "(?:", rx.pattern) for rx in (
    SYSLOG_RE, MONOTONIC_RE, DMESG_X_RE, DMESG_T_RE, DMESG_ISO_RE, DMESG_RELTIME_RE, DMESG_DELTA_RE, LEVEL_RE,
    BARE_TAG_RE, KMSG_RE, SYSLOG_KMSG_RE)))
# The kernel's own prefix, kept by normalise(): "[   12.345678]", then with CONFIG_PRINTK_CALLER
# "[  T123]" or "[  C1]" (glued to the time, or after a space once decode_stacktrace.sh re-spaced it).
# Some vendor kernels print the CPU after the time: "[    7.915169@0]".
KERNEL_PREFIX_RE = re.compile(r"^(?:\s*(?:<\d{1,3}>)?\[\s*\d+\.\d+(?:@\d+)?\] ?)?(?:\[\s*(?P<caller>[TC]\d+)\] ?)?")
# A serial console line where the kernel printed after a prompt: "root@host:~# [ 12.3] ...",
# "host login: [ 12.3] ..."
_PROMPT = r"(?:\S*[#$]|\S+ login:) "
PROMPT_RE = re.compile(r"^" + _PROMPT + r"(?=\[\s*\d+\.\d+\] )")
# a kernel console line as another program logged it (a VMM's journal of its guest's serial port)
CONSOLE_LINE_RE = re.compile(r"^(?:" + _PROMPT + r")?\[\s*\d+\.\d+\] ")
# Lines that show an indented block is a pasted log rather than a log's own indentation.
ANCHOR_RE = re.compile(r"\[\s*\d+\.\d+\]|(?:BUG|WARNING|INFO|UBSAN|Oops|Kernel panic|Call Trace|Call trace|"
                       r"Hardware name|Modules linked in|stack backtrace|watchdog|rcu|RIP|CPU: \d)\b|-+\[ cut here")
COMPRESSED = ((b"\x1f\x8b", "gzip", gzip.decompress), (b"\xfd7zXZ\x00", "xz", lzma.decompress),
              (b"BZh", "bzip2", bz2.decompress))
NUL_PADDING_RE = re.compile(rb"\x00{16,}")  # what a crash leaves in a syslog file that was being written
CONTROL_RE = re.compile(r"[\x01-\x08\x0e-\x1a\x1c-\x1f\x7f]")  # not in a log: all but \t \n \v \f \r and ESC


def split_lines(text: str) -> list[str]:
    """Lines as an editor counts them (only "\\n" ends a line; a trailing "\\r" is dropped)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def split_prefix(line: str) -> tuple[str | None, str]:
    """(caller id or None, message) of one normalised line."""
    line = PROMPT_RE.sub("", line, count=1)
    m = KERNEL_PREFIX_RE.match(line)
    return m.group("caller"), line[m.end():]


def normalise(text: str) -> str:
    """Plain kernel console text from a pasted log; see the module docstring."""
    lines = _dedent_blocks([_strip_outer(ln) for ln in split_lines(text)])
    return "\n".join(lines) + ("\n" if text.endswith("\n") and lines else "")


def _strip_outer(line: str) -> str:
    """One line without what the transport added in front of the kernel's own prefix."""
    if "\x1b" in line:
        line = ANSI_RE.sub("", line)
    line = QUOTE_RE.sub("", line, count=1)
    rest, found = line.lstrip(), False
    if not OUTER_HINT_RE.match(rest):
        return line  # a console line as the kernel printed it: the common case
    for _ in range(3):  # a prefix can carry another: syslog before "kern  :warn  : ", "<4>" before a time
        if m := SYSLOG_KMSG_RE.match(rest):
            rest = rest[m.end():]
        elif m := SYSLOG_RE.match(rest):
            if m.group("tag") != "kernel" and not CONSOLE_LINE_RE.match(rest[m.end():]):
                return ""  # another program's line in a syslog or journal excerpt
            rest = rest[m.end():]
        elif m := KMSG_RE.match(rest):
            caller = f"[{m.group('caller'):>6}]" if m.group("caller") else ""
            rest = f"[{int(m.group('usec')) / 1e6:12.6f}]{caller} " + rest[m.end():]
        elif m := MONOTONIC_RE.match(rest):
            rest = m.group("ts") + " " + rest[m.end():]
        elif m := DMESG_DELTA_RE.match(rest):
            rest = m.group("ts") + "]" + rest[m.end():]
        elif m := (DMESG_X_RE.match(rest) or DMESG_T_RE.match(rest) or DMESG_ISO_RE.match(rest)
                   or DMESG_RELTIME_RE.match(rest) or LEVEL_RE.match(rest) or BARE_TAG_RE.match(rest)):
            rest = rest[m.end():]
        else:
            break
        found = True
    # the indent in front of a transport prefix is the paste's; without one, dedent decides
    return rest if found else line


def _dedent_blocks(lines: list[str]) -> list[str]:
    """Remove the indent a paste added, keeping the kernel's relative indentation.

    A run of indented lines loses its common leading whitespace when one of its least
    indented lines is a kernel line (a timestamp, a headline, "Call Trace:"...). The
    indented frames of a log without timestamps form runs too, but none of them starts
    with such a line, so they keep their indent.
    """
    out, i = list(lines), 0
    while i < len(out):
        if not out[i][:1].isspace() or not out[i].strip():
            i += 1
            continue
        j = i
        while j < len(out) and (out[j][:1].isspace() or not out[j]):
            j += 1
        full = [k for k in range(i, j) if out[k].strip()]
        lead = {k: out[k][:len(out[k]) - len(out[k].lstrip())] for k in full}
        common = os.path.commonprefix(list(lead.values()))
        if common and any(len(lead[k]) == len(common) and ANCHOR_RE.match(out[k].lstrip()) for k in full):
            for k in full:
                out[k] = out[k][len(common):]
        i = j
    return out


def read_log(path: str) -> str:
    """The text of a log file, or of stdin for "-": decompressed, checked to be text, normalised."""
    name = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        raise UsageError(detail=f"{name}: {exc.strerror or exc}") from None
    return normalise(decode_log(data, name))


def decode_log(data: bytes, name: str) -> str:
    """The text of a log's bytes (name only says which log in errors): UsageError if it is no text."""
    for magic, kind, decompress in COMPRESSED:
        if data.startswith(magic):
            try:
                data = decompress(data)
            except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
                raise UsageError(detail=f"{name}: not a valid {kind} file ({exc})") from None
            break
    # Long NUL runs are padding (a syslog file cut by a crash): blank lines. Any other NUL means binary.
    data = NUL_PADDING_RE.sub(b"\n", data)
    if b"\x00" in data:
        raise UsageError(detail=f"{name}: binary data (NUL bytes), not a kernel log")
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") + len(CONTROL_RE.findall(text))
    if text and bad > len(text) * 0.05:
        raise UsageError(detail=f"{name}: binary data ({bad} of {len(text)} characters are not text), "
                                f"not a kernel log")
    return text
