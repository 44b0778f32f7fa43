"""The sweep's plans in S3 (ports.PlanStore)."""

import json

from .clients import Client, given


class S3PlanStore:
    def __init__(self, bucket: str | None, client: Client):
        self.bucket = bucket or ""
        self._client = client

    def put(self, key: str, document: object) -> None:
        self._client().put_object(Bucket=given(self.bucket, "PLANS_BUCKET"), Key=key, ContentType="application/json",
                                  Body=json.dumps(document).encode())
