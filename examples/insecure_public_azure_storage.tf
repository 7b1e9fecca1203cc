# A storage account that serves blobs publicly, over plain HTTP, with TLS 1.0.
resource "azurerm_resource_group" "example" {
  name     = "example-rg"
  location = "westeurope"
}

resource "azurerm_storage_account" "public" {
  name                            = "examplepublicsa"
  resource_group_name             = azurerm_resource_group.example.name
  location                        = azurerm_resource_group.example.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  https_traffic_only_enabled      = false
  min_tls_version                 = "TLS1_0"
  allow_nested_items_to_be_public = true
  public_network_access_enabled   = true
}

resource "azurerm_storage_container" "public" {
  name                  = "uploads"
  storage_account_name  = azurerm_storage_account.public.name
  container_access_type = "blob"
}
