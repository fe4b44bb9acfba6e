"""Pipeline: step functions, the ASL state machines and the upload trigger."""

from __future__ import annotations

import re

from aws_cdk.assertions import Match

from cdk import constants as c
from tests.infrastructure.conftest import Synth

PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def test_one_function_per_step_folder_with_the_aws_adapters(dev: Synth) -> None:
    t = dev.template(dev.stage.pipeline)
    functions = t.find_resources("AWS::Lambda::Function")
    by_name = {f["Properties"]["FunctionName"]: f["Properties"] for f in functions.values()}
    expected = {f"sightline-dev-{s}" for s in c.PIPELINE_STEPS} | {"sightline-dev-s3-trigger"}
    assert set(by_name) == expected
    for props in by_name.values():
        assert props["Handler"] == "handler.lambda_handler"
        assert props["Runtime"] in ("python3.12", "python3.13")
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        env = props["Environment"]["Variables"]
        for var in (
            "SIGHTLINE_BLOBS",
            "SIGHTLINE_TABLES",
            "SIGHTLINE_ORCHESTRATOR",
            "SIGHTLINE_CODEC",
            "SIGHTLINE_BUS",
        ):
            assert env[var] == "aws"
        assert env["SIGHTLINE_TABLE_PREFIX"] == "sightline-dev-"
        assert env["SIGHTLINE_CODEC_ENDPOINT_NAME"] == "sightline-dev-codec"
        assert env["SIGHTLINE_EVENT_BUS_NAME"] == "sightline-dev"
        assert env["POWERTOOLS_SERVICE_NAME"] == "sightline"
        for var in ("SIGHTLINE_BUCKET", "SIGHTLINE_INGEST_STATE_MACHINE_ARN"):
            assert var in env
    # ffmpeg comes from the media layer.
    assert by_name["sightline-dev-chunk"]["Environment"]["Variables"]["SIGHTLINE_FFMPEG"] == (
        "/opt/bin/ffmpeg"
    )
    assert len(by_name["sightline-dev-chunk"]["Layers"]) == 3


def _state_machine(synth: Synth, name: str) -> dict:
    t = synth.template(synth.stage.pipeline)
    machines = t.find_resources(
        "AWS::StepFunctions::StateMachine", {"Properties": {"StateMachineName": name}}
    )
    assert len(machines) == 1
    return next(iter(machines.values()))["Properties"]


def test_state_machines_load_the_asl_files_with_every_substitution(dev: Synth) -> None:
    for name, asl in (
        ("sightline-dev-ingest-video", c.INGEST_ASL),
        ("sightline-dev-process-chunk", c.PROCESS_CHUNK_ASL),
    ):
        props = _state_machine(dev, name)
        placeholders = set(PLACEHOLDER.findall(asl.read_text()))
        assert placeholders, asl
        assert set(props["DefinitionSubstitutions"]) == placeholders
        assert props["TracingConfiguration"] == {"Enabled": True}
        assert props["LoggingConfiguration"]["Level"] == "ALL"
        assert props["StateMachineType"] == "STANDARD"


def test_ingest_may_start_and_watch_process_chunk_and_nothing_more(dev: Synth) -> None:
    t = dev.template(dev.stage.pipeline)
    t.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "states:StartExecution",
                                "Resource": {"Ref": Match.string_like_regexp("ProcessChunk")},
                            }
                        ),
                        Match.object_like(
                            {
                                "Action": [
                                    "events:DescribeRule",
                                    "events:PutRule",
                                    "events:PutTargets",
                                ]
                            }
                        ),
                    ]
                )
            }
        },
    )
    policies = t.find_resources("AWS::IAM::Policy")
    rule_statements = [
        s
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "events:PutRule" in s["Action"]
    ]
    assert len(rule_statements) == 1
    assert c.SFN_SYNC_RULE in str(rule_statements[0]["Resource"])


def test_uploads_under_source_start_the_ingest(dev: Synth) -> None:
    t = dev.template(dev.stage.pipeline)
    t.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": Match.any_value()},
                    "object": {"key": [{"wildcard": c.SOURCE_KEY_WILDCARD}]},
                },
            },
            "Targets": [
                Match.object_like(
                    {
                        "DeadLetterConfig": {"Arn": Match.any_value()},
                        "RetryPolicy": Match.any_value(),
                    }
                )
            ],
        },
    )
    t.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "sightline-dev-s3-trigger",
            "DeadLetterConfig": {"TargetArn": Match.any_value()},
        },
    )


def test_dead_letter_queues_are_kms_encrypted(dev: Synth) -> None:
    t = dev.template(dev.stage.pipeline)
    queues = t.find_resources("AWS::SQS::Queue")
    assert len(queues) == 2
    assert all("KmsMasterKeyId" in q["Properties"] for q in queues.values())


def test_bedrock_is_scoped_to_the_configured_models(dev: Synth) -> None:
    t = dev.template(dev.stage.pipeline)
    statements = [
        s
        for p in t.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "bedrock:InvokeModel"
    ]
    assert statements
    for s in statements:
        text = str(s["Resource"])
        assert "foundation-model/amazon.nova-lite-v1:0" in text
        assert "*" not in text
