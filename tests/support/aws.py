"""AWS fixtures shared by the moto-backed tests."""

from __future__ import annotations

from typing import Any


def create_tables(ddb: Any, *names: str) -> None:
    """Create DynamoDB tables with the project's key schema (string ``pk`` hash key and
    ``sk`` range key, on-demand billing, as the storage stack deploys them); ``ddb`` is a
    boto3 DynamoDB resource or client (under moto)."""
    for name in names:
        ddb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
