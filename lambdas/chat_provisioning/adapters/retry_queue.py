"""The sign-up trigger's retry queue in SQS (ports.RetryQueue)."""

import json

from .clients import Client, given


class SqsRetryQueue:
    def __init__(self, queue_url: str | None, client: Client):
        self.queue_url = queue_url
        self._client = client

    def send(self, job: dict[str, str]) -> None:
        self._client().send_message(QueueUrl=given(self.queue_url, "START_RETRY_QUEUE_URL"),
                                    MessageBody=json.dumps(job))
