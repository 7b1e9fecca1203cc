# A Cloud Storage bucket readable by anyone (allUsers), without uniform bucket-level access.
resource "google_storage_bucket" "public" {
  name                        = "example-public-gcs-bucket"
  location                    = "EU"
  uniform_bucket_level_access = false
}

resource "google_storage_bucket_iam_member" "public_read" {
  bucket = google_storage_bucket.public.name
  role   = "roles/storage.objectViewer"
  member = "allUsers"
}
