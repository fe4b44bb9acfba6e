"""The Sightline CDK app: one Stage per environment of cdk.json's context.

``cdk synth -c env=dev`` (what ``make synth ENV=dev`` runs) builds only that stage; without
``env`` every environment is synthesized. cdk-nag's AwsSolutions pack validates every stage:
an unacknowledged finding fails the synth.
"""

from __future__ import annotations

import os
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from cdk import constants as c
from cdk.config import EnvironmentConfig, load_environments
from cdk.stage import SightlineStage


def environment_of(cfg: EnvironmentConfig) -> Environment | None:
    """The stage's account/region: config, else the CLI's defaults, else env-agnostic."""
    account = cfg.account or os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = cfg.region or os.environ.get("CDK_DEFAULT_REGION")
    if account is None and region is None:
        return None
    return Environment(account=account, region=region)


def build_app(app: App | None = None, *, nag: bool = True) -> App:
    """Add the selected (or every) environment's stage to ``app``; no AWS calls are made."""
    app = app or App()
    environments = load_environments(
        app.node.try_get_context(c.CONTEXT_ENVIRONMENTS),
        app.node.try_get_context(c.CONTEXT_DEFAULTS),
    )
    selected = app.node.try_get_context(c.CONTEXT_SELECTED_ENV)
    if selected and selected not in environments:
        raise ValueError(f"unknown environment {selected!r}; known: {sorted(environments)}")
    for name, cfg in environments.items():
        if selected and name != selected:
            continue
        SightlineStage(app, cfg.stage_id, cfg=cfg, env=environment_of(cfg))
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app


def main(argv: Any = None) -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
