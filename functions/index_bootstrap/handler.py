"""Custom resource `index_bootstrap`: create the k-NN chunk index in OpenSearch.

CloudFormation calls this on Create/Update/Delete of ``Custom::SightlineSearchIndex``. Create
and Update PUT the index with its knn_vector mappings when it is absent and add any new
field mappings when it exists, so running it twice changes nothing; Delete keeps the index
(it holds derived data, rebuilt from the tables). Requests are SigV4-signed with the
function's role, for OpenSearch Serverless (``aoss``) or a managed domain (``es``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

# One mapping for the bootstrap, the OpenSearch adapter and its contract tests.
from sightline.search_mapping import ensure_index, index_body

logger = Logger(service="sightline")

# A new data-access policy takes a while to reach the collection: 403s are retried.
RETRY_SECONDS = 300.0
RETRY_STATUS = {403, 429, 500, 502, 503, 504}


def make_client(endpoint: str, service: str) -> Any:
    """An opensearch-py client signing with the function's credentials."""
    import boto3
    from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

    session = boto3.Session()
    host = urlparse(endpoint).hostname or endpoint
    auth = AWSV4SignerAuth(session.get_credentials(), session.region_name, service)
    return OpenSearch(
        hosts=[{"host": host, "port": 443}],
        http_auth=auth,
        use_ssl=True,
        verify_certs=True,
        connection_class=RequestsHttpConnection,
        timeout=30,
    )


def _status(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def with_retries(
    call: Callable[[], str],
    *,
    deadline_s: float = RETRY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    deadline = time.monotonic() + deadline_s
    delay = 2.0
    while True:
        try:
            return call()
        except Exception as exc:
            retriable = _status(exc) in RETRY_STATUS or isinstance(exc, ConnectionError)
            if not retriable or time.monotonic() + delay > deadline:
                raise
            logger.info("index not reachable yet (%s); retrying in %.0f s", exc, delay)
            sleep(delay)
            delay = min(delay * 2, 30.0)


def send_response(event: Mapping[str, Any], status: str, reason: str, data: dict[str, Any]) -> None:
    """Answer CloudFormation on the pre-signed ResponseURL."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:3000],
            "PhysicalResourceId": data.get("IndexName")
            or event.get("PhysicalResourceId")
            or event["LogicalResourceId"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        resp.read()


def handle(
    event: Mapping[str, Any], client_factory: Callable[[str, str], Any] = make_client
) -> dict[str, Any]:
    """Do the work of one request; returns the resource's attributes."""
    props = event["ResourceProperties"]
    name = str(props["IndexName"])
    if event["RequestType"] == "Delete":
        return {"IndexName": name, "Result": "retained"}
    client = client_factory(str(props["Endpoint"]), str(props.get("Service", "aoss")))
    body = index_body(int(props["TextDimensions"]), int(props["LatentDimensions"]))
    result = with_retries(lambda: ensure_index(client, name, body))
    return {"IndexName": name, "Result": result}


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    try:
        data = handle(event)
    except Exception as exc:
        logger.exception("index bootstrap failed")
        send_response(event, "FAILED", f"{type(exc).__name__}: {exc}", {})
        return
    logger.info("index bootstrap: %s", data)
    send_response(event, "SUCCESS", "", data)
