"""Checked argument types for every subcommand: a bad number is a usage error (exit 2) everywhere.

Use them as argparse types, e.g. ``parser.add_argument("--batch-size", type=positive_int, default=1)``.
No subcommand uses a bare ``int`` or ``float``: ``tests/test_cli.py`` walks every registered flag and
feeds each checked type values below its minimum and non-numbers.

Example::

    >>> positive_int("8")
    8
    >>> positive_int("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: expected an integer >= 1, got 0
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Integer:
    """An integer in ``[minimum, maximum]`` (either bound optional)."""

    minimum: int | None = None
    maximum: int | None = None

    def describe(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"an integer from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"an integer >= {self.minimum}"
        if self.maximum is not None:
            return f"an integer <= {self.maximum}"
        return "an integer"

    def __call__(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}") from None
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {value}")
        return value


@dataclass(frozen=True)
class Real:
    """A finite number ``>= minimum`` (``> minimum`` when ``exclusive``)."""

    minimum: float | None = None
    exclusive: bool = False

    def describe(self) -> str:
        if self.minimum is None:
            return "a finite number"
        return f"a number {'>' if self.exclusive else '>='} {self.minimum:g}"

    def __call__(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}") from None
        low = self.minimum
        if not math.isfinite(value) or (low is not None and (value <= low if self.exclusive else value < low)):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return value


positive_int = Integer(minimum=1)
non_negative_int = Integer(minimum=0)
#: Lightning's ``seed_everything`` silently replaces a seed outside numpy's 32-bit range by 0.
seed_32bit = Integer(minimum=0, maximum=2**32 - 1)
non_negative_float = Real(minimum=0.0)


def count_or_name(text: str) -> int | str:
    """Lightning's ``devices``: a count (``2``) stays a number, anything else (``auto``, ``0,1``) a string."""
    return int(text) if text.isdigit() else text
