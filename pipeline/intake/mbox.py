"""Importing a mailed series from an mbox or maildir into patches/NAME/.

Bodies are decoded (quoted-printable, base64, charsets) by the email library;
patches are ordered by their `[PATCH vN n/m]` tag; a cover letter gives the
series its title and description; replies and mails without a diff are
skipped, but review trailers found in replies are added to their patch.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import yaml

from pipeline import proc
from pipeline.model.errors import MboxError, UsageError

TAG_RE = re.compile(r"^\s*\[(?P<tag>[^\]]*\bPATCH\b[^\]]*)\]\s*(?P<subject>.*)$", re.S)
NUM_RE = re.compile(r"\b(\d+)/(\d+)\b")
VER_RE = re.compile(r"\bv(\d+)\b", re.I)
REPLY_RE = re.compile(r"^\s*(re|aw|sv)\s*:", re.I)
TRAILER_RE = re.compile(r"^(Reviewed|Acked|Tested|Reported|Suggested)-by: .+$", re.M)
DIFF_RE = re.compile(r"^(diff --git |--- a/|\+\+\+ b/)", re.M)


@dataclass
class Mail:
    subject: str
    author: str
    date: str
    message_id: str
    in_reply_to: str
    body: str
    version: int = 1
    number: int = 1
    total: int = 1
    trailers: list[str] = field(default_factory=list)


def read_messages(path: Path) -> list[EmailMessage]:
    factory = lambda fh: email.message_from_binary_file(fh, policy=email.policy.default)  # noqa: E731
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise MboxError(path=path, detail="a directory but not a maildir (needs cur/, new/ and tmp/)")
        box = mailbox.Maildir(path, factory=factory, create=False)
    elif path.is_file():
        with open(path, "rb") as fh:
            first = fh.readline()
        if not first.startswith(b"From "):
            raise MboxError(path=path, detail="not an mbox: the first line is not a 'From ' separator")
        box = mailbox.mbox(path, factory=factory, create=False)
    else:
        raise MboxError(path=path, detail="no such file or directory")
    try:
        return list(box)
    except (UnicodeError, ValueError, LookupError) as exc:
        raise MboxError(path=path, detail=f"cannot parse a message: {exc}") from None


def _text(msg: EmailMessage, path: Path) -> str:
    part = msg.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    try:
        return part.get_content()
    except (LookupError, UnicodeError, ValueError) as exc:
        raise MboxError(path=path, detail=f"message {msg.get('Message-Id', '?')}: cannot decode body: {exc}") from None


def to_mail(msg: EmailMessage, path: Path) -> Mail:
    subject = " ".join(str(msg.get("Subject", "")).split())
    mail = Mail(
        subject=subject,
        author=str(msg.get("From", "")).strip(),
        date=str(msg.get("Date", "")).strip(),
        message_id=str(msg.get("Message-Id", "")).strip(),
        in_reply_to=str(msg.get("In-Reply-To", "")).strip(),
        body=_text(msg, path),
    )
    m = TAG_RE.match(subject)
    if m:
        tag = m.group("tag")
        mail.subject = m.group("subject").strip()
        if (n := NUM_RE.search(tag)):
            mail.number, mail.total = int(n.group(1)), int(n.group(2))
        if (v := VER_RE.search(tag)):
            mail.version = int(v.group(1))
    return mail


def is_patch(mail: Mail, raw_subject: str) -> bool:
    return not REPLY_RE.match(raw_subject) and bool(DIFF_RE.search(mail.body))


def is_cover(mail: Mail, raw_subject: str) -> bool:
    return not REPLY_RE.match(raw_subject) and TAG_RE.match(raw_subject) is not None and mail.number == 0


@dataclass(frozen=True)
class Imported:
    name: str
    directory: Path
    version: int
    patches: tuple[str, ...]
    skipped: int


def collect(path: Path) -> tuple[Mail | None, list[Mail], int]:
    """Cover letter, ordered patches of the newest version, count of skipped mails."""
    messages = read_messages(path)
    if not messages:
        raise MboxError(path=path, detail="contains no messages")
    covers, patches, replies = [], [], []
    for msg in messages:
        raw = " ".join(str(msg.get("Subject", "")).split())
        mail = to_mail(msg, path)
        if is_cover(mail, raw):
            covers.append(mail)
        elif is_patch(mail, raw):
            patches.append(mail)
        else:
            replies.append(mail)
    if not patches:
        raise MboxError(path=path, detail=f"no patches among its {len(messages)} messages")
    version = max(p.version for p in patches)
    chosen = sorted((p for p in patches if p.version == version), key=lambda p: p.number)
    _check_numbering(path, chosen)
    _carry_trailers(chosen, replies)
    cover = next((c for c in covers if c.version == version), None)
    return cover, chosen, len(messages) - len(chosen) - (cover is not None)


def _check_numbering(path: Path, patches: list[Mail]) -> None:
    total = patches[0].total
    numbers = [p.number for p in patches]
    if numbers != list(range(1, total + 1)):
        raise MboxError(path=path, detail=f"incomplete series: have patches {numbers} of {total}")


def _carry_trailers(patches: list[Mail], replies: list[Mail]) -> None:
    by_id = {p.message_id: p for p in patches if p.message_id}
    for reply in replies:
        target = by_id.get(reply.in_reply_to)
        if target is None:
            continue
        for trailer in TRAILER_RE.finditer(reply.body):
            line = trailer.group(0).strip()
            if line not in target.body and line not in target.trailers:
                target.trailers.append(line)


def patch_text(mail: Mail) -> str:
    """The mail as a `git format-patch` style file that `git am` takes."""
    body = mail.body.replace("\r\n", "\n")
    if mail.trailers:
        msg, sep, rest = body.partition("\n---\n")
        body = msg.rstrip("\n") + "\n" + "\n".join(mail.trailers) + "\n" + sep + rest
    tag = f"PATCH {mail.number}/{mail.total}" if mail.total > 1 else "PATCH"
    headers = [
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001",
        f"From: {mail.author}",
        f"Date: {mail.date}",
        f"Subject: [{tag}] {mail.subject}",
    ]
    if mail.message_id:
        headers.append(f"Message-Id: {mail.message_id}")
    headers += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: 8bit"]
    return "\n".join(headers) + "\n\n" + body.rstrip("\n") + "\n"


def slug(number: int, subject: str) -> str:
    words = re.sub(r"[^A-Za-z0-9_.]+", "-", subject).strip("-.")[:52].rstrip("-.")
    return f"{number:04d}-{words}.patch"


def _date(mail: Mail) -> str:
    try:
        return parsedate_to_datetime(mail.date).date().isoformat()
    except (TypeError, ValueError):
        return mail.date


def check_diff(path: Path, mail) -> None:
    """A patch whose diff git cannot parse (a corrupt hunk, a truncated paste) is refused
    at import, not when it fails to apply later."""
    done = proc.run(["git", "apply", "--numstat", "-"], stdin_data=patch_text(mail), check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["git apply cannot parse it"])[0].removeprefix("error: ")
        raise MboxError(path=path, detail=f"patch {mail.number} \"{mail.subject}\": {why}")


def import_series(path: Path, name: str, patches_dir: Path, base: str, force: bool = False) -> Imported:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UsageError(detail=f"series name '{name}': use letters, digits, '.', '_' and '-'")
    dest = patches_dir / name
    if dest.exists() and not force:
        raise UsageError(detail=f"{dest} already exists (use --force to replace it)")
    cover, patches, skipped = collect(path)
    for mail in patches:
        check_diff(path, mail)
    first = patches[0]
    title = cover.subject if cover else first.subject
    description = cover.body.split("\n---\n")[0].strip() if cover else ""
    entries = []
    patches_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=patches_dir) as tmp:
        for mail in patches:
            fname = slug(mail.number, mail.subject)
            (Path(tmp) / fname).write_text(patch_text(mail), encoding="utf-8")
            entries.append({"file": fname, "subject": mail.subject, "message_id": mail.message_id})
        meta = {
            "name": name,
            "title": title,
            "version": first.version,
            "base": base,
            "author": first.author,
            "date": _date(first),
            "description": description,
            "links": [f"https://lore.kernel.org/r/{m.message_id.strip('<>')}" for m in patches if m.message_id],
            "patches": entries,
            "claims": [],
            "reconstruction": f"Imported by `wqci series import` from {path.name}; bodies decoded, not edited.\n",
        }
        (Path(tmp) / "series.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100))
        if dest.exists():
            shutil.rmtree(dest)
        Path(tmp).rename(dest)
        Path(tmp).mkdir()  # TemporaryDirectory wants something to remove
    return Imported(name=name, directory=dest, version=first.version,
                    patches=tuple(e["file"] for e in entries), skipped=skipped)
