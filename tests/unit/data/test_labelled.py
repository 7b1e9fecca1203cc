"""The cloud provider of a file's block types."""

from axon_infralinter.data.labelled import provider_of


def test_provider_of() -> None:
    assert provider_of(["aws_s3_bucket", "aws_kms_key", "google_storage_bucket"]) == "aws"
    assert provider_of(["azurerm_storage_account", "azuread_user"]) == "azure"
    assert provider_of(["google_x", "aws_y"]) == "aws"  # a tie goes to the first cloud
    assert provider_of(["kubernetes_namespace"]) == "other"
