"""The audit trail in DynamoDB (ports.AuditStore): an item is put only if its key is new."""

from botocore.exceptions import ClientError

from ..domain.audit_trail import AuditRecords
from .clients import Client


class DynamoAuditStore(AuditRecords):
    def __init__(self, table_name: str, client: Client):
        self.table_name = table_name
        self._client = client

    def items(self, sub: str) -> list[dict[str, str]]:
        pages = self._client().get_paginator("query").paginate(
            TableName=self.table_name, KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "sub"}, ExpressionAttributeValues={":s": {"S": sub}})
        return [{k: next(iter(v.values())) for k, v in item.items()} for page in pages for item in page["Items"]]

    def insert(self, item: dict[str, str]) -> bool:
        try:
            self._client().put_item(
                TableName=self.table_name, Item={k: {"S": v} for k, v in item.items()},
                ConditionExpression="attribute_not_exists(sk)")
            return True
        except ClientError as e:
            if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
