"""Live stack: live_clip and its steps, the camera schedules' role and the API's grants on
schedules, each scoped to exactly what the live path needs."""

from __future__ import annotations

import json
import re
from typing import Any

from cdk import constants as c
from tests.infrastructure.conftest import Synth

PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
STATE_MACHINE = "AWS::StepFunctions::StateMachine"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _flat(value: Any) -> str:
    """A CloudFormation ARN as text: ``Fn::Join`` joined, ``Ref`` as ``<Name>``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(_flat(v) for v in value)
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(_flat(p) for p in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    return str(value)


def _snake(camel: str) -> str:
    """``LivePlan`` -> ``live_plan`` (the inverse of constants.function_substitution)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _resources(synth: Synth, stack: Any, kind: str) -> dict[str, dict[str, Any]]:
    return synth.template(stack).find_resources(kind)


def _live_clip(synth: Synth) -> tuple[str, dict[str, Any]]:
    machines = _resources(synth, synth.stage.live, STATE_MACHINE)
    (item,) = machines.items()
    return item


def _role_statements(synth: Synth, stack: Any, role_id: str) -> list[dict[str, Any]]:
    """Every inline statement of a role: its policies and the AWS::IAM::Policy attached."""
    template = synth.template(stack)
    role = template.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    out = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def _function_role(synth: Synth, stack: Any, function_name: str) -> tuple[str, dict[str, Any]]:
    for fn in _resources(synth, stack, "AWS::Lambda::Function").values():
        if fn["Properties"]["FunctionName"] == function_name:
            role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
            return role_id, fn["Properties"]
    raise AssertionError(f"no function {function_name}")


def _own(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Without the X-Ray and log-stream grants every function has."""
    return [
        s
        for s in statements
        if not all(a.startswith(("xray:", "logs:")) for a in _as_list(s["Action"]))
    ]


def test_live_clip_loads_the_asl_with_every_substitution_resolved(dev: Synth) -> None:
    # Given the dev stage
    _, machine = _live_clip(dev)
    props = machine["Properties"]
    # Then live_clip is a Standard, traced, fully logged state machine named as configured
    assert props["StateMachineName"] == "sightline-dev-live-clip"
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    # And every placeholder of the ASL file has a value, and no value is left unresolved
    placeholders = set(PLACEHOLDER.findall(c.LIVE_CLIP_ASL.read_text()))
    assert {"LivePlanFunctionArn", "ProcessChunkStateMachineArn"} <= placeholders
    assert set(props["DefinitionSubstitutions"]) == placeholders
    assert "${" not in str(props["DefinitionSubstitutions"])
    # And the nested state machine is the pipeline's process_chunk, by its deployed name
    pipeline = _resources(dev, dev.stage.pipeline, STATE_MACHINE)
    process_chunk = {
        m["Properties"]["StateMachineName"]
        for m in pipeline.values()
        if "process-chunk" in m["Properties"]["StateMachineName"]
    }
    (name,) = process_chunk
    nested = _flat(props["DefinitionSubstitutions"]["ProcessChunkStateMachineArn"])
    assert nested.endswith(f":stateMachine:{name}")


def test_each_lambda_of_live_clip_runs_its_own_handler_folder(dev: Synth) -> None:
    _, machine = _live_clip(dev)
    functions = _resources(dev, dev.stage.live, "AWS::Lambda::Function")
    subs = machine["Properties"]["DefinitionSubstitutions"]
    steps = {k.removesuffix("FunctionArn"): v for k, v in subs.items() if k.endswith("FunctionArn")}
    assert {_snake(s) for s in steps} == set(c.LIVE_STEPS)
    for camel, value in steps.items():
        step = _snake(camel)
        # The placeholder is the ARN of a function of this stack ...
        logical_id, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn"
        fn = functions[logical_id]["Properties"]
        assert fn["FunctionName"] == f"sightline-dev-{step.replace('_', '-')}"
        assert fn["Handler"] == c.LAMBDA_HANDLER
        # ... whose code asset is that step's folder, handler included.
        handler = c.FUNCTIONS_DIR / step / "handler.py"
        asset = dev.outdir / f"asset.{fn['Code']['S3Key'].removesuffix('.zip')}"
        assert (asset / "handler.py").read_text() == handler.read_text(), step
    # The fetch step joins clip pieces with ffmpeg from the media layer.
    _, fetch = _function_role(dev, dev.stage.live, "sightline-dev-live-fetch")
    assert len(fetch["Layers"]) == len(c.FUNCTION_LAYERS["live_fetch"])
    assert fetch["Environment"]["Variables"]["SIGHTLINE_FFMPEG"] == "/opt/bin/ffmpeg"


def test_live_clip_starts_and_watches_process_chunk_and_invokes_only_its_steps(
    dev: Synth,
) -> None:
    _, machine = _live_clip(dev)
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = _role_statements(dev, dev.stage.live, role_id)
    by_action = {tuple(sorted(_as_list(s["Action"]))): s["Resource"] for s in statements}
    invoked = by_action[("lambda:InvokeFunction",)]
    assert sorted(r["Fn::GetAtt"][0] for r in invoked) == sorted(
        v["Fn::GetAtt"][0]
        for k, v in machine["Properties"]["DefinitionSubstitutions"].items()
        if k.endswith("FunctionArn")
    )
    started = _flat(by_action[("states:StartExecution",)])
    assert started.endswith(":stateMachine:sightline-dev-process-chunk")
    watched = _flat(by_action[("states:DescribeExecution", "states:StopExecution")])
    assert watched.endswith(":execution:sightline-dev-process-chunk:*")
    rule = by_action[("events:DescribeRule", "events:PutRule", "events:PutTargets")]
    assert _flat(rule).endswith(f":rule/{c.SFN_SYNC_RULE}")


def test_scheduler_role_may_start_exactly_live_clip(dev: Synth) -> None:
    # Given the role the camera schedules run as
    roles = _resources(dev, dev.stage.live, "AWS::IAM::Role")
    (role_id,) = [
        k
        for k, r in roles.items()
        if r["Properties"].get("RoleName") == "sightline-dev-live-scheduler"
    ]
    role = roles[role_id]["Properties"]
    # Then only EventBridge Scheduler, for this account's camera schedules, may assume it
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert "schedule/sightline-cameras-dev/*" in str(trust["Condition"]["ArnLike"])
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    # And it may do one thing: start live_clip (this stack's state machine)
    assert "ManagedPolicyArns" not in role
    machine_id, _ = _live_clip(dev)
    (only,) = _role_statements(dev, dev.stage.live, role_id)
    assert only["Action"] == "states:StartExecution"
    assert only["Resource"] == {"Ref": machine_id}


def test_api_targets_the_deployed_live_clip_group_and_role(dev: Synth) -> None:
    if dev.stage.api is None:
        return
    _, api = _function_role(dev, dev.stage.api, "sightline-dev-api")
    env = api["Environment"]["Variables"]
    _, machine = _live_clip(dev)
    assert env["SIGHTLINE_SCHEDULER"] == "aws"
    assert _flat(env["SIGHTLINE_LIVE_CLIP_STATE_MACHINE_ARN"]).endswith(
        f":stateMachine:{machine['Properties']['StateMachineName']}"
    )
    (group,) = _resources(dev, dev.stage.live, "AWS::Scheduler::ScheduleGroup").values()
    assert env["SIGHTLINE_LIVE_SCHEDULER_GROUP"] == group["Properties"]["Name"]
    assert _flat(env["SIGHTLINE_LIVE_SCHEDULER_ROLE_ARN"]).endswith(
        ":role/sightline-dev-live-scheduler"
    )
    # The authorizer manages no schedules.
    _, authorizer = _function_role(dev, dev.stage.api, "sightline-dev-authorizer")
    assert "SIGHTLINE_SCHEDULER" not in authorizer["Environment"]["Variables"]


def test_api_manages_schedules_only_in_the_group_and_passes_only_the_scheduler_role(
    dev: Synth,
) -> None:
    if dev.stage.api is None:
        return
    role_id, _ = _function_role(dev, dev.stage.api, "sightline-dev-api")
    statements = _role_statements(dev, dev.stage.api, role_id)
    schedules = [
        s for s in statements if any(a.startswith("scheduler:") for a in _as_list(s["Action"]))
    ]
    (sched,) = schedules
    assert sorted(_as_list(sched["Action"])) == [
        "scheduler:CreateSchedule",
        "scheduler:DeleteSchedule",
        "scheduler:GetSchedule",
        "scheduler:UpdateSchedule",
    ]
    (resource,) = _as_list(sched["Resource"])
    assert _flat(resource).endswith(":schedule/sightline-cameras-dev/*")
    (pass_role,) = [
        s for s in statements if any(a.startswith("iam:") for a in _as_list(s["Action"]))
    ]
    assert pass_role["Action"] == "iam:PassRole"
    assert _flat(pass_role["Resource"]).endswith(":role/sightline-dev-live-scheduler")
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    # No other role of the stage touches schedules or passes roles.
    others = [
        s
        for stack in dev.stacks()
        for t in [dev.template(stack)]
        for k, p in t.find_resources("AWS::IAM::Policy").items()
        if {"Ref": role_id} not in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith(("scheduler:", "iam:")) for a in _as_list(s["Action"]))
    ]
    assert others == []


def test_stream_reads_go_to_plan_and_fetch_only_and_fetch_writes_only_camera_chunks(
    dev: Synth,
) -> None:
    live = dev.stage.live
    ((policy_id, policy),) = _resources(dev, live, "AWS::IAM::ManagedPolicy").items()
    (kvs,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(_as_list(kvs["Action"])) == [
        "kinesisvideo:GetClip",
        "kinesisvideo:GetDataEndpoint",
        "kinesisvideo:ListFragments",
    ]
    assert _flat(kvs["Resource"]).endswith(":stream/sightline-dev-*/*")
    roles = _resources(dev, live, "AWS::IAM::Role")
    with_kvs = {
        k
        for k, r in roles.items()
        if {"Ref": policy_id} in r["Properties"].get("ManagedPolicyArns", [])
    }
    plan_role, _ = _function_role(dev, live, "sightline-dev-live-plan")
    fetch_role, _ = _function_role(dev, live, "sightline-dev-live-fetch")
    commit_role, _ = _function_role(dev, live, "sightline-dev-live-commit")
    assert with_kvs == {plan_role, fetch_role}
    # No inline statement anywhere in the stage grants a Kinesis Video Streams call.
    inline = [
        a
        for stack in dev.stacks()
        for p in dev.template(stack).find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        for a in _as_list(s["Action"])
    ]
    assert not [a for a in inline if a.startswith("kinesisvideo:")]

    # The fetch step: camera chunk objects (read to skip a stored window, write), the bucket
    # listing (a 404 for a missing key), the cameras table read-only, the data key; no more.
    fetch = {
        tuple(sorted(_as_list(s["Action"]))): _flat(s["Resource"])
        for s in _own(_role_statements(dev, live, fetch_role))
    }
    objects = fetch.pop(("s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"))
    assert objects.endswith(f"/{c.LIVE_CHUNK_KEY_WILDCARD}")
    assert fetch.pop(("s3:ListBucket",))
    assert fetch.pop(("dynamodb:GetItem", "dynamodb:Query")).endswith(
        ":table/sightline-dev-cameras"
    )
    assert fetch.pop(("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"))
    assert fetch == {}

    # The plan step writes the cameras table only; the commit step the camera tables and
    # the bus; neither touches the bucket.
    for role_id, tables in ((plan_role, {"cameras"}), (commit_role, {"cameras", "camera_windows"})):
        statements = _own(_role_statements(dev, live, role_id))
        assert not [s for s in statements if "s3:" in str(s["Action"])]
        (ddb,) = [s for s in statements if "dynamodb:" in str(s["Action"])]
        written = {
            r.rsplit(":table/sightline-dev-", 1)[1] for r in _flat(ddb["Resource"]).split(",")
        }
        assert written == tables
    commit = _role_statements(dev, live, commit_role)
    (put,) = [s for s in commit if s["Action"] == "events:PutEvents"]
    assert _flat(put["Resource"]).endswith(":event-bus/sightline-dev")


def test_live_steps_and_live_clip_are_watched(dev: Synth) -> None:
    # Alarms address state machines by ARN and functions by name (naming.py).
    text = json.dumps(dev.template(dev.stage.observability).to_json())
    assert ":stateMachine:sightline-dev-live-clip" in text
    for step in c.LIVE_STEPS:
        assert f'"sightline-dev-{step.replace("_", "-")}"' in text
