"""report.html read as a person reads it: rendered by headless Chromium (Debian's chromium,
installed by `make deb-deps`) in a 1280x900 window. A probe script, added to a copy of the
page, measures where the verdict and the findings land; they must be above the fold,
and the folded detail below them."""

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.output import report

RUNS = Path(__file__).parents[1] / "data" / "runs"
CHROMIUM = shutil.which("chromium")
WINDOW = "1280,900"

PROBE = """<script>
(() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.top + scrollY, r.bottom + scrollY]; };
  const verdict = document.getElementById('verdict');
  const out = {
    fold: innerHeight,
    verdict: box(verdict), verdict_text: verdict.innerText,
    findings: [...document.querySelectorAll('article.finding')].map(a => ({
      id: a.id, cls: a.className, title: a.querySelector('h4').innerText,
      title_box: box(a.querySelector('h4')), judgement_box: box(a.querySelector('p')),
      folded: a.closest('details') !== null})),
    ab: [...document.querySelectorAll('table.ab')].map(t => box(t)[0]),
    details: box(document.getElementById('details'))[0],
    open_details: document.querySelectorAll('details[open]').length,
    folded: document.querySelectorAll('details').length,
    height: document.documentElement.scrollHeight,
  };
  document.body.setAttribute('data-layout', JSON.stringify(out));
})();
</script>"""


def layout_of(page: Path, tmp_path: Path) -> dict:
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={WINDOW}",
                           f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r'<body data-layout="([^"]*)"', done.stdout)
    assert found, f"chromium did not run the probe (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make deb-deps` installs Debian's chromium)")
def test_the_verdict_and_the_findings_are_above_the_fold(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(RUNS / "fail-new-finding", run_dir)
    _, page = report.write(run_dir)
    seen = layout_of(page, tmp_path)
    fold = seen["fold"]
    assert 700 <= fold <= 900, seen  # the window's viewport, whatever the browser's own bars take
    # the verdict, with both of its reasons and the warning, fits in the first screen
    assert seen["verdict"][0] < 50 and seen["verdict"][1] <= fold, seen["verdict"]
    text = seen["verdict_text"]
    assert text.startswith("wqci run fastwake-v1: FAIL\n")
    assert "x86_64 fastwake-v1: new KCSAN: data-race in kick_pool_pick" in text
    assert "arm64 fastwake-v1: build: fastwake-v1 2/2 does not build" in text
    assert "x86_64 fastwake-v1: unconfirmed KCSAN: data-race in process_one_work" in text
    # each new and unconfirmed finding: its title and how it was judged, above the fold, not folded
    top = [f for f in seen["findings"] if not f["folded"]]
    assert [(f["title"], f["cls"]) for f in top] == [("KCSAN: data-race in kick_pool_pick", "finding new"),
                                                    ("KCSAN: data-race in process_one_work", "finding unconfirmed")]
    for f in top:
        assert f["title_box"][1] <= fold and f["judgement_box"][1] <= fold, (f, fold)
    # then the A/B table, then the detail, folded
    assert top[-1]["title_box"][0] < seen["ab"][0] < seen["details"]
    assert seen["details"] > fold and seen["folded"] >= 5 and seen["open_details"] == 0


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make deb-deps` installs Debian's chromium)")
def test_a_pass_states_it_above_the_fold(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(RUNS / "pass-older-format", run_dir)
    _, page = report.write(run_dir)
    seen = layout_of(page, tmp_path)
    assert seen["verdict"][1] <= seen["fold"]
    assert seen["verdict_text"].startswith("wqci run fastwake-v1: PASS\n")
    assert "x86_64: findings: 1 pre-existing; A/B on 4 scope(s): no significant change" in seen["verdict_text"]
    assert seen["ab"][0] < seen["fold"]  # no finding to show: the A/B table comes up
