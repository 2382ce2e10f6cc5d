"""Analysis: A/B statistics and repeat rates."""
