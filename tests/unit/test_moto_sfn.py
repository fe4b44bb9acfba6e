"""The moto internals sightline_local.moto_sfn relies on. If a moto upgrade breaks one of
them, these fail first and say which."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sightline_local import moto_sfn

ROLE = "arn:aws:iam::123456789012:role/test"


def _fn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


@pytest.fixture
def sfn() -> Iterator[tuple[Any, list[tuple[str, dict]]]]:
    calls: list[tuple[str, dict]] = []

    def dispatch(function: str, payload: bytes) -> tuple[Any, dict[str, str] | None]:
        event = json.loads(payload)
        name = function.rsplit(":", 1)[-1]
        calls.append((name, event))
        if name == "flaky" and sum(1 for c in calls if c[0] == "flaky") < 2:
            return None, {"errorType": "TransientError", "errorMessage": "try again"}
        if name == "broken":
            return None, {"errorType": "InvalidVideo", "errorMessage": "not a video"}
        if name == "double":
            return {"v": event["chunk"] * 2}, None
        return {"echo": event}, None

    with mock_aws(config=moto_sfn.mock_config()):
        moto_sfn.install(dispatch)
        try:
            yield boto3.client("stepfunctions", region_name="us-east-1"), calls
        finally:
            moto_sfn.uninstall()


def _run(client: Any, definition: dict, payload: dict, name: str) -> dict:
    arn = client.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    ex = client.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        desc = client.describe_execution(executionArn=ex)
        if desc["status"] != "RUNNING":
            return desc
        time.sleep(0.05)
    raise AssertionError("execution did not finish")


def test_lambda_task_is_dispatched_in_process(sfn: Any) -> None:
    client, calls = sfn
    # Given a one-task machine whose Resource is a Lambda ARN
    definition = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": _fn("echo"), "End": True}},
    }
    # When it runs
    desc = _run(client, definition, {"a": 1}, "one")
    # Then our dispatch got the payload and its result is the output
    assert desc["status"] == "SUCCEEDED"
    assert calls == [("echo", {"a": 1})]
    assert json.loads(desc["output"]) == {"echo": {"a": 1}}


def test_retry_matches_error_type_and_catch_records_cause(sfn: Any) -> None:
    client, calls = sfn
    retry = [
        {
            "ErrorEquals": ["TransientError"],
            "IntervalSeconds": 1,
            "MaxAttempts": 2,
            "BackoffRate": 2.0,
            "JitterStrategy": "FULL",
        }
    ]
    definition = {
        "StartAt": "F",
        "States": {
            "F": {"Type": "Task", "Resource": _fn("flaky"), "Retry": retry, "Next": "B"},
            "B": {
                "Type": "Task",
                "Resource": _fn("broken"),
                "Retry": retry,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Done"}],
                "End": True,
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }
    desc = _run(client, definition, {"x": 1}, "retry")
    assert desc["status"] == "SUCCEEDED"
    names = [c[0] for c in calls]
    # flaky failed once with TransientError and was retried; broken was not retried
    assert names == ["flaky", "flaky", "broken"]
    error = json.loads(desc["output"])["error"]
    assert error["Error"] == "InvalidVideo"
    assert json.loads(error["Cause"])["errorMessage"] == "not a video"


def test_map_over_nested_sync_executions(sfn: Any) -> None:
    client, _ = sfn
    child = {
        "StartAt": "C",
        "States": {"C": {"Type": "Task", "Resource": _fn("double"), "End": True}},
    }
    child_arn = client.create_state_machine(
        name="child", definition=json.dumps(child), roleArn=ROLE
    )["stateMachineArn"]
    parent = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 4,
                "ItemSelector": {"chunk.$": "$$.Map.Item.Value"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "P",
                    "States": {
                        "P": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::states:startExecution.sync:2",
                            "Parameters": {
                                "StateMachineArn": child_arn,
                                "Input": {"chunk.$": "$.chunk"},
                            },
                            "OutputPath": "$.Output",
                            "End": True,
                        }
                    },
                },
                "ResultPath": "$.results",
                "End": True,
            }
        },
    }
    # Concurrent executions of one child machine used to fail inside moto (deepcopy of locks)
    desc = _run(client, parent, {"items": [1, 2, 3, 4, 5]}, "parent")
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    assert json.loads(desc["output"])["results"] == [
        {"v": 2},
        {"v": 4},
        {"v": 6},
        {"v": 8},
        {"v": 10},
    ]


def test_failed_child_execution_reaches_the_parents_catch(sfn: Any) -> None:
    client, _ = sfn
    child = {
        "StartAt": "C",
        "States": {"C": {"Type": "Task", "Resource": _fn("broken"), "End": True}},
    }
    child_arn = client.create_state_machine(
        name="child2", definition=json.dumps(child), roleArn=ROLE
    )["stateMachineArn"]
    parent = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "P",
                    "States": {
                        "P": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::states:startExecution.sync:2",
                            "Parameters": {"StateMachineArn": child_arn, "Input": {}},
                            "End": True,
                        }
                    },
                },
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}
                ],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    desc = _run(client, parent, {"items": [1]}, "parent2")
    error = json.loads(desc["output"])["error"]
    # The child's own error travels up as States.TaskFailed with the child's description
    assert error["Error"] == "States.TaskFailed"
    assert json.loads(error["Cause"])["Error"] == "InvalidVideo"


def test_version_guard() -> None:
    moto_sfn.check_moto_version()
    assert moto_sfn.SUPPORTED_MOTO == ("5.2.",)
