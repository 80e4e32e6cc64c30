"""The configuration of an S3 client: `dagster_aws.s3.S3Resource`'s fields and client, without
importing dagster-aws when the code location loads.

Importing any part of dagster-aws runs its package's `__init__`, which imports every component
it ships and, through its Secrets Manager component, Dagster's test utilities: ~1.2 s of each
load of the code location (the run worker's, every step worker's, the code server's). This
class has the same fields, defaults and meaning as dagster-aws's, and builds its client with
dagster-aws's own `construct_s3_client` (imported when a client is first built), so the client
is the one `S3Resource` would give: its retry mode and budget, endpoint, region, credentials.
`finance_assets_tests/test_io/test_s3_resource.py` checks the fields stay the same as
dagster-aws's.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field


class S3Resource(dg.ConfigurableResource):
    """An S3 client's configuration (`dagster_aws.s3.S3Resource`'s): unset fields leave boto3's
    chain to decide (`AWS_ENDPOINT_URL`, `AWS_REGION`, a profile, an instance role)."""

    use_unsigned_session: bool = Field(
        default=False, description="Specifies whether to use an unsigned S3 session."
    )
    region_name: str | None = Field(
        default=None, description="Specifies a custom region for the S3 session."
    )
    endpoint_url: str | None = Field(
        default=None, description="Specifies a custom endpoint for the S3 session."
    )
    max_attempts: int = Field(
        default=5,
        description=(
            "This provides Boto3's retry handler with a value of maximum retry attempts, where "
            "the initial call counts toward the max_attempts value that you provide."
        ),
    )
    profile_name: str | None = Field(
        default=None, description="Specifies a profile to connect that session."
    )
    use_ssl: bool = Field(
        default=True, description="Whether or not to use SSL. By default, SSL is used."
    )
    verify: bool | None = Field(
        default=None,
        description="Whether or not to verify SSL certificates. By default they are verified.",
    )
    aws_access_key_id: str | None = Field(
        default=None, description="AWS access key ID to use when creating the boto3 session."
    )
    aws_secret_access_key: str | None = Field(
        default=None, description="AWS secret access key to use when creating the boto3 session."
    )
    aws_session_token: str | None = Field(
        default=None, description="AWS session token to use when creating the boto3 session."
    )

    def get_client(self) -> Any:
        """A boto3 S3 client, built as `dagster_aws.s3.S3Resource.get_client` builds it."""
        from dagster_aws.s3.utils import construct_s3_client

        return construct_s3_client(
            max_attempts=self.max_attempts,
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            use_unsigned_session=self.use_unsigned_session,
            profile_name=self.profile_name,
            use_ssl=self.use_ssl,
            verify=self.verify,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
        )
