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

    # The embedded engine may already run in this process (other tests): put its dispatch
    # back afterwards instead of removing the patches it relies on.
    previous = moto_sfn._dispatch
    with mock_aws(config=moto_sfn.mock_config()):
        moto_sfn.install(dispatch)
        try:
            yield boto3.client("stepfunctions", region_name="us-east-1"), calls
        finally:
            if previous is None:
                moto_sfn.uninstall()
            else:
                moto_sfn.install(previous)


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


def _wait_for_token_machine(timeout_s: int = 30) -> dict:
    return {
        "StartAt": "E",
        "States": {
            "E": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": _fn("token"),
                    "Payload": {"chunk.$": "$.chunk", "task_token.$": "$$.Task.Token"},
                },
                "TimeoutSeconds": timeout_s,
                "ResultPath": "$.encode",
                "Catch": [
                    {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "Late"}
                ],
                "End": True,
            },
            "Late": {"Type": "Fail", "Error": "CodecTimeout", "Cause": "no notice"},
        },
    }


def _start(client: Any, definition: dict, payload: dict, name: str) -> str:
    arn = client.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    return client.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]


def _finish(client: Any, execution: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        desc = client.describe_execution(executionArn=execution)
        if desc["status"] != "RUNNING":
            return desc
        time.sleep(0.05)
    raise AssertionError("execution did not finish")


def _token(calls: list[tuple[str, dict]]) -> str:
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.02)
    [(name, event)] = calls
    assert name == "token"
    return str(event["task_token"])


def test_wait_for_task_token_resumes_on_send_task_success(sfn: Any) -> None:
    client, calls = sfn
    # Given a lambda:invoke.waitForTaskToken task (the Encode state's pattern)
    ex = _start(client, _wait_for_token_machine(), {"chunk": 7}, "token-ok")
    # When the Lambda has returned and someone else sends the token back
    token = _token(calls)
    assert calls[0][1]["chunk"] == 7
    time.sleep(0.2)
    assert client.describe_execution(executionArn=ex)["status"] == "RUNNING"
    client.send_task_success(taskToken=token, output=json.dumps({"manifest_id": "m"}))
    # Then the state's result is the SendTaskSuccess output, at its ResultPath
    desc = _finish(client, ex)
    assert desc["status"] == "SUCCEEDED"
    assert json.loads(desc["output"]) == {"chunk": 7, "encode": {"manifest_id": "m"}}
    # and the token is spent
    with pytest.raises(client.exceptions.ClientError):
        client.send_task_success(taskToken=token, output="{}")


def test_send_task_failure_keeps_error_and_cause(sfn: Any) -> None:
    client, calls = sfn
    ex = _start(client, _wait_for_token_machine(), {"chunk": 1}, "token-fail")
    # moto's response handler drops "cause" unless moto_sfn passes it on (patch 5)
    client.send_task_failure(taskToken=_token(calls), error="CodecError", cause="CUDA OOM")
    desc = _finish(client, ex)
    assert (desc["status"], desc["error"], desc["cause"]) == ("FAILED", "CodecError", "CUDA OOM")


def test_unknown_token_is_invalid(sfn: Any) -> None:
    client, _ = sfn
    with pytest.raises(client.exceptions.InvalidToken):
        client.send_task_success(taskToken="no-such-token", output="{}")


def test_task_timeout_is_states_timeout(sfn: Any) -> None:
    client, calls = sfn
    # Nobody sends the token back: TimeoutSeconds ends the task with States.Timeout
    ex = _start(client, _wait_for_token_machine(timeout_s=1), {"chunk": 1}, "token-late")
    desc = _finish(client, ex)
    assert (desc["status"], desc["error"], desc["cause"]) == ("FAILED", "CodecTimeout", "no notice")
    assert len(calls) == 1


def test_version_guard() -> None:
    moto_sfn.check_moto_version()
    assert moto_sfn.SUPPORTED_MOTO == ("5.2.",)


def test_a_finishing_execution_does_not_hide_the_waiting_task(sfn: Any) -> None:
    client, calls = sfn
    ex = _start(client, _wait_for_token_machine(), {"chunk": 3}, "token-sibling")
    token = _token(calls)
    # Given a sibling execution that is tearing down (its worker has no environment yet
    # or any more), listed before the one that waits for the token (patch 6)
    from moto.stepfunctions.responses import get_backend

    backend = get_backend("123456789012", "us-east-1")
    machine = next(sm for sm in backend.state_machines if sm.name == "token-sibling")
    waiting = machine.executions[0]

    class Finishing:
        status = waiting.status
        exec_worker = type("Worker", (), {"env": None})()

    machine.executions.insert(0, Finishing())
    try:
        client.send_task_success(taskToken=token, output=json.dumps({"manifest_id": "m"}))
    finally:
        machine.executions.remove(machine.executions[0])
    assert _finish(client, ex)["status"] == "SUCCEEDED"
