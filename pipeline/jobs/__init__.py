"""Jobs: orchestration that composes the stages (test, run, bisect, nightly)."""
