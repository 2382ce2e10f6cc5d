"""Triage: console -> findings (titles, fingerprints, decoded stacks) and the known list."""
