"""Reading a mailed series through b4 (pipeline/intake/mbox.py), on recorded mboxes
(tests/data/mbox, see SOURCE.md)."""

import mailbox
import shutil
import subprocess
from email.message import EmailMessage
from pathlib import Path

import b4
import pytest
import requests

from pipeline.intake import mbox
from pipeline.model.errors import FetchError, MboxError
from tests.conftest import DATA

WQ = DATA / "mbox" / "wq-idle-v1-v2.mbox"
FORMAT_PATCH = DATA / "mbox" / "wq-idle-v2-format-patch"
BASE = "dd3ea52a6562933ae320c071a7fbc7a5295983cb"
PREREQ = "3ccb04e9da691349d901a7de52cf82bfaa55716a"
S1 = "workqueue: skip claimed workers in kick_pool()"
S2 = "workqueue: do not cull a worker that was just kicked"
RUI = "Reviewed-by: Rui Reviewer <rui@example.org>"
MO = "Acked-by: Mo Maintainer <mo@example.com>"
TESS = "Tested-by: Tess Tëster <tess@example.net>"


def test_recorded_quoted_printable_mbox():
    """The fastwake-v1 posting, quoted-printable, with a reply mixed in."""
    posting = mbox.read(str(DATA / "mbox" / "fastwake-v1.mbox"))
    assert posting.cover is None and posting.skipped == 1 and posting.revisions == (1,)
    assert [(p.number, p.total, p.subject) for p in posting.patches] == [
        (1, 2, "workqueue: split kick_pool() into kick_pool_pick() + wake_up_process()"),
        (2, 2, "workqueue: defer wake_up_process() outside pool->lock on hot paths"),
    ]
    assert [p.message_id for p in posting.patches] == ["<20260526-fastwake-v1-1-e69ad86923e6@debian.org>",
                                                       "<20260526-fastwake-v1-2-e69ad86923e6@debian.org>"]
    for p in posting.patches:
        assert "=3D" not in p.text and "=20\n" not in p.text
        assert "\n\tif (" in p.text or "\n+\t\t" in p.text  # tabs survived the decoding
        assert "Signed-off-by: Breno Leitao <leitao@debian.org>" in p.text
        assert p.trailers == () and p.author == "Breno Leitao <leitao@debian.org>"


def test_newest_revision_with_the_trailers_of_its_replies():
    posting = mbox.read(str(WQ))
    assert (posting.revision, posting.revisions, posting.skipped) == (2, (1, 2), 9)
    assert posting.title == "workqueue: keep kicked workers out of the idle cull"
    assert posting.base_commit == BASE and posting.prerequisite_patch_ids == (PREREQ,)
    assert posting.cover.message_id == "<20260608-wq-idle-v2-0-7c41d2e9a0b3@example.org>"
    assert [(p.number, p.subject, p.message_id, p.trailers) for p in posting.patches] == [
        # unchanged since v1: keeps Rui's v1 review; the cover's Acked-by goes to every patch
        (1, S1, "<20260608-wq-idle-v2-1-7c41d2e9a0b3@example.org>", (RUI, MO)),
        # changed in v2: Rui's v1 review stays with v1; Zed's Tested-by for Quinn names someone else
        (2, S2, "<20260608-wq-idle-v2-2-7c41d2e9a0b3@example.org>", (TESS, MO)),
    ]
    assert posting.notes == ()


def test_the_patch_text_is_what_git_am_takes():
    first, second = mbox.read(str(WQ)).patches
    head, sep, diff = first.text.partition("\n---\n")
    assert head.splitlines()[-3:] == ["Signed-off-by: Ada Kernel <ada@example.org>", RUI, MO]
    assert "Subject: [PATCH v2 1/2] workqueue: skip claimed workers in kick_pool()" in head
    assert "Message-Id: <20260608-wq-idle-v2-1-7c41d2e9a0b3@example.org>" in head
    assert sep and "+\tif (worker->flags & WORKER_CLAIMED)\n" in diff
    assert "> Signed-off-by" not in first.text  # the reply quoted it; a quote is not a trailer
    assert second.text.partition("\n---\n")[0].splitlines()[-2:] == [TESS, MO]
    assert "!READ_ONCE(pool->nr_kicked)" in second.text


def test_an_older_revision_by_number():
    posting = mbox.read(str(WQ), revision=1)
    assert (posting.revision, posting.base_commit, posting.prerequisite_patch_ids) == (1, "", ())
    assert posting.cover.message_id == "<20260528-wq-idle-v1-0-7c41d2e9a0b3@example.org>"
    assert [(p.subject, p.trailers) for p in posting.patches] == [(S1, (RUI,)), (S2, (RUI,))]
    assert "&& !pool->nr_kicked)" in posting.patches[1].text


def test_a_revision_that_is_not_there():
    with pytest.raises(MboxError) as exc:
        mbox.read(str(WQ), revision=3)
    assert str(exc.value) == f"{WQ}: no revision v3 in it; it has v1, v2"


def test_a_directory_of_format_patch_files():
    posting = mbox.read(str(FORMAT_PATCH))
    assert (posting.revision, posting.base_commit, posting.prerequisite_patch_ids) == (2, BASE, (PREREQ,))
    assert posting.cover.subject == "workqueue: keep kicked workers out of the idle cull"
    # format-patch writes no Message-IDs: none is recorded (b4 works on made-up ones)
    assert posting.cover.message_id == "" and "Message-Id" not in posting.cover.text
    assert [(p.number, p.total, p.subject, p.message_id, p.trailers) for p in posting.patches] == [
        (1, 2, S1, "", ()), (2, 2, S2, "", ())]
    assert all("Message-Id" not in p.text.partition("\n\n")[0] for p in posting.patches)


def test_an_unnumbered_format_patch_file(tmp_path, small_repo):
    """`git format-patch -1` writes [PATCH], no n/m."""
    f = small_repo / "kernel" / "workqueue.c"
    f.write_text(f.read_text().replace("int line3;", "int line3 = 3;"))
    subprocess.run(["git", "-C", str(small_repo), "commit", "-qam", "wq: three\n\nSigned-off-by: A <a@example.org>"],
                   check=True)
    out = tmp_path / "out"
    subprocess.run(["git", "-C", str(small_repo), "format-patch", "-q", "-1", "-o", str(out)], check=True)
    posting = mbox.read(str(out))
    assert [(p.number, p.total, p.subject) for p in posting.patches] == [(1, 1, "wq: three")]


def test_a_maildir_reads_like_the_mbox(tmp_path):
    md = mailbox.Maildir(tmp_path / "md", create=True)
    for msg in mailbox.mbox(WQ):
        md.add(msg)
    from_maildir, from_mbox = mbox.read(str(tmp_path / "md")), mbox.read(str(WQ))
    assert from_maildir.patches == from_mbox.patches
    assert (from_maildir.base_commit, from_maildir.skipped) == (BASE, 9)


@pytest.mark.parametrize("make, detail", [
    (lambda d: d.joinpath("bad.mbox").write_bytes(b"Subject: no separator\n\nbody\n"),
     "not an mbox: the first line is not a 'From ' separator"),
    (lambda d: d.joinpath("bad.mbox").write_bytes(b"From x Mon Sep 17 00:00:00 2001\nMessage-Id: <a@b>\n"
                                                  b"Subject: hello\n\nno patch\n"),
     "no patches among its 1 messages"),
    (lambda d: d.joinpath("bad.mbox").mkdir(),
     "an empty directory: neither a maildir (cur/, new/, tmp/) nor git format-patch files (*.patch)"),
    (lambda d: (d.joinpath("bad.mbox").mkdir(), d.joinpath("bad.mbox", "notes.txt").write_text("x")),
     "a directory: neither a maildir (cur/, new/, tmp/) nor git format-patch files (*.patch)"),
    (lambda d: None, "no such file or directory (nor a message-id or lore URL)"),
])
def test_malformed_sources_name_the_path(tmp_path, make, detail):
    make(tmp_path)
    with pytest.raises(MboxError) as exc:
        mbox.read(str(tmp_path / "bad.mbox"))
    assert str(exc.value) == f"{tmp_path / 'bad.mbox'}: {detail}"


def test_incomplete_series(tmp_path):
    lines = WQ.read_text().split("From mboxrd@z Thu Jan  1 00:00:00 1970\n")
    # keep v2's cover and patch 2 only
    kept = [m for m in lines if any(f"Message-Id: <20260608-wq-idle-v2-{n}-" in m for n in (0, 2))]
    box = tmp_path / "half.mbox"
    box.write_text("".join("From mboxrd@z Thu Jan  1 00:00:00 1970\n" + m for m in kept))
    with pytest.raises(MboxError) as exc:
        mbox.read(str(box))
    assert str(exc.value) == f"{box}: incomplete series: have patches [2] of 2"


def test_a_message_id_without_network_is_one_fetch_error(monkeypatch):
    """No test reaches the network: b4's fetch fails as it does offline."""
    def offline(msgid, **kwargs):
        raise requests.ConnectionError(f"Failed to resolve 'lore.kernel.org' for {msgid}")

    monkeypatch.setattr(b4, "get_pi_thread_by_msgid", offline)
    with pytest.raises(FetchError) as exc:
        mbox.read("https://lore.kernel.org/all/20260608-wq-idle-v2-0-7c41d2e9a0b3@example.org/")
    assert str(exc.value) == (
        "https://lore.kernel.org/all/20260608-wq-idle-v2-0-7c41d2e9a0b3@example.org/: could not fetch the thread "
        "from lore.kernel.org (this needs network): b4 cannot read it: ConnectionError: Failed to resolve "
        "'lore.kernel.org' for 20260608-wq-idle-v2-0-7c41d2e9a0b3@example.org")
    assert exc.value.exit_code == 2


def test_b4_exit_is_an_mbox_error_and_b4_settings_are_restored(tmp_path):
    """b4 calls sys.exit() on a patch with hidden unicode control characters."""
    before = (b4.MAIN_CONFIG, b4.USER_CONFIG, b4.can_network, logging_state())
    msg = EmailMessage()
    msg["From"] = "Eve <eve@example.org>"
    msg["Subject"] = "[PATCH] wq: innocent"
    msg["Message-Id"] = "<eve-1@example.org>"
    msg["Date"] = "Mon, 08 Jun 2026 09:00:00 +0000"
    msg.set_content("wq: innocent\n\nSigned-off-by: Eve <eve@example.org>\n---\n"
                    "diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-int a;\n+int a; /* \u202eevil */\n",
                    cte="8bit")
    box = mailbox.mbox(tmp_path / "eve.mbox")
    box.add(msg)
    box.close()
    with pytest.raises(MboxError) as exc:
        mbox.read(str(tmp_path / "eve.mbox"))
    assert str(exc.value) == (f"{tmp_path / 'eve.mbox'}: b4 refused it: If you are sure about this, rerun with the "
                              "right flag to allow.")
    assert (b4.MAIN_CONFIG, b4.USER_CONFIG, b4.can_network, logging_state()) == before


def logging_state():
    import logging

    log = logging.getLogger("b4")
    return tuple(log.handlers), log.propagate


def test_recorded_data_is_untouched(tmp_path):
    """Reading never writes into the source."""
    copy = tmp_path / "fp"
    shutil.copytree(FORMAT_PATCH, copy)
    mbox.read(str(copy))
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in FORMAT_PATCH.iterdir())
    for p in copy.iterdir():
        assert p.read_bytes() == (FORMAT_PATCH / p.name).read_bytes()
