"""Fakes of what touches the world, for fast unit tests of the jobs."""
