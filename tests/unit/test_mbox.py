import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest

from pipeline import config
from pipeline.intake import mbox
from pipeline.model.errors import MboxError
from tests.conftest import DATA

DIFF = """\
---
 kernel/workqueue.c | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/kernel/workqueue.c b/kernel/workqueue.c
--- a/kernel/workqueue.c
+++ b/kernel/workqueue.c
@@ -1,3 +1,3 @@
 int line1;
-int line2;
+int line2 = {n};
 int line3;
-- 
2.39.5
"""


def mail(subject: str, body: str, msgid: str, reply_to: str = "", cte: str = "quoted-printable") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Jörg Developer <jd@example.org>"
    msg["Date"] = "Tue, 26 May 2026 14:08:05 -0400"
    msg["Subject"] = subject
    msg["Message-Id"] = msgid
    if reply_to:
        msg["In-Reply-To"] = reply_to
    msg.set_content(body, cte=cte)
    return msg


def write_mbox(path: Path, messages: list[EmailMessage]) -> Path:
    box = mailbox.mbox(path)
    for m in messages:
        box.add(m)
    box.flush()
    box.close()
    return path


def patch_body(n: int) -> str:
    return f"workqueue: change {n}\n\nBecause.\n\nSigned-off-by: Jörg Developer <jd@example.org>\n" + DIFF.replace("{n}", str(n))


def test_recorded_quoted_printable_mbox(tmp_path):
    """The fastwake-v1 posting, re-encoded as quoted-printable with a reply mixed in."""
    cover, patches, skipped = mbox.collect(DATA / "mbox" / "fastwake-v1.mbox")
    assert cover is None and skipped == 1
    assert [p.subject for p in patches] == [
        "workqueue: split kick_pool() into kick_pool_pick() + wake_up_process()",
        "workqueue: defer wake_up_process() outside pool->lock on hot paths",
    ]
    assert [(p.number, p.total) for p in patches] == [(1, 2), (2, 2)]
    for p in patches:
        assert "=3D" not in p.body and "=20\n" not in p.body
        assert "\tif (" in p.body or "\t\t" in p.body  # tabs survived the decoding
        assert "Signed-off-by: Breno Leitao" in p.body


def test_import_orders_decodes_and_skips(tmp_path):
    box = write_mbox(tmp_path / "in.mbox", [
        mail("[PATCH v2 2/2] wq: second", patch_body(2), "<p2@x>", cte="base64"),
        mail("Re: [PATCH v2 1/2] wq: first", "> quoted\n\nReviewed-by: Rev Iewer <r@example.org>\n",
             "<r1@x>", reply_to="<p1@x>"),
        mail("[PATCH v2 0/2] wq: a cover title", "Cover text.\n\nMore text.\n", "<c@x>"),
        mail("[PATCH v2 1/2] wq: first", patch_body(1), "<p1@x>"),
        mail("[PATCH 1/1] wq: old version", patch_body(9), "<old@x>"),
        mail("lunch?", "no diff here\n", "<l@x>"),
    ])
    done = mbox.import_series(box, "imported", tmp_path / "patches", base="linux-7.2")
    assert done.version == 2 and done.skipped == 3
    s = config.load_series_file(tmp_path / "patches" / "imported" / "series.yaml")
    assert s.title == "wq: a cover title" and s.description.startswith("Cover text.")
    assert [p.subject for p in s.patches] == ["wq: first", "wq: second"]
    assert s.links == ("https://lore.kernel.org/r/p1@x", "https://lore.kernel.org/r/p2@x")
    first, second = (p.read_text() for p in s.patch_paths())
    assert "Subject: [PATCH 1/2] wq: first" in first
    assert "From: Jörg Developer <jd@example.org>" in first
    # the reply's trailer was carried into patch 1, before the --- line
    head, _, _ = first.partition("\n---\n")
    assert head.rstrip().endswith("Reviewed-by: Rev Iewer <r@example.org>")
    assert "+int line2 = 2;" in second  # base64 decoded
    assert "\n int line1;\n" in second  # context lines keep their leading space


def test_import_refuses_to_overwrite(tmp_path):
    box = write_mbox(tmp_path / "in.mbox", [mail("[PATCH] wq: one", patch_body(1), "<a@x>")])
    mbox.import_series(box, "one", tmp_path / "patches", base="linux-7.2")
    with pytest.raises(Exception) as exc:
        mbox.import_series(box, "one", tmp_path / "patches", base="linux-7.2")
    assert "already exists" in str(exc.value)


def test_maildir(tmp_path):
    md = mailbox.Maildir(tmp_path / "md", create=True)
    md.add(mail("[PATCH] wq: one", patch_body(1), "<a@x>"))
    _, patches, _ = mbox.collect(tmp_path / "md")
    assert [p.subject for p in patches] == ["wq: one"]


@pytest.mark.parametrize("content, detail", [
    (b"Subject: no separator\n\nbody\n", "not an mbox"),
    (b"From x Mon Sep 17 00:00:00 2001\nSubject: hello\n\nno patch\n", "no patches among its 1 messages"),
])
def test_malformed(tmp_path, content, detail):
    path = tmp_path / "bad.mbox"
    path.write_bytes(content)
    with pytest.raises(MboxError) as exc:
        mbox.collect(path)
    assert str(path) in str(exc.value) and detail in str(exc.value)


def test_incomplete_series(tmp_path):
    box = write_mbox(tmp_path / "in.mbox", [
        mail("[PATCH 1/3] a", patch_body(1), "<1@x>"),
        mail("[PATCH 3/3] c", patch_body(3), "<3@x>"),
    ])
    with pytest.raises(MboxError) as exc:
        mbox.collect(box)
    assert "incomplete series: have patches [1, 3] of 3" in str(exc.value)
