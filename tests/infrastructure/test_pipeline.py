"""Pipeline: step functions, the ASL state machines and the upload trigger."""

from __future__ import annotations

import json
import re

from aws_cdk.assertions import Match

from cdk import constants as c
from tests.infrastructure.conftest import Synth

PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def test_one_function_per_step_folder_with_the_aws_adapters(dev: Synth) -> None:
    t = dev.template(dev.stage.pipeline)
    functions = t.find_resources("AWS::Lambda::Function")
    by_name = {f["Properties"]["FunctionName"]: f["Properties"] for f in functions.values()}
    expected = {f"sightline-dev-{s}" for s in c.PIPELINE_STEPS} | {
        "sightline-dev-s3-trigger",
        "sightline-dev-codec-callback",
    }
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
        # Bedrock serves descriptions and embeddings; its dimension is the index's
        assert env["SIGHTLINE_DESCRIBER"] == env["SIGHTLINE_EMBEDDER"] == "bedrock"
        assert env["SIGHTLINE_BEDROCK_DESCRIBE_MODEL_ID"] == "amazon.nova-lite-v1:0"
        assert env["SIGHTLINE_BEDROCK_EMBED_MODEL_ID"] == "amazon.titan-embed-text-v2:0"
        assert env["SIGHTLINE_BEDROCK_EMBED_DIMENSIONS"] == "512"
        assert env["SIGHTLINE_TENANT_ENCODE_LIMIT"] == env["SIGHTLINE_TENANT_DESCRIBE_LIMIT"]
    # OpenSearch only where a function has the search layer and its grant
    with_index = {
        n for n, p in by_name.items() if "SIGHTLINE_INDEX" in p["Environment"]["Variables"]
    }
    assert with_index == {"sightline-dev-index", "sightline-dev-fail"}
    for name in with_index:
        env = by_name[name]["Environment"]["Variables"]
        assert env["SIGHTLINE_INDEX"] == "opensearch" and env["SIGHTLINE_SEARCH_ENDPOINT"]
        assert env["SIGHTLINE_SEARCH_TEXT_DIMENSIONS"] == "512"
    # The encode Lambda queues and returns: no waiting for the codec
    assert by_name["sightline-dev-encode"]["Timeout"] <= 60
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
    assert len(queues) == 3  # upload trigger, its rule, the codec callback
    assert all("KmsMasterKeyId" in q["Properties"] for q in queues.values())


def test_bedrock_is_scoped_to_the_model_each_step_calls(dev: Synth) -> None:
    t = dev.template(dev.stage.pipeline)
    models: dict[str, str] = {}
    for policy in t.find_resources("AWS::IAM::Policy").values():
        for s in policy["Properties"]["PolicyDocument"]["Statement"]:
            if s["Action"] == "bedrock:InvokeModel":
                role = str(policy["Properties"]["Roles"])
                models[role] = str(s["Resource"])
    assert len(models) == 2
    texts = sorted(models.values())
    assert all("*" not in text for text in texts)
    # describe calls the describe model only, index the embedding model only
    assert sum("nova-lite" in t and "titan" not in t for t in texts) == 1
    assert sum("titan-embed-text-v2" in t and "nova" not in t for t in texts) == 1
    assert any("Describe" in r for r in models) and any("Index" in r for r in models)


def _functions(synth: Synth) -> dict[str, dict]:
    t = synth.template(synth.stage.pipeline)
    return {
        f["Properties"]["FunctionName"]: f
        for f in t.find_resources("AWS::Lambda::Function").values()
    }


def test_encode_waits_for_its_task_token_with_a_timeout_and_retries(dev: Synth) -> None:
    # The deployed definition is this file with its substitutions (test above)
    assert (
        "EncodeFunctionArn"
        in _state_machine(dev, "sightline-dev-process-chunk")["DefinitionSubstitutions"]
    )
    asl = json.loads(c.PROCESS_CHUNK_ASL.read_text())
    encode = asl["States"]["Encode"]
    assert encode["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert encode["Parameters"]["FunctionName"] == "${EncodeFunctionArn}"
    assert 0 < encode["TimeoutSeconds"] <= 3600
    # A lost notice ends as a failed chunk with a reason, not a hang
    [catch] = encode["Catch"]
    assert catch["ErrorEquals"] == ["States.Timeout"]
    assert asl["States"][catch["Next"]]["Type"] == "Fail"
    # Throttling (TransientError) and the tenant's limit retry with backoff and jitter
    retried = {e: r for r in encode["Retry"] for e in r["ErrorEquals"]}
    assert {"TransientError", "TenantThrottled", "Lambda.TooManyRequestsException"} <= set(retried)
    assert all(r["JitterStrategy"] == "FULL" and r["BackoffRate"] > 1 for r in retried.values())
    describe = asl["States"]["Analyze"]["Branches"][0]["States"]["Describe"]
    assert {"TransientError", "TenantThrottled"} <= {
        e for r in describe["Retry"] for e in r["ErrorEquals"]
    }


def test_codec_notices_reach_the_callback_which_may_complete_encode_tasks(dev: Synth) -> None:
    t = dev.template(dev.stage.pipeline)
    subs = t.find_resources("AWS::SNS::Subscription", {"Properties": {"Protocol": "lambda"}})
    topics = sorted(str(s["Properties"]["TopicArn"]) for s in subs.values())
    assert len(topics) == 2
    assert "sightline-dev-codec-error" in topics[0] and "sightline-dev-codec-success" in topics[1]
    t.has_resource_properties(
        "AWS::Lambda::Permission",
        {"Principal": "sns.amazonaws.com", "Action": "lambda:InvokeFunction"},
    )
    callback = _functions(dev)["sightline-dev-codec-callback"]["Properties"]
    assert callback["DeadLetterConfig"]["TargetArn"]
    t.has_resource_properties("AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 2})
    # SendTaskSuccess/Failure on process_chunk only, for the encode Lambda and the callback
    grants = [
        s
        for p in t.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == ["states:SendTaskFailure", "states:SendTaskSuccess"]
    ]
    assert len(grants) == 2
    assert all("stateMachine:sightline-dev-process-chunk" in str(g["Resource"]) for g in grants)


def test_worker_tables_exist_with_ttl_and_only_workers_write_them(dev: Synth) -> None:
    storage = dev.template(dev.stage.storage)
    for name in c.WORKER_TABLES:
        storage.has_resource_properties(
            "AWS::DynamoDB::Table", {"TableName": f"sightline-dev-{name}"}
        )
    for name in ("codec_jobs", "tenant_limits"):
        storage.has_resource_properties(
            "AWS::DynamoDB::Table",
            {
                "TableName": f"sightline-dev-{name}",
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            },
        )
    # The API never touches the workers' tables
    api = dev.template(dev.stage.api) if dev.stage.api else None
    if api is not None:
        text = json.dumps(api.to_json())
        for name in c.WORKER_TABLES:
            assert f"table/sightline-dev-{name}" not in text
