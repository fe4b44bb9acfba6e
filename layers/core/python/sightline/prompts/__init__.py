"""Versioned model prompts, kept as text beside the code that sends them.

A prompt is ``<name>_<version>.md`` in this package (``describe_v1.md``); configuration
names the version, so changing a prompt is a new file and a setting, never an edit to an
old version (results stay attributable to the exact prompt that produced them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION = re.compile(r"^v[0-9]+$")


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.name}_{self.version}"

    def render(self, **values: object) -> str:
        """Substitute ``{{key}}`` placeholders (literal braces elsewhere are left alone)."""
        out = self.text
        for key, value in values.items():
            out = out.replace("{{" + key + "}}", str(value))
        return out


@cache
def load_prompt(name: str, version: str) -> Prompt:
    if not _NAME.match(name) or not _VERSION.match(version):
        raise ValueError(f"invalid prompt name or version: {name!r} {version!r}")
    res = resources.files(__package__).joinpath(f"{name}_{version}.md")
    if not res.is_file():
        raise FileNotFoundError(f"no prompt {name}_{version}.md in {__package__}")
    return Prompt(name=name, version=version, text=res.read_text(encoding="utf-8").strip())


def available() -> list[str]:
    return sorted(
        p.name.removesuffix(".md")
        for p in resources.files(__package__).iterdir()
        if p.name.endswith(".md")
    )
