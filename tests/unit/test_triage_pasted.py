"""Reports in the forms people paste them (tests/data/splats/pasted, sources in its
SOURCES.yaml): each gives its findings, in order, with the kind and title a kernel
developer would file it under."""

import pytest
import yaml

from pipeline.triage import findings as triage
from pipeline.triage import logtext
from tests.conftest import DATA

PASTED = DATA / "splats" / "pasted"
CORPUS = yaml.safe_load((PASTED / "SOURCES.yaml").read_text())["files"]


@pytest.mark.parametrize("entry", CORPUS, ids=[e["file"].split("-")[0] for e in CORPUS])
def test_pasted(entry):
    found = triage.extract((PASTED / entry["file"]).read_text())
    assert [(f.kind, f.title) for f in found] == [(e["kind"], e["title"]) for e in entry["expected"]]


def test_the_corpus_holds_what_it_is_for():
    titles = {e["file"].split("-")[0]: [x["title"] for x in e["expected"]] for e in CORPUS}
    assert titles["13"] == ["sleeping function called from invalid context"]  # `cat /dev/kmsg` records
    assert titles["33"] == ["workqueue lockup"]  # /dev/kmsg records inside syslog lines
    assert titles["27"] == ["WARNING in xfs_iunlink_lookup"]  # a VMM's journal of its guest's console
    assert titles["24"] == ["WARNING in net/sched/sch_generic.c"]  # no kallsyms: the file, not an address
    assert titles["21"] == ["UBSAN: shift-out-of-bounds in fs/bcachefs/inode.c"]  # not the build directory
    assert titles["12"][3] == "inconsistent lock state in rcu_sched_clock_irq"  # the lock's "at:"


@pytest.mark.parametrize(("line", "kernel"), [
    ("3,490,403520072,-;BUG: sleeping function", "[  403.520072] BUG: sleeping function"),
    ("4,17,1000,-,caller=T42;WARNING: x", "[    0.001000][   T42] WARNING: x"),
    ("May 25 07:29:42 x 0,16627,40311380557,-,caller=C0;BUG: w", "[40311.380557][    C0] BUG: w"),
    (" > [   12.5] WARNING: x", "[   12.5] WARNING: x"),
    ("| [   12.5] WARNING: x", "[   12.5] WARNING: x"),
    ("Fri Nov 27 12:23:48 2020 kern.warn kernel: [ 1.5] refcount_t: x", "[ 1.5] refcount_t: x"),
    ("Aug 31 21:37:12 host vmm[12]: [ 2.5] WARNING: x", "[ 2.5] WARNING: x"),
    ("Aug 31 21:37:12 host systemd[1]: Started x.", ""),  # another program's line
])
def test_transport_prefixes_come_off(line, kernel):
    assert logtext.normalise(line + "\n") == kernel + "\n"


def test_vendor_and_prompt_prefixes_are_the_kernels_own():
    assert logtext.split_prefix("[    7.915169@0] WARNING: at x") == (None, "WARNING: at x")
    assert logtext.split_prefix("r620-2 login: [ 2264.71] BUG: x") == (None, "BUG: x")
