"""Errors a user can cause: the CLI prints them as one line and exits 2."""


class TracedbError(Exception):
    """A problem with the user's input or warehouse, stated in one line."""
