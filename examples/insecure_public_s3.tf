# An S3 bucket anyone on the internet can read and list, unencrypted and unlogged.
resource "aws_s3_bucket" "website_uploads" {
  bucket = "example-website-uploads"
}

resource "aws_s3_bucket_public_access_block" "website_uploads" {
  bucket                  = aws_s3_bucket.website_uploads.id
  block_public_acls       = false
  block_public_policy     = false
  ignore_public_acls      = false
  restrict_public_buckets = false
}

resource "aws_s3_bucket_acl" "website_uploads" {
  bucket = aws_s3_bucket.website_uploads.id
  acl    = "public-read-write"
}
