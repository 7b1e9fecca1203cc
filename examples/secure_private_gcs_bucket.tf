# A private Cloud Storage bucket: uniform access, public access prevented, versioned, logged,
# encrypted with a customer-managed key.
resource "google_storage_bucket" "private" {
  name                        = "example-private-gcs-bucket"
  location                    = "EU"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  logging {
    log_bucket = "example-gcs-access-logs"
  }

  encryption {
    default_kms_key_name = "projects/example/locations/europe/keyRings/storage/cryptoKeys/gcs"
  }
}

resource "google_storage_bucket_iam_member" "reader" {
  bucket = google_storage_bucket.private.name
  role   = "roles/storage.objectViewer"
  member = "group:data-readers@example.com"
}
