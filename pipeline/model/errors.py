"""One exception family. Only the CLI turns these into `E:` lines and exit codes."""

from __future__ import annotations

#: exit code for a test verdict (a patch that does not apply, a failing build)
EXIT_VERDICT = 1
#: exit code for usage and infrastructure errors
EXIT_INFRA = 2


class WqciError(Exception):
    """Base of every error wqci raises on purpose."""

    msg = "{detail}"
    exit_code = EXIT_INFRA

    def __init__(self, **fields: object) -> None:
        self.fields = fields
        super().__init__(self.msg.format(**fields))


class UsageError(WqciError):
    msg = "{detail}"


class ConfigError(WqciError):
    msg = "{path}: {detail}"


class UnknownName(WqciError):
    msg = "unknown {kind} '{name}' ({where}); options are: {options}"


class MissingTool(WqciError):
    msg = "required tool '{tool}' not found ({hint})"


class CommandFailed(WqciError):
    msg = "command failed (exit {code}): {cmd}{tail}"


class CommandTimeout(WqciError):
    msg = "command timed out after {timeout:.0f} s: {cmd}"


class TreeError(WqciError):
    msg = "tree {name}: {detail}"


class MboxError(WqciError):
    msg = "{path}: {detail}"


class ApplyFailed(WqciError):
    """A patch of the series does not apply: a verdict on the series, not an infra error."""

    msg = "{detail}"
    exit_code = EXIT_VERDICT


class KconfigError(WqciError):
    msg = "{detail}"


class BuildFailed(WqciError):
    msg = "{detail}"
    exit_code = EXIT_VERDICT


class SandboxError(WqciError):
    msg = "{detail}"


class FetchError(WqciError):
    msg = "{what}: {detail}"


class RootfsError(WqciError):
    msg = "{detail}"


class GuestError(WqciError):
    """The guest failed: did not boot, panicked, lost its connection. A test verdict."""

    msg = "{detail}"
    exit_code = EXIT_VERDICT
