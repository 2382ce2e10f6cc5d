"""Build: kconfig fragments and their verification, slots, make, ccache and the sandbox."""
