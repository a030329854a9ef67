"""What a run was asked to do: options from its bundle's commands.txt and its metadata
(compare.config), as the configuration differences of a comparison show them."""

from __future__ import annotations

import json

from tracedb.compare.config import parse_command, run_options

COMMANDS = """# two pixels traced, one command each
./nanoBragg -hkl P1.hkl -lambda 6.2 -N 5 -trace_pixel 10 20 -floatfile a.bin
./nanoBragg -hkl P1.hkl -lambda 6.5 -N 5 5 5 -trace_pixel 30 40 \\
    -distance 100 > log.txt
./nanoBragg -hkl P1.hkl -lambda 9.9 -trace_pixel 10 20
"""


def row(slow=None, fast=None, metadata=None, commands=COMMANDS):
    return {"slow": slow, "fast": fast, "commands_text": commands,
            "metadata_json": None if metadata is None else json.dumps(metadata)}


def test_each_pixel_gets_the_first_command_that_traces_it():
    assert run_options(row(10, 20))[0] == {"hkl": "P1.hkl", "lambda": "6.2", "n": "5.0"}
    # the continuation joined, the redirection not an option, "5 5 5" one number
    assert run_options(row(30, 40))[0] == {"hkl": "P1.hkl", "lambda": "6.5", "n": "5.0",
                                           "distance": "100.0"}
    assert run_options(row(50, 60))[0] == {}  # no command traces it, and there are three
    # the only command of a bundle is every pixel's
    only = "./nanoBragg -lambda 1 -trace_pixel 1 2\n"
    assert run_options(row(50, 60, commands=only))[0] == {"lambda": "1.0"}
    assert run_options(row(commands=only))[0] == {"lambda": "1.0"}


def test_the_same_commands_text_answers_each_run_alike_when_asked_again():
    first = [run_options(row(s, f)) for s, f in ((10, 20), (30, 40), (10, 20))]
    assert first[0] == first[2] and first[0] != first[1]
    assert [run_options(row(s, f)) for s, f in ((10, 20), (30, 40), (10, 20))] == first


def test_metadata_values_that_compare_equal_keep_their_spelling_apart():
    # -0.0 is not 0.0 (a sign a setting may carry), True is not 1 (a flag on is not the
    # number one), though Python takes each pair for one value
    on = run_options(row(metadata={"config": {"flag": True, "n": 1}}))[1]
    one = run_options(row(metadata={"config": {"flag": 1, "n": True}}))[1]
    assert on == {"flag": "True", "n": "1.0"} and one == {"flag": "1.0", "n": "True"}
    zero = run_options(row(metadata={"config": {"phi_start": 0.0}}))[1]
    minus = run_options(row(metadata={"config": {"phi_start": -0.0}}))[1]
    assert (zero, minus) == ({"phi_start": "0.0"}, {"phi_start": "-0.0"})
    assert run_options(row(metadata={"config": {"n": [5, 5, 5]}, "dtype": "float64"}
                ))[1] == {
        "n": "5.0", "dtype": "float64"}


def test_a_command_line_splits_into_the_words_the_shell_reading_gives():
    # a line without quotes, escapes or comments skips shlex: it must give shlex's words
    import random
    import shlex

    from tracedb.compare.config import _words

    rng = random.Random(7)
    pieces = ["-lambda", "6.2", "--N", "5", "P1.hkl", ">", "|", "2>&1", "-x-y", "é", "\x0b",
              "\x0c", "\xa0", "a\u2003b", "\x85", "\u2028", ";", "&&", "$X", "(", "*"]
    blanks = [" ", "  ", "\t", "\r", "\n", " \t "]
    lines = ["", " ", "\t\n", *("".join(rng.choice(blanks) + rng.choice(pieces)
                                       for _ in range(rng.randint(1, 12)))
                                + rng.choice(["", *blanks]) for _ in range(2000))]
    assert [_words(ln) for ln in lines] == [shlex.split(ln, comments=True) for ln in lines]
    assert any(len(_words(ln)) > 3 for ln in lines)


def test_a_command_line_with_quoting_or_a_comment_reads_as_the_shell_would():
    assert parse_command("nanoBragg -N 5 # -lambda 2") == {"n": "5.0"}
    assert parse_command("nanoBragg -N 5#x -lambda 2") == {"n": "5.0"}
    assert parse_command("nanoBragg -hkl 'P 1.hkl' -N 5") == {"hkl": "P 1.hkl", "n": "5.0"}
    assert parse_command('nanoBragg -hkl "P 1.hkl"') == {"hkl": "P 1.hkl"}
    assert parse_command("nanoBragg -hkl P\\ 1.hkl") == {"hkl": "P 1.hkl"}
    # an unclosed quote: the words between blanks
    assert parse_command("nanoBragg -hkl 'P1.hkl -N 5") == {"hkl": "'P1.hkl", "n": "5.0"}
