"""Text-level edits of a Terraform block (terraform/edit.py): each result still parses with hcl2."""

from __future__ import annotations

from typing import Any

import hcl2
import pytest

from axon_infralinter.terraform import edit

EKS = """resource "aws_eks_cluster" "main" {
  name     = "main"
  role_arn = aws_iam_role.cluster.arn

  vpc_config {
    subnet_ids             = ["a", "b"]
    endpoint_public_access = true
  }
  tags = { note = "endpoint_public_access = true }" }
  policy = <<EOF
{ "vpc_config": { "endpoint_public_access = true" } }
EOF
}
"""


def _resource(text: str) -> dict[str, Any]:
    """The resource's attributes as hcl2 (the parser Checkov uses) reads them."""
    parsed = hcl2.loads(text)
    (resource,) = parsed["resource"]
    ((_, named),) = resource.items()
    ((_, body),) = named.items()
    return body


def _value(text: str, *path: str) -> Any:
    """The value at `path` as hcl2 reads it (blocks and attribute values come as lists)."""
    node: Any = _resource(text)
    for name in path:
        node = node[name][0]
    return node


def test_value_text_reads_nested_attribute() -> None:
    assert edit.value_text(EKS, ("vpc_config", "endpoint_public_access")) == "true"
    assert edit.value_text(EKS, ("role_arn",)) == "aws_iam_role.cluster.arn"
    assert edit.value_text(EKS, ("vpc_config",)) is None  # a block, not an attribute
    assert edit.value_text(EKS, ("missing",)) is None


def test_set_existing_nested_attribute_changes_only_its_value() -> None:
    out = edit.set_attribute(EKS, ("vpc_config", "endpoint_public_access"), "false")
    assert out == EKS.replace("endpoint_public_access = true\n", "endpoint_public_access = false\n")
    assert _value(out, "vpc_config", "endpoint_public_access") is False


def test_insert_missing_attribute_at_the_end_of_the_body() -> None:
    out = edit.set_attribute(EKS, ("version",), '"1.29"')
    assert out.endswith('EOF\n  version = "1.29"\n}\n')
    assert _value(out, "version") == "1.29"


def test_insert_into_existing_nested_block_uses_its_indentation() -> None:
    out = edit.set_attribute(EKS, ("vpc_config", "endpoint_private_access"), "true")
    assert "    endpoint_private_access = true\n  }\n" in out
    assert _value(out, "vpc_config", "endpoint_private_access") is True


def test_insert_missing_nested_blocks() -> None:
    out = edit.set_attribute(EKS, ("encryption_config", "resources"), '["secrets"]')
    assert '  encryption_config {\n    resources = ["secrets"]\n  }\n}\n' in out
    assert _value(out, "encryption_config", "resources") == ["secrets"]


def test_insert_block_with_body_and_empty() -> None:
    body = ["key_arn = var.kms_key_arn"]
    out = edit.insert_block(EKS, ("encryption_config", "provider"), body)
    assert _value(out, "encryption_config", "provider", "key_arn") == "${var.kms_key_arn}"
    empty = edit.insert_block(EKS, ("access_config",))
    assert "  access_config {}\n}\n" in empty
    assert _resource(empty)["access_config"] == [{}]
    with pytest.raises(edit.EditError):
        edit.insert_block(EKS, ("vpc_config",))


def test_insert_into_one_line_block_makes_it_multi_line() -> None:
    text = 'resource "aws_x" "y" {\n  cfg { a = 1 }\n}\n'
    out = edit.set_attribute(text, ("cfg", "b"), "2")
    assert out == 'resource "aws_x" "y" {\n  cfg {\n    a = 1\n    b = 2\n  }\n}\n'
    assert _value(out, "cfg") == {"a": [1], "b": [2]}
    empty = 'resource "aws_x" "y" {}\n'
    assert edit.set_attribute(empty, ("b",), "2") == 'resource "aws_x" "y" {\n  b = 2\n}\n'


def test_delete_removes_whole_lines() -> None:
    out = edit.delete(EKS, ("vpc_config", "endpoint_public_access"))
    assert "endpoint_public_access = true\n" not in out
    assert 'subnet_ids             = ["a", "b"]\n  }' in out
    gone = edit.delete(EKS, ("vpc_config",))
    assert "vpc_config {" not in gone and "subnet_ids" not in gone
    assert "vpc_config" not in _resource(gone)
    with pytest.raises(edit.EditError):
        edit.delete(EKS, ("nothing",))


def test_strings_and_heredocs_are_untouched() -> None:
    # The heredoc and the tag both spell `endpoint_public_access = true`; only the attribute moves.
    out = edit.set_attribute(EKS, ("vpc_config", "endpoint_public_access"), "false")
    assert '{ "vpc_config": { "endpoint_public_access = true" } }\nEOF\n' in out
    assert 'note = "endpoint_public_access = true }"' in out
    # A heredoc value is one attribute: deleting it removes the heredoc, nothing else.
    out = edit.delete(EKS, ("policy",))
    assert "EOF" not in out and out.endswith('true }" }\n}\n')
    assert edit.value_text(EKS, ("tags",)) == '{ note = "endpoint_public_access = true }" }'


def test_rename_and_swap() -> None:
    renamed = edit.rename(EKS, "other")
    assert renamed.startswith('resource "aws_eks_cluster" "other" {')
    swapped = edit.swap(EKS, ("name",), ("role_arn",))
    assert swapped.startswith(
        'resource "aws_eks_cluster" "main" {\n  role_arn = aws_iam_role.cluster.arn\n  name     = "main"\n'
    )
    assert _resource(swapped) == _resource(EKS)


def test_walk_and_dynamic_blocks() -> None:
    paths = [(p, st.kind) for p, st, _ in edit.walk(EKS)]
    assert paths == [
        (("name",), "attribute"),
        (("role_arn",), "attribute"),
        (("vpc_config",), "block"),
        (("vpc_config", "subnet_ids"), "attribute"),
        (("vpc_config", "endpoint_public_access"), "attribute"),
        (("tags",), "attribute"),
        (("policy",), "attribute"),
    ]
    dynamic = 'resource "a" "b" {\n  dynamic "vpc_config" {\n    content {}\n  }\n}\n'
    assert edit.has_dynamic(dynamic, ("vpc_config", "endpoint_public_access"))
    assert not edit.has_dynamic(EKS, ("vpc_config", "endpoint_public_access"))
    with pytest.raises(edit.EditError):
        edit.set_attribute(EKS, ("vpc_config",), "true")  # a block, not an attribute


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("true", True),
        ("false", False),
        ("3", 3),
        ("1.5", 1.5),
        ('"Disabled"', "Disabled"),
        ('"a\\"b"', 'a"b'),
        ('"${var.x}"', None),
        ("var.x", None),
        ('["secrets"]', None),
    ],
)
def test_parse_literal(expr: str, value: object) -> None:
    assert edit.parse_literal(expr) == value


def test_hcl_value() -> None:
    assert edit.hcl_value(True) == "true"
    assert edit.hcl_value("Policy-Min-TLS-1-2-2019-07") == '"Policy-Min-TLS-1-2-2019-07"'
    assert edit.hcl_value(["secrets"]) == '["secrets"]'
    assert edit.hcl_value("${x}") == '"$${x}"'
