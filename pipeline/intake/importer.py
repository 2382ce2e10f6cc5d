"""`wqci series import`: a mailed series (intake/mbox.py) written as a series directory in
the user's home for series ($WQCI_SERIES), never into wqci's own patches/.

The directory holds the patches as `git am` takes them (trailers from replies added),
the cover letter as mailed, and series.yaml with the Message-IDs, `base-commit:` and
`prerequisite-patch-id:` of the posting. Every check (name, revision, diffs) runs
before anything is written, and the directory appears whole or not at all.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline import proc
from pipeline.intake import mbox
from pipeline.model.errors import MboxError, UsageError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
COVER_FILE = "cover-letter.txt"
DESCRIPTION_END = re.compile(r"^(---|-- |base-commit: |.* \(\d+\):)$", re.M)  # diffstat, signature, base, shortlog


@dataclass(frozen=True)
class ImportRequest:
    source: str  # an mbox, a maildir, a format-patch directory, a message-id or lore URL
    name: str
    home: Path  # the user's series ($WQCI_SERIES)
    bundled: Path  # wqci's own patches/: its names are taken
    base: str  # the configured tree the series applies to when its base-commit is not in a tree
    revision: int | None = None  # -v N; default the newest
    force: bool = False


@dataclass(frozen=True)
class Imported:
    name: str
    directory: Path
    posting: mbox.Posting

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(slug(p.number, p.subject) for p in self.posting.patches)


def check_name(req: ImportRequest) -> Path:
    """The directory the series will have; refuses a bad name, a bundled name, an existing one."""
    if not NAME_RE.fullmatch(req.name):
        raise UsageError(detail=f"--name {req.name}: use letters, digits, '.', '_' and '-'")
    if (req.bundled / req.name / "series.yaml").is_file():
        raise UsageError(detail=f"--name {req.name}: a series bundled with wqci has that name "
                         f"({req.bundled / req.name}); choose another")
    dest = req.home / req.name
    if dest.exists() and not req.force:
        raise UsageError(detail=f"--name {req.name}: {dest} already exists (--force replaces it)")
    return dest


def import_series(req: ImportRequest) -> Imported:
    dest = check_name(req)
    posting = mbox.read(req.source, req.revision)
    for patch in posting.patches:
        check_diff(posting.source, patch)
    req.home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{req.name}.", dir=req.home) as tmp:
        _write(Path(tmp), req, posting)
        if dest.exists():
            shutil.rmtree(dest)
        Path(tmp).rename(dest)
        Path(tmp).mkdir()  # TemporaryDirectory wants something to remove
    return Imported(req.name, dest, posting)


def check_diff(source: str, patch: mbox.Patch) -> None:
    """A patch whose diff git cannot parse (a corrupt hunk, a truncated paste) is refused
    at import, not when it fails to apply later."""
    done = proc.run(["git", "apply", "--numstat", "-"], stdin_data=patch.text, check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["git apply cannot parse it"])[0].removeprefix("error: ")
        raise MboxError(path=source, detail=f"patch {patch.number} \"{patch.subject}\": {why}")


def _write(where: Path, req: ImportRequest, posting: mbox.Posting) -> None:
    entries = []
    for patch in posting.patches:
        fname = slug(patch.number, patch.subject)
        (where / fname).write_text(patch.text, encoding="utf-8")
        entry = {"file": fname, "subject": patch.subject, "message_id": patch.message_id}
        if patch.trailers:
            entry["trailers"] = list(patch.trailers)
        entries.append(entry)
    cover = posting.cover
    if cover:
        (where / COVER_FILE).write_text(cover.text, encoding="utf-8")
    first = posting.patches[0]
    meta = {
        "name": req.name,
        "title": posting.title,
        "version": posting.revision,
        "base": req.base,
        "base_commit": posting.base_commit or None,
        "prerequisite_patch_ids": list(posting.prerequisite_patch_ids) or None,
        "author": first.author,
        "date": first.date,
        "description": description(cover.body) if cover else "",
        "cover": {"file": COVER_FILE, "message_id": cover.message_id} if cover else None,
        "links": [f"https://lore.kernel.org/r/{m.strip('<>')}"
                  for m in ([cover.message_id] if cover else []) + [p.message_id for p in posting.patches] if m],
        "patches": entries,
        "claims": [],
        "reconstruction": f"Imported by `wqci series import` from {req.source} (v{posting.revision}; "
                          f"b4 {b4_version()}); bodies decoded, trailers from replies added.\n",
    }
    text = yaml.safe_dump({k: v for k, v in meta.items() if v is not None}, sort_keys=False, allow_unicode=True,
                          width=100)
    (where / "series.yaml").write_text(text, encoding="utf-8")


def description(cover_body: str) -> str:
    """The cover letter's prose: up to its shortlog, diffstat, base-commit or signature."""
    m = DESCRIPTION_END.search(cover_body)
    return (cover_body[:m.start()] if m else cover_body).strip()


def slug(number: int, subject: str) -> str:
    words = re.sub(r"[^A-Za-z0-9_.]+", "-", subject).strip("-.")[:52].rstrip("-.")
    return f"{number:04d}-{words}.patch"


def b4_version() -> str:
    return getattr(mbox.b4, "__VERSION__", "?")
