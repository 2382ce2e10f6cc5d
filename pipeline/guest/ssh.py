"""Talking to a booted guest over SSH with fabric.

Each run generates its own client key and dropbear host key on the host; the
host key goes into the run's initramfs and the client pins it (RejectPolicy:
a guest that presents any other key is refused). No passwords anywhere.
"""

from __future__ import annotations

import base64
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import fabric
import fabric.runners
import paramiko
from invoke.exceptions import CommandTimedOut

from pipeline import proc
from pipeline.model.errors import GuestError, MissingTool


@dataclass(frozen=True)
class Keys:
    client_key: Path
    client_pub: str
    host_key: Path  # dropbear format, goes into the initramfs
    host_pub: str  # "ssh-ed25519 AAAA..."

    def known_hosts(self, port: int) -> str:
        return f"[127.0.0.1]:{port} {self.host_pub}\n"


def make_keys(directory: Path) -> Keys:
    from shutil import which

    for tool, package in (("ssh-keygen", "openssh-client"), ("dropbearkey", "dropbear-bin")):
        if which(tool) is None:
            raise MissingTool(tool=tool, hint=f"Debian package {package}; run `make deps`")
    directory.mkdir(parents=True, exist_ok=True)
    client = directory / "client_ed25519"
    host = directory / "dropbear_ed25519_host_key"
    for path in (client, client.with_suffix(".pub"), host):
        path.unlink(missing_ok=True)
    proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wqci", "-f", str(client)])
    done = proc.run(["dropbearkey", "-t", "ed25519", "-f", str(host)])
    host_pub = next(ln for ln in done.stdout.splitlines() if ln.startswith("ssh-ed25519 "))
    return Keys(client_key=client, client_pub=client.with_suffix(".pub").read_text().strip(),
                host_key=host, host_pub=" ".join(host_pub.split()[:2]))


@dataclass(frozen=True)
class CommandResult:
    command: str
    stdout: str
    stderr: str
    exited: int
    duration: float
    timed_out: bool = False


LOST = (paramiko.SSHException, EOFError, OSError, socket.timeout)


class StopOnInterrupt(fabric.runners.Remote):
    """invoke forwards Ctrl-C (and SIGTERM, which wqci turns into KeyboardInterrupt) to the
    remote command and keeps waiting for it; wqci stops instead: the channel closes and
    the interrupt goes on to the job, which records it and tears the guest down."""

    def send_interrupt(self, interrupt: KeyboardInterrupt) -> None:
        try:
            self.channel.close()
        finally:
            raise interrupt


class Guest:
    """A fabric connection to one guest, pinned to the run's host key."""

    def __init__(self, port: int, keys: Keys, connect_timeout: float = 15) -> None:
        self.port = port
        self.keys = keys
        self.conn = fabric.Connection(
            "127.0.0.1", user="root", port=port, connect_timeout=int(connect_timeout),
            # no ~/.ssh/config: nothing from the user's setup leaks in
            config=fabric.Config(lazy=True, overrides={"runners": {"remote": StopOnInterrupt}}),
            connect_kwargs={"key_filename": [str(keys.client_key)], "look_for_keys": False,
                            "allow_agent": False, "banner_timeout": connect_timeout,
                            "auth_timeout": connect_timeout},
        )
        client = self.conn.client
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        kind, blob = keys.host_pub.split()[:2]
        client.get_host_keys().add(f"[127.0.0.1]:{port}", kind,
                                   paramiko.Ed25519Key(data=base64.b64decode(blob)))

    def open(self) -> "Guest":
        try:
            self.conn.open()
        except LOST as exc:
            raise GuestError(detail=f"cannot open SSH to the guest on port {self.port}: {exc}") from None
        return self

    def close(self) -> None:
        try:
            self.conn.close()
        except LOST:
            pass

    def __enter__(self) -> "Guest":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, command: str, timeout: float = 60) -> CommandResult:
        """Run a shell command; a timeout is a result, a lost connection an error."""
        started = time.monotonic()
        try:
            r = self.conn.run(command, hide=True, warn=True, timeout=timeout, in_stream=False)
        except CommandTimedOut as exc:
            return CommandResult(command, exc.result.stdout, exc.result.stderr, -1,
                                 time.monotonic() - started, timed_out=True)
        except LOST as exc:
            raise GuestError(detail=f"lost the SSH connection to the guest while running '{command}': "
                             f"{exc or type(exc).__name__}") from None
        elapsed = time.monotonic() - started
        # invoke's timer kills a command by closing its channel, and asks the timer thread whether
        # it fired; when the command comes back while that thread is still closing the channel,
        # the result is an ordinary one without an exit status (-1). Seen as a 5 s suite timeout
        # whose module then could not be unloaded ("is in use": its init was still running).
        if r.exited == -1 and elapsed >= timeout:
            return CommandResult(command, r.stdout, r.stderr, -1, elapsed, timed_out=True)
        return CommandResult(command, r.stdout, r.stderr, r.exited, elapsed)

    def check(self, command: str, timeout: float = 60) -> str:
        result = self.run(command, timeout)
        if result.timed_out or result.exited != 0:
            why = "timed out" if result.timed_out else f"exit {result.exited}: {result.stderr.strip()[-200:]}"
            raise GuestError(detail=f"guest command '{command}' failed ({why})")
        return result.stdout

    def put(self, local: Path, remote: str) -> None:
        try:
            self.conn.put(str(local), remote)
        except LOST as exc:
            raise GuestError(detail=f"SFTP put {local} -> {remote} failed: {exc}") from None

    def get(self, remote: str, local: Path) -> Path:
        try:
            self.conn.get(remote, str(local))
        except LOST as exc:
            raise GuestError(detail=f"SFTP get {remote} failed: {exc}") from None
        return local

    def dmesg(self) -> str:
        return self.check("dmesg", timeout=60)

    def ssh_argv(self, known_hosts: Path) -> list[str]:
        """The plain ssh command that reaches this guest, for the user."""
        return ["ssh", "-i", str(self.keys.client_key), "-p", str(self.port),
                "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "IdentitiesOnly=yes", "root@127.0.0.1"]
