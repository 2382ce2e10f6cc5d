"""One exception family. Only the CLI turns these into `E:` lines and exit codes.

Every error wqci raises on purpose is a WqciError, in one of three categories;
the category decides the exit code:

- UserError (exit 2): input the user can correct -- a command line
  (UsageError), a YAML file under configs/ or patches/ (ConfigError,
  KconfigError: a flavour whose options conflict or do not survive into the
  .config), a name that is not configured (UnknownName), a mailbox
  (MboxError).
- InfraError (exit 2): the machine or the world wqci depends on -- a missing
  tool (MissingTool), a command that failed or timed out (CommandFailed,
  CommandTimeout), a base tree or revision (TreeError), a download
  (FetchError), bubblewrap (SandboxError), the guest's root filesystem
  (RootfsError).
- VerdictError (exit 1): a test verdict on the kernel or the series -- a patch
  that does not apply (ApplyFailed), a kernel that does not build
  (BuildFailed), a guest that does not boot, panics or loses its connection
  (GuestError).

A class states its message template in `msg` (default "{detail}"); the
keyword arguments fill it and stay available in `fields`.
"""

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


# ---------------------------------------------------------------- the categories


class UserError(WqciError):
    """Input the user can correct: the command line, a YAML file, a name, a mailbox."""


class InfraError(WqciError):
    """The machine or the world wqci depends on: tools, commands, trees, downloads, sandbox, rootfs."""


class VerdictError(WqciError):
    """A test verdict on the series or the kernel, not a failure of wqci."""

    exit_code = EXIT_VERDICT


# ---------------------------------------------------------------- user errors


class UsageError(UserError):
    pass


class ConfigError(UserError):
    msg = "{path}: {detail}"


class UnknownName(UserError):
    msg = "unknown {kind} '{name}' ({where}); options are: {options}"


class MboxError(UserError):
    msg = "{path}: {detail}"


class KconfigError(UserError):
    pass


# ---------------------------------------------------------------- infrastructure errors


class MissingTool(InfraError):
    msg = "required tool '{tool}' not found ({hint})"


class CommandFailed(InfraError):
    msg = "command failed (exit {code}): {cmd}{tail}"


class CommandTimeout(InfraError):
    msg = "command timed out after {timeout:.0f} s: {cmd}"


class TreeError(InfraError):
    msg = "tree {name}: {detail}"


class FetchError(InfraError):
    msg = "{what}: {detail}"


class SandboxError(InfraError):
    pass


class RootfsError(InfraError):
    pass


# ---------------------------------------------------------------- verdicts


class ApplyFailed(VerdictError):
    """A patch of the series does not apply: a verdict on the series, not an infra error."""

    def __init__(self, *, patch: int, **fields: object) -> None:
        super().__init__(patch=patch, **fields)
        self.patch = patch  # the number (1-based) of the first patch that does not apply


class BuildFailed(VerdictError):
    pass


class GuestError(VerdictError):
    """The guest failed: did not boot, panicked, lost its connection. A test verdict."""
