"""Synthesize each environment once per session (jsii start-up and synth dominate the cost).

The built layers (``make layers``) are large and need a package index, so the tests point
the app at small stand-in layer folders; everything else is the real app from cdk.json.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk", reason="the cdk extra is not installed")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from cdk import constants as c
from cdk.app import build_app
from cdk.stage import SightlineStage

CDK_JSON = c.REPO_ROOT / "cdk.json"
# Placeholder account/region: the stacks are environment-agnostic otherwise.
ACCOUNT, REGION = "123456789012", "eu-west-1"


def base_context() -> dict[str, Any]:
    return json.loads(CDK_JSON.read_text())["context"]


def stub_layers(root: Path) -> Path:
    for name in c.BUILT_LAYERS:
        (root / name / "python").mkdir(parents=True, exist_ok=True)
        (root / name / "python" / "STUB.txt").write_text(f"stand-in for the {name} layer\n")
    (root / c.LAYER_MEDIA / "bin").mkdir(exist_ok=True)
    (root / c.LAYER_MEDIA / "bin" / "ffmpeg").write_text("#!/bin/sh\n")
    return root


@dataclass
class Synth:
    """One synthesized stage: its stacks' templates and the cdk-nag report."""

    stage: SightlineStage
    outdir: Path
    error: Exception | None
    _templates: dict[str, Template] = field(default_factory=dict)

    def template(self, stack: Stack) -> Template:
        # Read from the assembly on disk: Template.from_stack would synthesize again.
        if stack.stack_name not in self._templates:
            path = Path(self.stage.outdir) / stack.template_file
            self._templates[stack.stack_name] = Template.from_json(json.loads(path.read_text()))
        return self._templates[stack.stack_name]

    def templates(self) -> list[Template]:
        return [self.template(s) for s in self.stacks()]

    def stacks(self) -> list[Stack]:
        return [s for s in self.stage.node.children if isinstance(s, Stack)]

    def violations(self) -> list[dict[str, Any]]:
        report = self.outdir / "validation-report.json"
        if not report.is_file():
            return []
        data = json.loads(report.read_text())
        return [v for p in data.get("pluginReports", []) for v in p.get("violations", [])]


def synthesize(tmp: Path, env: str, overrides: dict[str, Any] | None = None) -> Synth:
    ctx = base_context()
    ctx[c.CONTEXT_SELECTED_ENV] = env
    env_cfg = ctx[c.CONTEXT_ENVIRONMENTS][env]
    env_cfg.update({"account": ACCOUNT, "region": REGION})
    env_cfg["pipeline"] = {
        **env_cfg.get("pipeline", {}),
        "layer_build_dir": str(stub_layers(tmp / "layers")),
        "model_build_dir": str(tmp / "model"),
    }
    for key, value in (overrides or {}).items():
        env_cfg[key] = {**env_cfg.get(key, {}), **value} if isinstance(value, dict) else value
    outdir = tmp / "cdk.out"
    app = build_app(App(context=ctx, outdir=str(outdir)))
    stage = next(s for s in app.node.children if isinstance(s, SightlineStage))
    error: Exception | None = None
    try:
        app.synth()
    except Exception as exc:  # the validation report says why; tests assert on it
        error = exc
    return Synth(stage=stage, outdir=outdir, error=error)


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("dev"), "dev")


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("prod"), "prod")


@pytest.fixture(scope="session")
def staging_domain(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """staging with a managed OpenSearch domain and without the API."""
    return synthesize(
        tmp_path_factory.mktemp("staging"),
        "staging",
        {"search": {"kind": "domain"}, "api": {"enabled": False}},
    )
