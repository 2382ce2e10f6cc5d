"""Model: stage status, cases, results and the error family. Pure types, no I/O."""
