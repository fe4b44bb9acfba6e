"""The only module that touches moto internals.

moto 5.2's Step Functions interpreter (``execute_state_machine``) runs our ASL files as
written. These patches make it run them in-process:

1. It invokes Lambda tasks through moto's Lambda backend, which would need Docker; we
   replace the one function it calls, ``lambda_eval_utils._invoke_lambda_function``, so
   each Lambda task calls our handler function in-process.
2. Its ``states:startExecution(.sync:2)`` integration passes the ASL's parameter names
   (``StateMachineArn``, ``Input``, ``Name``) to botocore unchanged, and botocore's
   serializer knows only ``stateMachineArn``, ``input``, ``name``; we rename them first,
   as the real service does, and name the child execution when the ASL gives no name
   (AWS uses a UUID; moto would use "None" for every child). Its responses likewise
   keep botocore's names (``executionArn``, ``output``) where the ASL and the
   interpreter's own ``.sync`` poller expect the service's (``ExecutionArn``, ``Output``).
3. ``start_execution`` deep-copies the state machine, including the executions already
   running on it (threads, locks), which fails for the second concurrent execution of
   one state machine (a Map over chunks); the copy now leaves the execution list out.
4. A Map iteration that ends in a ``States.*`` error (``States.TaskFailed`` from a failed
   child execution) is re-raised by moto as a *custom* error name, which refuses the
   ``States.`` prefix and turns the real cause into a ``States.Runtime`` error; the
   iteration worker now builds the proper States error name, so Catch sees the cause.
5. Its ``SendTaskFailure`` response handler reads ``taskToken`` and ``error`` but drops
   ``cause`` (the interpreter's backend accepts it), so a ``.waitForTaskToken`` task failed
   by the codec callback would lose its reason; the handler now passes ``cause`` on.
   (``.waitForTaskToken`` itself and ``SendTaskSuccess`` work unpatched.)
6. ``SendTaskSuccess``/``SendTaskFailure``/``SendTaskHeartbeat`` look for the waiting task
   in every execution's ``exec_worker.env``; an execution that is finishing on another
   thread (a sibling chunk of the same Map) can have no worker environment for a moment,
   and the lookup then dies with ``AttributeError`` instead of finding the task elsewhere.
   The executions it looks through are now only those with an environment.

``tests/unit/test_moto_sfn.py`` checks every assumption made here and fails loudly if a
moto upgrade breaks one.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

import moto
from moto.core.responses import EmptyResult
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    iteration_worker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sfn,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

SUPPORTED_MOTO = ("5.2.",)
# (function name or ARN, payload bytes) -> (result, error); error = {"errorType", "errorMessage"}
Dispatch = Callable[[str, bytes], tuple[Any, dict[str, str] | None]]

_original = lambda_eval_utils._invoke_lambda_function
_original_sfn_normalise = state_task_service_sfn.StateTaskServiceSfn._normalise_parameters
_original_sfn_response = state_task_service_sfn.StateTaskServiceSfn._normalise_response
_original_send_task_failure = StepFunctionResponse.send_task_failure
_original_get_executions = StepFunctionsParserBackend._get_executions
_dispatch: Dispatch | None = None
_SFN_PARAMETER_NAMES = {
    "StateMachineArn": "stateMachineArn",
    "Input": "input",
    "Name": "name",
    "TraceHeader": "traceHeader",
}


def check_moto_version() -> None:
    if not moto.__version__.startswith(SUPPORTED_MOTO):
        raise RuntimeError(
            f"sightline_local.moto_sfn supports moto {SUPPORTED_MOTO}, found {moto.__version__}; "
            "re-check the patched internals before upgrading"
        )


def _invoke_in_process(parameters: dict[str, Any], region: str, state_credentials: Any) -> dict:
    if _dispatch is None:
        return _original(parameters=parameters, region=region, state_credentials=state_credentials)
    payload = parameters.get("Payload") or b"{}"
    result, error = _dispatch(str(parameters["FunctionName"]), payload)
    response: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    if error is not None:
        # The same shape as Lambda's unhandled-error response: the interpreter takes
        # ``errorType`` as the error name that Retry and Catch match.
        response["FunctionError"] = "Unhandled"
        response["Payload"] = error
    else:
        response["Payload"] = json.loads(json.dumps(result))
    return response


def _sfn_normalise(
    self: Any,
    parameters: dict,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    _original_sfn_normalise(
        self,
        parameters,
        boto_service_name=boto_service_name,
        service_action_name=service_action_name,
    )
    for asl_name, boto_name in _SFN_PARAMETER_NAMES.items():
        if asl_name in parameters:
            parameters[boto_name] = parameters.pop(asl_name)
    if "stateMachineArn" in parameters and not parameters.get("name"):
        parameters["name"] = str(uuid.uuid4())


def _sfn_response(
    self: Any,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    _original_sfn_response(
        self, response, boto_service_name=boto_service_name, service_action_name=service_action_name
    )
    if isinstance(response, dict):
        for key in [k for k in response if k[:1].islower()]:
            response[key[0].upper() + key[1:]] = response.pop(key)


def _error_name(error_name: str) -> Any:
    if str(error_name).startswith("States."):
        return StatesErrorName.from_name(str(error_name))
    return CustomErrorName(error_name=error_name)


def _state_machine_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
    clone = self.__class__.__new__(self.__class__)
    memo[id(self)] = clone
    for key, value in self.__dict__.items():
        setattr(clone, key, [] if key == "executions" else copy.deepcopy(value, memo))
    return clone


def _send_task_failure(self: Any) -> Any:
    self.stepfunction_backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


def _executions_with_env(self: Any, execution_status: Any = None) -> list[Any]:
    return [
        e
        for e in _original_get_executions(self, execution_status)
        if getattr(getattr(e, "exec_worker", None), "env", None) is not None
    ]


def install(dispatch: Dispatch) -> None:
    """Route every Lambda task of the interpreter to ``dispatch``; fix nested executions."""
    global _dispatch
    check_moto_version()
    _dispatch = dispatch
    lambda_eval_utils._invoke_lambda_function = _invoke_in_process
    state_task_service_sfn.StateTaskServiceSfn._normalise_parameters = _sfn_normalise
    state_task_service_sfn.StateTaskServiceSfn._normalise_response = _sfn_response
    StateMachine.__deepcopy__ = _state_machine_deepcopy  # type: ignore[attr-defined]
    iteration_worker.CustomErrorName = _error_name
    StepFunctionResponse.send_task_failure = _send_task_failure  # type: ignore[method-assign]
    StepFunctionsParserBackend._get_executions = _executions_with_env  # type: ignore[method-assign]


def uninstall() -> None:
    global _dispatch
    _dispatch = None
    lambda_eval_utils._invoke_lambda_function = _original
    state_task_service_sfn.StateTaskServiceSfn._normalise_parameters = _original_sfn_normalise
    state_task_service_sfn.StateTaskServiceSfn._normalise_response = _original_sfn_response
    iteration_worker.CustomErrorName = CustomErrorName
    StepFunctionResponse.send_task_failure = _original_send_task_failure  # type: ignore[method-assign]
    StepFunctionsParserBackend._get_executions = _original_get_executions  # type: ignore[method-assign]
    if "__deepcopy__" in StateMachine.__dict__:
        del StateMachine.__deepcopy__


def mock_config() -> dict[str, Any]:
    """moto configuration that turns on the ASL interpreter."""
    return {"stepfunctions": {"execute_state_machine": True}}
