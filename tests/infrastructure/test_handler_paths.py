"""Every function folder the CDK deploys has a handler that imports, and every Lambda an
ASL file names is one of them."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py"))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_handler_imports(name: str) -> None:
    module = importlib.import_module(f"functions.{name}.handler")
    assert callable(module.lambda_handler)


def test_every_lambda_in_the_asl_files_is_a_function_folder() -> None:
    names: set[str] = set()
    for asl in (ROOT / "state_machines").glob("*.asl.json"):
        json.loads(asl.read_text())
        names |= set(re.findall(r"\$\{(\w+)FunctionArn\}", asl.read_text()))
    assert names, "no function substitutions found"
    # ``LivePlan`` names functions/live_plan (cdk.constants.function_substitution).
    folders = {re.sub(r"(?<!^)(?=[A-Z])", "_", n).lower() for n in names}
    assert folders <= set(FUNCTIONS)
