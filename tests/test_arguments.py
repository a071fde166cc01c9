"""Checked number types: every numeric flag of every subcommand rejects bad numbers as a usage error."""

from __future__ import annotations

import argparse
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from preencode.arguments import Integer, Real, count_or_name, non_negative_int, positive_int, seed_32bit
from preencode.cli import build_parser, main
from preencode.errors import UsageError


def minimal_argv(parser: argparse.ArgumentParser) -> list[str]:
    """Placeholder values for the required flags and positionals of a subcommand."""
    argv: list[str] = []
    for action in parser._actions:
        if not action.option_strings and action.nargs != 0:
            argv.append("x")
        elif action.required:
            argv += [action.option_strings[0], "x"]
    return argv


def numeric_flags() -> list[tuple[str, str, Integer | Real]]:
    """(subcommand, flag, checked type) of every numeric flag, read from the parser itself."""
    found = []
    for name, sub in build_parser().subcommands.items():
        for action in sub._actions:
            assert action.type not in (int, float), f"{name} {action.option_strings}: use a checked type"
            if isinstance(action.type, (Integer, Real)):
                found.append((name, action.option_strings[0], action.type))
    return found


FLAGS = numeric_flags()


def bad_values(kind: Integer | Real) -> list[str]:
    values = ["many", "", "1e999x"]
    if kind.minimum is not None:
        values += [str(kind.minimum - 1), str(-abs(kind.minimum) - 7)]
        if getattr(kind, "exclusive", False):
            values.append(str(kind.minimum))
    if isinstance(kind, Integer):
        values += ["1.5"]
        if kind.maximum is not None:
            values.append(str(kind.maximum + 1))
    else:
        values += ["nan", "inf", "-inf"]
    return values


def test_the_parser_has_the_numeric_flags_we_expect():
    names = {(cmd, flag) for cmd, flag, _ in FLAGS}
    assert {("encode", "--batch-size"), ("encode", "--num-workers"), ("encode", "--seed"), ("train", "--batch-size"),
            ("train", "--max-steps"), ("train", "--checkpoint-every"), ("train", "--gradient-clip-val"),
            ("decode", "--chunk-frames")} <= names
    assert len(FLAGS) >= 18


@pytest.mark.parametrize("command,flag,kind", FLAGS, ids=[f"{c} {f}" for c, f, _ in FLAGS])
def test_every_numeric_flag_rejects_bad_numbers(command, flag, kind):
    parser = build_parser()
    sub = parser.subcommands[command]
    base = [command, *minimal_argv(sub)]
    lowest = kind.minimum if kind.minimum is not None else 0
    if getattr(kind, "exclusive", False):
        lowest += 1  # the bound itself is refused (below), a value above it accepted
    args = parser.parse_args([*base, flag, str(lowest)])  # the smallest allowed value is accepted
    assert getattr(args, next(a.dest for a in sub._actions if flag in a.option_strings)) == lowest
    for value in bad_values(kind):
        with pytest.raises(UsageError) as err:
            parser.parse_args([*base, f"{flag}={value}"])
        assert err.value.message.startswith(f"argument {flag}") and "expected " in err.value.message
        assert err.value.prog == f"preencode {command}" and err.value.exit_code == 2


def test_bad_number_through_main_is_exit_2_with_one_error_line(capsys):
    assert main(["train", "--model-config", "m", "--dataset-config", "d", "--save-dir", "s", "--batch-size", "-4"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "preencode train: error: argument --batch-size: expected an integer >= 1, got -4"


@given(st.integers())
def test_integer_bounds(value):
    assert (value >= 1) == _accepts(positive_int, str(value))
    assert (value >= 0) == _accepts(non_negative_int, str(value))
    assert (0 <= value < 2**32) == _accepts(seed_32bit, str(value))


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_real_is_finite_and_bounded(value):
    assert (math.isfinite(value) and value > 0) == _accepts(Real(0.0, exclusive=True), repr(value))


def _accepts(kind: Integer | Real, text: str) -> bool:
    try:
        kind(text)
    except argparse.ArgumentTypeError:
        return False
    return True


def test_descriptions_and_devices():
    assert Integer(0, 9).describe() == "an integer from 0 to 9" and Integer().describe() == "an integer"
    assert Real(0.0).describe() == "a number >= 0" and Real().describe() == "a finite number"
    assert count_or_name("2") == 2 and count_or_name("auto") == "auto" and count_or_name("0,1") == "0,1"
