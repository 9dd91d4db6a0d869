#!/bin/sh
# Runs once per start of the stack (the createbucket service): the bucket, and an S3 user for Hark
# that may use that bucket only, so the application never holds MinIO's root credentials.
set -eu
mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing local/hark
cat > /tmp/hark-bucket.json <<'JSON'
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::hark", "arn:aws:s3:::hark/*"]}
]}
JSON
mc admin policy create local hark-bucket /tmp/hark-bucket.json 2>/dev/null || true
mc admin user add local "$HARK_S3_ACCESS_KEY" "$HARK_S3_SECRET_KEY"
mc admin policy attach local hark-bucket --user "$HARK_S3_ACCESS_KEY" 2>/dev/null || true
