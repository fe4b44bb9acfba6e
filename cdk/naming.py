"""Physical names and ARNs of one environment's resources, derived from its config alone.

Stacks reference each other's resources by these names rather than by construct
attributes wherever an IAM statement needs them: a name built from pseudo parameters
renders identically in every stack (no cross-stack export), and the cdk-nag finding of an
unavoidable wildcard (an object ARN ``bucket/*``) is then a fixed string that a
per-resource acknowledgement can name exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws

from cdk import constants as c
from cdk.config import EnvironmentConfig


def _arn(service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
    return ":".join(
        [
            "arn",
            Aws.PARTITION,
            service,
            Aws.REGION if region else "",
            Aws.ACCOUNT_ID if account else "",
            resource,
        ]
    )


@dataclass(frozen=True)
class Names:
    cfg: EnvironmentConfig

    @property
    def prefix(self) -> str:
        return self.cfg.resource_prefix

    # ----- storage ------------------------------------------------------------------------
    @property
    def data_bucket(self) -> str:
        # Account and region make the global bucket name unique without a lookup.
        return f"{self.prefix}-data-{Aws.ACCOUNT_ID}-{Aws.REGION}"

    @property
    def access_log_bucket(self) -> str:
        return f"{self.prefix}-access-logs-{Aws.ACCOUNT_ID}-{Aws.REGION}"

    @property
    def data_bucket_arn(self) -> str:
        return _arn("s3", self.data_bucket, region=False, account=False)

    def data_objects_arn(self, prefix: str = "*") -> str:
        return f"{self.data_bucket_arn}/{prefix}"

    def table(self, name: str) -> str:
        return f"{self.cfg.tables_prefix}{name}"

    def table_arn(self, name: str) -> str:
        return _arn("dynamodb", f"table/{self.table(name)}")

    # ----- messaging ----------------------------------------------------------------------
    @property
    def event_bus(self) -> str:
        return self.prefix

    @property
    def event_bus_arn(self) -> str:
        return _arn("events", f"event-bus/{self.event_bus}")

    @property
    def sfn_sync_rule_arn(self) -> str:
        return _arn("events", f"rule/{c.SFN_SYNC_RULE}")

    # ----- compute ------------------------------------------------------------------------
    def function(self, name: str) -> str:
        return f"{self.prefix}-{name.replace('_', '-')}"

    def function_arn(self, name: str) -> str:
        return _arn("lambda", f"function:{self.function(name)}")

    def log_group(self, function_name: str) -> str:
        return f"/aws/lambda/{self.function(function_name)}"

    @property
    def ingest_state_machine(self) -> str:
        return f"{self.prefix}-ingest-video"

    @property
    def process_chunk_state_machine(self) -> str:
        return f"{self.prefix}-process-chunk"

    def state_machine_arn(self, name: str) -> str:
        return _arn("states", f"stateMachine:{name}")

    def executions_arn(self, state_machine: str) -> str:
        return _arn("states", f"execution:{state_machine}:*")

    @property
    def live_clip_state_machine(self) -> str:
        return self.cfg.live.live_clip_state_machine_name

    @property
    def live_clip_state_machine_arn(self) -> str:
        return self.state_machine_arn(self.live_clip_state_machine)

    def state_machine_log_group(self, name: str) -> str:
        return f"/aws/vendedlogs/states/{name}"

    # ----- models -------------------------------------------------------------------------
    @property
    def codec_endpoint(self) -> str:
        return f"{self.prefix}-codec"

    @property
    def codec_endpoint_arn(self) -> str:
        return _arn("sagemaker", f"endpoint/{self.codec_endpoint}")

    @property
    def codec_success_topic(self) -> str:
        return f"{self.prefix}-codec-success"

    @property
    def codec_error_topic(self) -> str:
        return f"{self.prefix}-codec-error"

    def topic_arn(self, name: str) -> str:
        return _arn("sns", name)

    @property
    def codec_image_uri(self) -> str:
        codec = self.cfg.codec
        return (
            f"{codec.image_account}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/"
            f"{codec.image_repository}:{codec.image_tag}"
        )

    def bedrock_model_arns(self, model_ids: list[str] | None = None) -> list[str]:
        """Foundation-model ARNs of ``model_ids`` (default: every configured model)."""
        return [
            _arn("bedrock", f"foundation-model/{model_id}", account=False)
            for model_id in (self.cfg.bedrock.model_ids if model_ids is None else model_ids)
        ]

    # ----- search -------------------------------------------------------------------------
    @property
    def collection(self) -> str:
        return f"{self.cfg.search.collection_name}-{self.cfg.name}"[:32]

    @property
    def search_domain(self) -> str:
        return f"{self.prefix}-search"[:28]

    @property
    def search_domain_arn(self) -> str:
        return _arn("es", f"domain/{self.search_domain}")

    # ----- live ---------------------------------------------------------------------------
    @property
    def kvs_streams_arn(self) -> str:
        return _arn("kinesisvideo", f"stream/{self.cfg.live.kvs_stream_name_prefix}*/*")

    @property
    def schedule_group(self) -> str:
        return f"{self.cfg.live.schedule_group_name}-{self.cfg.name}"

    @property
    def schedules_arn(self) -> str:
        return _arn("scheduler", f"schedule/{self.schedule_group}/*")

    @property
    def scheduler_role(self) -> str:
        return f"{self.prefix}-live-scheduler"

    @property
    def scheduler_role_arn(self) -> str:
        return _arn("iam", f"role/{self.scheduler_role}", region=False)

    def dead_letter_queue(self, purpose: str) -> str:
        return f"{self.prefix}-{purpose}-dlq"
