"""cdk-nag's AwsSolutions pack runs on every synth; no stage may have an unacknowledged
error or warning."""

from __future__ import annotations

import json

from tests.infrastructure.conftest import Synth


def _explain(synth: Synth) -> str:
    return json.dumps(
        [
            {"rule": v["ruleName"], "where": [r["constructPath"] for r in v["violatingConstructs"]]}
            for v in synth.violations()
        ],
        indent=1,
    )


def test_dev_stage_is_cdk_nag_clean(dev: Synth) -> None:
    # Given the dev stage synthesized with AwsSolutionsChecks
    # Then the synth succeeded and the validation report lists no violation
    assert dev.violations() == [], _explain(dev)
    assert dev.error is None, str(dev.error)


def test_prod_stage_is_cdk_nag_clean(prod: Synth) -> None:
    assert prod.violations() == [], _explain(prod)
    assert prod.error is None, str(prod.error)


def test_domain_variant_is_cdk_nag_clean(staging_domain: Synth) -> None:
    assert staging_domain.violations() == [], _explain(staging_domain)
    assert staging_domain.error is None, str(staging_domain.error)


def test_every_acknowledgement_gives_a_reason(dev: Synth) -> None:
    # Acknowledgements are construct metadata; each must carry a sentence, not a token.
    from aws_cdk import Validations

    reasons: list[str] = []
    for construct in dev.stage.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY and entry.data:
                reasons.extend(entry.data.values())
    assert reasons, "expected per-resource acknowledgements"
    assert all(len(r.split()) >= 6 for r in reasons), reasons
