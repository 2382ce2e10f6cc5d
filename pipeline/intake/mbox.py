"""A mailed series, read the way b4 reads it.

The source is an mbox file, a maildir, a directory of `git format-patch` files, or
(with network) a message-id or lore URL that b4 fetches. b4 then does what kernel
maintainers rely on:
- it groups the patches by revision and picks the newest (or the one asked for);
- it collects the trailers of replies (Reviewed-by, Acked-by, Tested-by, ...), only
  when they name the reply's own sender; a cover letter's trailers go to every
  patch, and a patch that did not change since an earlier revision keeps the
  trailers given to that revision;
- it finds `base-commit:` and `prerequisite-patch-id:` in the cover letter or the
  first patch;
- it writes each patch as the mail `git am` takes, trailers added.

b4 keeps its settings in module globals, logs as it goes and may call sys.exit().
`_b4()` gives it fixed settings for the length of one call (no attestation, no
network unless asked for), keeps its warnings as notes for the CLI, and turns its
exits and exceptions into one MboxError (or FetchError) naming the source.
"""

from __future__ import annotations

import hashlib
import io
import logging
import mailbox
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Callable, Iterator

import b4

from pipeline.model.errors import FetchError, MboxError, WqciError

#: the settings b4 runs with: wqci's, never the user's git config
B4_SETTINGS = {"attestation-policy": "off", "attestation-check-dkim": "no"}


@dataclass(frozen=True)
class Patch:
    number: int
    total: int
    subject: str
    author: str
    date: str  # ISO date of the mail
    message_id: str  # "<...>", or "" when the source had none (format-patch files)
    text: str  # the mail as `git am` takes it, trailers added
    trailers: tuple[str, ...]  # what replies added


@dataclass(frozen=True)
class Cover:
    subject: str
    message_id: str
    body: str
    text: str  # headers and body, decoded, as kept beside the patches


@dataclass(frozen=True)
class Posting:
    """One revision of a series, as b4 assembled it from the source."""

    source: str
    revision: int
    revisions: tuple[int, ...]  # every revision the source holds
    cover: Cover | None
    patches: tuple[Patch, ...]
    base_commit: str
    prerequisite_patch_ids: tuple[str, ...]
    skipped: int  # messages of the source that are not this revision's cover or patches
    notes: tuple[str, ...]  # b4's warnings, e.g. duplicate messages

    @property
    def title(self) -> str:
        return self.cover.subject if self.cover else self.patches[0].subject


# ---------------------------------------------------------------- sources


def read(source: str, revision: int | None = None) -> Posting:
    """The series in source: newest revision, or `revision`."""
    label, messages, made_up = messages_of(source)
    return assemble(label, messages, made_up, revision)


def messages_of(source: str) -> tuple[str, list[EmailMessage], set[str]]:
    """(label for messages, the messages, Message-IDs wqci made up for messages without one)."""
    path = Path(source).expanduser()
    if path.is_dir():
        messages = _directory(path)
    elif path.is_file():
        messages = _mbox(path)
    elif source.startswith(("http://", "https://")) or ("@" in source and "/" not in source):
        return source, _fetch_thread(source), set()
    else:
        raise MboxError(path=path, detail="no such file or directory (nor a message-id or lore URL)")
    if not messages:
        raise MboxError(path=path, detail="contains no messages")
    return str(path), messages, _give_ids(messages)


def _mbox(path: Path) -> list[EmailMessage]:
    with open(path, "rb") as fh:
        first = fh.readline()
    if not first.startswith(b"From "):
        raise MboxError(path=path, detail="not an mbox: the first line is not a 'From ' separator")
    return _parse(path, lambda: list(mailbox.mbox(path, factory=b4.mailbox_email_factory, create=False)))


def _directory(path: Path) -> list[EmailMessage]:
    """A maildir, or the files `git format-patch` wrote (each an mbox of one message)."""
    if all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
        return _parse(path, lambda: list(mailbox.Maildir(path, factory=b4.mailbox_email_factory, create=False)))
    files = sorted(p for p in path.glob("*.patch") if p.is_file())
    if not files:
        what = "an empty directory" if not any(path.iterdir()) else "a directory"
        raise MboxError(path=path, detail=f"{what}: neither a maildir (cur/, new/, tmp/) nor git format-patch "
                        "files (*.patch)")
    messages = [m for f in files for m in _mbox(f)]
    _number(path, messages)
    return messages


def _parse(path: Path, load: Callable[[], list[EmailMessage]]) -> list[EmailMessage]:
    try:
        return load()
    except (UnicodeError, ValueError, LookupError, OSError) as exc:
        raise MboxError(path=path, detail=f"cannot parse a message: {exc}") from None


def _number(path: Path, messages: list[EmailMessage]) -> None:
    """`git format-patch` without -n writes `[PATCH]` for a single patch: number the
    patches by file order, as b4 does for a series given as separate messages."""
    with _b4(str(path)):
        patches = [m for m in messages if not _is_cover(m)]
        b4.LoreSeries.renumber_patches(patches)


def _is_cover(msg: EmailMessage) -> bool:
    subject = b4.LoreSubject(str(msg.get("Subject", "")))
    return subject.counter == 0 and not subject.counters_inferred


def _give_ids(messages: list[EmailMessage]) -> set[str]:
    """b4 needs a Message-ID on every message; `git format-patch` writes none. Such
    messages get one derived from their content, which is never recorded as theirs."""
    made_up = set()
    for msg in messages:
        if not str(msg.get("Message-Id", "")).strip():
            digest = hashlib.sha256(msg.as_bytes(policy=b4.emlpolicy)).hexdigest()[:20]
            msg["Message-Id"] = f"<{digest}@wqci.invalid>"
            made_up.add(f"{digest}@wqci.invalid")
    return made_up


def _fetch_thread(source: str) -> list[EmailMessage]:
    """The thread of a message-id or lore URL, through b4 (needs network)."""
    def failed(detail: str) -> FetchError:
        return FetchError(what=source, detail=f"could not fetch the thread from lore.kernel.org (this needs "
                          f"network): {detail}")

    with _b4(source, network=True, error=failed) as notes:
        msgid = b4.parse_msgid(source)
        messages = b4.get_pi_thread_by_msgid(msgid, quiet=True)
    if not messages:
        raise failed(notes[-1] if notes else "no messages found")
    return messages


# ---------------------------------------------------------------- b4


class _Notes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = " ".join(record.getMessage().split())
        if text.strip("-"):
            self.lines.append(text)


@contextmanager
def _b4(label: str, network: bool = False,
        error: Callable[[str], WqciError] | None = None) -> Iterator[list[str]]:
    """b4 with wqci's settings, its warnings collected, its exits and errors ours."""
    fail = error or (lambda detail: MboxError(path=label, detail=detail))
    saved = b4.MAIN_CONFIG, b4.USER_CONFIG, b4.can_network
    log = logging.getLogger("b4")
    handlers, propagate = log.handlers[:], log.propagate
    notes = _Notes()
    b4.MAIN_CONFIG = {**b4.DEFAULT_CONFIG, **B4_SETTINGS}
    b4.USER_CONFIG = {"name": "wqci", "email": "wqci@localhost"}
    b4.can_network = network
    log.handlers[:], log.propagate = [notes], False
    try:
        yield notes.lines
    except SystemExit:
        raise fail(f"b4 refused it: {notes.lines[-1] if notes.lines else 'it exited'}") from None
    except WqciError:
        raise
    except Exception as exc:  # b4 is a library we do not control: whatever it raises names the source
        raise fail(f"b4 cannot read it: {type(exc).__name__}: {exc}") from None
    finally:
        b4.MAIN_CONFIG, b4.USER_CONFIG, b4.can_network = saved
        log.handlers[:], log.propagate = handlers, propagate


def assemble(label: str, messages: list[EmailMessage], made_up: set[str], revision: int | None) -> Posting:
    """b4's view of the messages: one revision, its trailers, its base."""
    with _b4(label) as notes:
        box = b4.LoreMailbox()
        for msg in messages:
            box.add_message(msg)
        revisions = tuple(sorted(box.series))
        if not revisions:
            raise MboxError(path=label, detail=f"no patches among its {len(messages)} messages")
        if revision is not None and revision not in box.series:
            raise MboxError(path=label, detail=f"no revision v{revision} in it; it has "
                            f"{', '.join(f'v{r}' for r in revisions)}")
        series = box.get_series(revision, codereview_trailers=False)
        if series is None:
            raise MboxError(path=label, detail="b4 found no complete revision in it")
        _check_complete(label, series)
        series.add_cover_trailers()
        patches = tuple(_patch(lmsg, made_up) for lmsg in series.patches[1:])
        cover = _cover(series.patches[0], made_up) if series.patches[0] is not None else None
    return Posting(
        source=label, revision=series.revision, revisions=revisions, cover=cover, patches=patches,
        base_commit=series.base_commit or "", prerequisite_patch_ids=tuple(series.prereq_patch_ids or ()),
        skipped=len(messages) - len(patches) - (cover is not None), notes=tuple(notes),
    )


def _check_complete(label: str, series: b4.LoreSeries) -> None:
    have = [i for i, p in enumerate(series.patches) if i and p is not None]
    if len(have) != series.expected:
        raise MboxError(path=label, detail=f"incomplete series: have patches {have} of {series.expected}")


def _msgid(lmsg: b4.LoreMessage, made_up: set[str]) -> str:
    return "" if lmsg.msgid in made_up else f"<{lmsg.msgid}>"


def _patch(lmsg: b4.LoreMessage, made_up: set[str]) -> Patch:
    body = lmsg.body
    added = tuple(dict.fromkeys(t.as_string(omit_extinfo=True) for t in lmsg.followup_trailers
                                if t.as_string(omit_extinfo=True) not in body))
    mail = lmsg.get_am_message(add_trailers=True)  # may sys.exit(): suspicious unicode
    if lmsg.msgid in made_up:
        del mail["Message-Id"]
    out = io.BytesIO()
    b4.save_git_am_mbox([mail], out)
    return Patch(number=lmsg.counter, total=lmsg.expected, subject=lmsg.subject,
                 author=f"{lmsg.fromname} <{lmsg.fromemail}>", date=lmsg.date.date().isoformat(),
                 message_id=_msgid(lmsg, made_up), text=out.getvalue().decode("utf-8", errors="replace"),
                 trailers=added)


def _cover(lmsg: b4.LoreMessage, made_up: set[str]) -> Cover:
    message_id = _msgid(lmsg, made_up)
    headers = [f"From: {lmsg.fromname} <{lmsg.fromemail}>", f"Date: {lmsg.msg.get('Date', '')}",
               f"Subject: {lmsg.full_subject}"] + ([f"Message-Id: {message_id}"] if message_id else [])
    return Cover(subject=lmsg.subject, message_id=message_id, body=lmsg.body,
                 text="\n".join(headers) + "\n\n" + lmsg.body.rstrip("\n") + "\n")
