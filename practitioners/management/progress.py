"""Progress bars for the management commands, written through the command's public stderr."""

from __future__ import annotations

from django.core.management.base import BaseCommand, OutputWrapper
from tqdm import tqdm


class BarStream:
    """A file for tqdm on top of a command's ``self.stderr``: tqdm writes partial lines
    ("\\r 40%|####"), which ``OutputWrapper.write`` would end with a newline and colour as an
    error; here each piece is written as it is. Tests that pass ``stderr=`` see the bar there."""

    encoding = "utf-8"

    def __init__(self, wrapper: OutputWrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> int:
        self.wrapper.write(text, style_func=lambda plain: plain, ending="")
        return len(text)

    def flush(self) -> None:
        self.wrapper.flush()

    def isatty(self) -> bool:
        return self.wrapper.isatty()


def progress_bar(command: BaseCommand, *, verbosity: int, **options) -> tqdm:
    """A tqdm bar on the command's stderr, hidden below verbosity 1."""
    return tqdm(file=BarStream(command.stderr), disable=verbosity < 1, **options)
