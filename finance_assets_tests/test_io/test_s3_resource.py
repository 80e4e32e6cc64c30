"""The project's `S3Resource` is dagster-aws's, imported lazily: the same fields with the same
defaults, and the same boto3 client built from them."""

from __future__ import annotations

from dagster_aws.s3 import S3Resource as DagsterAwsS3Resource

from finance_assets.lib.io.objects.s3_resource import S3Resource


def _fields(cls: type) -> dict[str, tuple[object, object]]:
    return {name: (f.annotation, f.default) for name, f in cls.model_fields.items()}


def test_the_fields_and_defaults_are_dagster_aws_s3_resources():
    assert _fields(S3Resource) == _fields(DagsterAwsS3Resource)


def test_the_client_is_the_one_dagster_aws_builds():
    config = {
        "region_name": "eu-west-2",
        "endpoint_url": "http://127.0.0.1:9",
        "max_attempts": 3,
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "not-a-real-secret-key",
    }
    ours, theirs = S3Resource(**config).get_client(), DagsterAwsS3Resource(**config).get_client()
    assert ours.meta.endpoint_url == theirs.meta.endpoint_url == "http://127.0.0.1:9"
    assert ours.meta.region_name == theirs.meta.region_name == "eu-west-2"
    assert ours.meta.config.retries == theirs.meta.config.retries
    assert ours.meta.config.retries["mode"] == "standard"
    ours_creds = ours._request_signer._credentials
    theirs_creds = theirs._request_signer._credentials
    assert (ours_creds.access_key, ours_creds.secret_key) == (
        theirs_creds.access_key,
        theirs_creds.secret_key,
    )
