"""Intake: the base tree (apt, .deb, git), mailed series (mbox) and applying them."""
