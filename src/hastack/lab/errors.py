"""The one exception the lab raises: a message an operator can act on, shown without a traceback."""

from __future__ import annotations


class LabError(Exception):
    """A lab problem with what to do about it.

    The CLI prints `str(err)` as one line and exits non-zero; tests match on `code`.
    """

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        self.code = code
        self.message = message
        self.hint = hint
        super().__init__(f"{message} - {hint}" if hint else message)
