"""Least-privilege policy statements with exact action lists (no ``s3:*``, no ``Get*``).

CDK's ``grant_*`` helpers add wildcard actions (``s3:GetObject*``, ``kms:GenerateDataKey*``);
these builders name the calls the adapters in ``sightline.adapters.aws`` actually make.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aws_cdk import aws_iam as iam

from cdk.naming import Names

# S3BlobStore: get_object / head_object (exists, size) / download_file.
S3_READ = ("s3:GetObject",)
# put_object / upload_file (multipart uploads need the abort call too).
S3_WRITE = ("s3:PutObject", "s3:AbortMultipartUpload")
S3_DELETE = ("s3:DeleteObject",)
# list_objects_v2; also makes head_object answer 404 (not 403) for a missing key.
S3_LIST = ("s3:ListBucket",)
# DynamoTable: get_item, query (reads); put_item, update_item, delete_item (writes).
DDB_READ = ("dynamodb:GetItem", "dynamodb:Query")
DDB_WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
# SSE-KMS objects and CMK-encrypted tables and queues.
KMS_DECRYPT = ("kms:Decrypt", "kms:DescribeKey")
KMS_ENCRYPT_DECRYPT = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")


@dataclass(frozen=True)
class DataAccess:
    """What one function may do with the data bucket and the tables."""

    read: bool = False
    write: bool = False
    delete: bool = False
    list: bool = False
    tables_read: Sequence[str] = ()
    tables_write: Sequence[str] = ()
    # Object keys the read/write/delete actions cover ("*": every key of the data bucket).
    objects: str = "*"

    @property
    def touches_bucket(self) -> bool:
        return self.read or self.write or self.delete or self.list


def data_statements(
    names: Names, access: DataAccess, *, data_key_arn: str
) -> list[iam.PolicyStatement]:
    """Bucket, table and key statements for ``access``; empty when it needs no data."""
    out: list[iam.PolicyStatement] = []
    object_actions = [
        *(S3_READ if access.read else ()),
        *(S3_WRITE if access.write else ()),
        *(S3_DELETE if access.delete else ()),
    ]
    if object_actions:
        # Keys start with the tenant ("<org>/<project>/videos/..."), so no fixed prefix
        # narrows the object ARN; a key pattern (``access.objects``) may.
        out.append(
            iam.PolicyStatement(
                actions=object_actions, resources=[names.data_objects_arn(access.objects)]
            )
        )
    if access.list:
        out.append(iam.PolicyStatement(actions=list(S3_LIST), resources=[names.data_bucket_arn]))
    read_only = sorted(set(access.tables_read) - set(access.tables_write))
    read_write = sorted(set(access.tables_write))
    if read_write:
        out.append(
            iam.PolicyStatement(
                actions=[*DDB_READ, *DDB_WRITE],
                resources=[names.table_arn(t) for t in read_write],
            )
        )
    if read_only:
        out.append(
            iam.PolicyStatement(
                actions=list(DDB_READ), resources=[names.table_arn(t) for t in read_only]
            )
        )
    reads = read_only + read_write
    if access.touches_bucket or reads:
        kms = KMS_ENCRYPT_DECRYPT if (access.write or access.tables_write) else KMS_DECRYPT
        out.append(iam.PolicyStatement(actions=list(kms), resources=[data_key_arn]))
    return out


def statement(actions: Iterable[str], resources: Iterable[str]) -> iam.PolicyStatement:
    """An Allow statement; refuses wildcard actions so none slips in by accident."""
    acts = list(actions)
    if any("*" in a for a in acts):
        raise ValueError(f"wildcard IAM action in {acts}")
    return iam.PolicyStatement(actions=acts, resources=list(resources))
