"""Typed configuration from cdk.json context."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cdk.config import load_environments
from tests.infrastructure.conftest import base_context


def test_cdk_json_defines_dev_staging_and_prod() -> None:
    ctx = base_context()
    envs = load_environments(ctx["sightline:environments"], ctx["sightline:defaults"])
    assert set(envs) == {"dev", "staging", "prod"}
    assert envs["dev"].retain_data is False
    assert envs["prod"].retain_data is True and envs["staging"].retain_data is True
    assert envs["prod"].api.waf_enabled is True
    # Environments override the defaults key by key.
    assert envs["dev"].codec.instance_type == "ml.g4dn.xlarge"
    assert envs["dev"].codec.image_repository == "pytorch-inference"
    assert envs["dev"].codec.min_capacity == 0


def test_unknown_keys_and_bad_values_fail_the_synth() -> None:
    with pytest.raises(ValidationError):
        load_environments({"dev": {"codec": {"instance_typo": "x"}}})
    with pytest.raises(ValidationError):
        load_environments({"dev": {"codec": {"min_capacity": 3, "max_capacity": 1}}})
    with pytest.raises(ValidationError):
        load_environments({"dev": {"codec": {"background_layer": "maybe"}}})
    envs = load_environments({"dev": {"codec": {"background_layer": "q=32"}}})
    assert envs["dev"].codec.background_layer == "q=32"
    with pytest.raises(ValueError, match="log_retention_days"):
        load_environments({"dev": {"log_retention_days": 8}})


def test_layers_built_for_another_python_are_refused(tmp_path) -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_lambda as lambda_

    from cdk.constructs.layers import SightlineLayers

    (tmp_path / "BUILD_INFO.json").write_text('{"python": "3.13", "architecture": "arm64"}')
    with pytest.raises(ValueError, match=r"python3\.13"):
        SightlineLayers(
            Stack(App(), "S"),
            "Layers",
            build_dir=tmp_path,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
        )
