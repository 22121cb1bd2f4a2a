"""The two ways a command fails, as the exit codes of the contract say."""


class UsageError(Exception):
    """Bad usage or bad input: one line on stderr, exit code 2.

    ``caret``, when set, is a second line printed under the first: a caret
    under the fault in the input the first line ends with.
    """

    exit_code = 2
    caret: str | None = None


class RuntimeFailure(Exception):
    """Something the user's input did not cause (nothing listening, a stream
    broken for good, missing privilege): one line on stderr, exit code 1."""

    exit_code = 1


class NotBuilt(UsageError):
    """A command of the contract that this version does not have yet."""

    def __init__(self, command: str) -> None:
        super().__init__(f"'{command}' is not built yet in this version of meshtui")
