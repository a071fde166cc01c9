"""Reading and validating JSON configs with JSON paths in every message.

A :class:`Node` wraps one JSON object and a shared list of problems. Each getter records a problem
(instead of raising) when a value is missing or has the wrong type and returns a fallback, so that a
whole config is checked in one pass and every problem is reported at once.
"""

from __future__ import annotations

import builtins
import difflib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError, UserError

_MISSING = object()


def describe(value: Any) -> str:
    """A short rendering of a JSON value for error messages."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Problems(list):
    """The problems found so far, each a string starting with a JSON path."""

    def raise_if_any(self, source: str) -> None:
        if self:
            raise ConfigError(source, self)


class Node:
    """One JSON object of a config, with its JSON path.

    Args:
        data: the parsed JSON value at this place.
        path: its JSON path, e.g. ``model.encoder.config`` ('' at the root).
        problems: where problems are collected (shared by all nodes of one config).
    """

    def __init__(self, data: Any, path: str = "", problems: Problems | None = None) -> None:
        self.data = data
        self.path = path
        self.problems = problems if problems is not None else Problems()
        self.seen: set[str] = set()
        if not isinstance(data, dict):
            self.problems.append(f"{self.path or '<root>'}: expected an object, got {describe(data)}")
            self.data = {}

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def problem(self, key: str | None, message: str) -> None:
        where = self.key_path(key) if key else (self.path or "<root>")
        self.problems.append(f"{where}: {message}")

    def valid(self, key: str) -> bool:
        """True when no problem has been recorded for ``key``."""
        prefix = self.key_path(key) + ":"
        return not any(p.startswith(prefix) for p in self.problems)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is _MISSING:
                self.problem(key, "is required but missing")
                return None
            return default
        return self.data[key]

    def _typed(self, key: str, default: Any, check: Callable[[Any], bool], expected: str,
               fallback: Any) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is _MISSING:
                self.problem(key, "is required but missing")
                return fallback
            return default
        value = self.data[key]
        if value is None and default is None:
            return None
        if not check(value):
            self.problem(key, f"expected {expected}, got {describe(value)}")
            return fallback if default is _MISSING or default is None else default
        return value

    def int(self, key: str, default: Any = _MISSING, minimum: int | None = None) -> Any:
        value = self._typed(key, default, _is_int, "an integer", 0)
        if minimum is not None and key in self.data and self.valid(key) and _is_int(value) and value < minimum:
            self.problem(key, f"expected an integer >= {minimum}, got {value}")
        return value

    def number(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, default, _is_number, "a number", 0.0)

    def bool(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, default, lambda v: isinstance(v, bool), "true or false", False)

    def str(self, key: str, default: Any = _MISSING) -> Any:
        return self._typed(key, default, lambda v: isinstance(v, str), "a string", "")

    def int_list(self, key: builtins.str, default: Any = _MISSING, minimum: builtins.int | None = None) -> Any:
        value = self._typed(key, default, lambda v: isinstance(v, list) and all(_is_int(x) for x in v),
                            "a list of integers", [])
        if minimum is not None and isinstance(value, list) and key in self.data:
            bad = [x for x in value if _is_int(x) and x < minimum]
            if bad:
                self.problem(key, f"expected integers >= {minimum}, got {describe(value)}")
                return []
        return value

    def obj(self, key: builtins.str, required: builtins.bool = True) -> Node | None:
        """The child object at ``key`` (None when optional and absent or null)."""
        value = self.raw(key, _MISSING if required else None)
        if value is None:
            if required and key in self.data:
                self.problem(key, "expected an object, got null")
            return None
        return Node(value, self.key_path(key), self.problems)

    def list(self, key: builtins.str, default: Any = _MISSING) -> builtins.list[Any]:
        return self._typed(key, default, lambda v: isinstance(v, list), "a list", [])

    def choice(self, key: builtins.str, options: Iterable[builtins.str], default: Any = _MISSING,
               what: builtins.str = "value") -> Any:
        options = list(options)
        value = self._typed(key, default, lambda v: isinstance(v, str), "a string", None)
        if key in self.data and isinstance(value, str) and value not in options:
            self.problem(key, f"unknown {what} {describe(value)}; valid: {', '.join(options)}"
                         f"{did_you_mean(value, options)}")
            return None
        return value

    def check_unknown(self, known: Iterable[builtins.str] | None = None) -> None:
        """Report keys that were neither read nor listed in ``known`` (with a did-you-mean)."""
        allowed = set(self.seen) | set(known or ())
        for key in self.data:
            if key not in allowed:
                self.problem(key, f"unknown key{did_you_mean(key, allowed)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_json(path: str | Path, what: str) -> Any:
    """Read a JSON file named by the user; a missing or malformed file is a :class:`UserError`."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} not found: {path}.", "Check the path.")
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder, expected a JSON file.", "Pass the path of the .json file.")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise UserError(f"{what} {path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}).",
                        "Fix the JSON syntax.") from err
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{what} {path} cannot be read: {err}.", "Check the file and its permissions.") from err
