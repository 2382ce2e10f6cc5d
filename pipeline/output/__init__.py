"""Output: what a run directory holds for people and other systems, written from its
results.json (rundir.py): the report (summary.md, report.html), the hand-off files
(reproduce.sh, reply.txt, kcidb.json), and the terminal's lines (console.py)."""
