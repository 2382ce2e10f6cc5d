"""Output: the report (summary.md, report.html) and terminal lines."""
