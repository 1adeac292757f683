"""The STORAGES entries of a site that keeps its files in S3-compatible object storage."""


def object_storages(bucket, *, endpoint_url=None, region="us-east-1", presigned_seconds=300):
    """Public media under ``media/`` and private files under ``private/`` of one bucket.

    Objects get no ACL (the bucket's default: private). Private files have no public URL: a view
    that has checked access redirects to a presigned URL that lives ``presigned_seconds``. A
    stored name is never overwritten (Mica never rewrites a file in place), which lets workers
    cache copies by name.
    """
    options = {
        "bucket_name": bucket, "endpoint_url": endpoint_url, "region_name": region, "default_acl": None,
        "querystring_auth": True, "querystring_expire": presigned_seconds, "file_overwrite": False,
    }
    return {
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**options, "location": "media"}},
        "private": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**options, "location": "private"}},
    }
