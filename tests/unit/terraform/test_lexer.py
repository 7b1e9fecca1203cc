"""strip_comments keeps code and line numbers; normalize_whitespace collapses runs."""

import pytest

from axon_infralinter.terraform.lexer import normalize_whitespace, strip_comments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a = 1 # c\nb = 2 // d\n", "a = 1\nb = 2\n"),
        ("# only a comment\nx = 1\n", "\nx = 1\n"),
        ("/* one\ntwo */x = 1\n", "\nx = 1\n"),
        ("k = 3 /* inline */ + 4\n", "k = 3  + 4\n"),
        ("d = 10 / 2 # half\n", "d = 10 / 2\n"),
        ('x = "a" /* never closed\nmore\n', 'x = "a"\n\n'),
    ],
    ids=["hash-and-slashes", "whole-line", "block", "inline-block", "division", "open-block"],
)
def test_comments_are_removed(text: str, expected: str) -> None:
    assert strip_comments(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        'u = "http://example.com/#frag"\n',
        't = "${var.a == "#" ? 1 : 2}"\n',
        'e = "a\\"#b // c"\n',
        "p = <<EOT\n# not a comment\n// neither /* nor */\nEOT\n",
        "p = <<-EOT\n  # kept\n  EOT\n",
    ],
    ids=["url-fragment", "template", "escaped-quote", "heredoc", "indented-heredoc"],
)
def test_comment_markers_inside_strings_and_heredocs_survive(text: str) -> None:
    assert strip_comments(text) == text


def test_heredoc_ends_at_its_terminator() -> None:
    text = "p = <<EOT\n# body\nEOT\n# comment after\ny = 1 # tail\n"
    assert strip_comments(text) == "p = <<EOT\n# body\nEOT\n\ny = 1\n"


def test_unterminated_string_stops_at_line_end() -> None:
    assert strip_comments('bad = "open # x\ny = 2 # z\n') == 'bad = "open # x\ny = 2\n'


def test_line_count_is_preserved() -> None:
    text = '/* a\nb\nc */\nresource "x" "y" { # c\n  v = 1 // d\n}\n# end'
    stripped = strip_comments(text)
    assert stripped.count("\n") == text.count("\n")
    assert stripped.splitlines()[3] == 'resource "x" "y" {'


def test_strip_is_idempotent() -> None:
    text = 'a = "#" # c\n/* x */ b = 1\np = <<EOT\n# h\nEOT\n'
    once = strip_comments(text)
    assert strip_comments(once) == once


def test_normalize_whitespace() -> None:
    assert normalize_whitespace("a  =\t1\n\n b = 2 \n") == "a = 1 b = 2"
    assert normalize_whitespace(" \n\t ") == ""
