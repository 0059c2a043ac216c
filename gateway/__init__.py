"""The support gateway. Holds one thing every layer may raise: `CommandError`.

It sits here, at the bottom, so that a lower layer (the runner's `StartupError`) can say
"a mistake the person can fix" without importing the command line that prints it.
"""


class CommandError(Exception):
    """A failure the user can fix; `supportgw` prints it without a traceback and exits 2."""
