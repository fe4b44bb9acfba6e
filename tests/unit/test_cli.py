from __future__ import annotations

import json

import pytest

from sightline_local.cli import main


def test_cost_json_interface(capsys: pytest.CaptureFixture[str], home) -> None:
    assert main(["cost", "--hours", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hours"] == 3.0
    assert set(out["items"]) >= {
        "lambda",
        "stepfunctions",
        "sagemaker",
        "bedrock",
        "opensearch",
        "s3",
    }
    assert out["total_usd"] == pytest.approx(3 * out["per_video_hour_usd"], rel=1e-3)
    assert out["total_usd"] == pytest.approx(sum(out["items"].values()), rel=1e-3)


def test_token_prints_a_jwt_alone(capsys: pytest.CaptureFixture[str], home) -> None:
    assert main(["token", "--org", "acme", "--project", "plaza", "--role", "viewer"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.count(".") == 2 and "\n" not in token
