"""Codebook registry: ``codebook_id`` -> (model_id, weights, config) for the known weights.

A token blob names its ``codebook_id`` in its header; decoding must use exactly those
weights, so every weights file is registered under the id recorded in its JSON config
(``<stem>.json`` beside ``<stem>.pt``, written by ``train.py``). The id embeds a hash of the
codebook tensor, and loading checks that the weights still hash to it.

Search roots, in order: the explicit ``roots``; else ``$SIGHTLINE_CODEC_WEIGHTS`` (a folder,
or one ``.pt`` file) followed by the committed ``weights/`` folder of this package.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sagemaker_models.codec.model import Codec

log = logging.getLogger(__name__)

PACKAGE_WEIGHTS = Path(__file__).resolve().parent / "weights"
ENV_WEIGHTS = "SIGHTLINE_CODEC_WEIGHTS"


class UnknownCodebookError(LookupError):
    """No registered weights carry the requested codebook_id."""


@dataclass(frozen=True)
class CodebookEntry:
    """One registered set of codec weights."""

    codebook_id: str
    model_id: str
    weights: Path
    config_path: Path
    config: dict[str, Any]

    @property
    def created(self) -> str:
        """ISO timestamp of training (empty if unknown)."""
        return str(self.config.get("created", ""))


def default_roots() -> list[Path]:
    """``$SIGHTLINE_CODEC_WEIGHTS`` (if set) then the package's committed weights."""
    roots = []
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        roots.append(Path(env))
    roots.append(PACKAGE_WEIGHTS)
    return roots


class CodebookRegistry:
    """Finds weights by codebook_id and loads (and caches) ``Codec`` instances."""

    def __init__(self, roots: Iterable[str | Path] | None = None) -> None:
        self.roots = [Path(r) for r in roots] if roots is not None else default_roots()
        self._entries: dict[str, CodebookEntry] = {}
        self._order: list[str] = []
        self._cache: dict[tuple[str, str], Codec] = {}
        self._lock = threading.Lock()
        for root in self.roots:
            for cfg_path in self._configs(root):
                self._add(cfg_path)

    @staticmethod
    def _configs(root: Path) -> list[Path]:
        if root.is_file():
            return [root.with_suffix(".json")] if root.with_suffix(".json").exists() else []
        if not root.is_dir():
            return []
        # Also one level down: SageMaker unpacks model.tar.gz as-is into model_dir.
        return sorted([*root.glob("*.json"), *root.glob("*/*.json")])

    def _add(self, cfg_path: Path) -> None:
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, json.JSONDecodeError):
            return
        if not isinstance(cfg, dict) or "codebook_id" not in cfg or "model_id" not in cfg:
            return
        weights = cfg_path.with_name(cfg.get("weights_file") or cfg_path.with_suffix(".pt").name)
        if not weights.exists():
            log.warning("codec config %s has no weights file %s", cfg_path, weights.name)
            return
        cid = str(cfg["codebook_id"])
        if cid in self._entries:  # first root wins: an override folder shadows the package
            return
        self._entries[cid] = CodebookEntry(cid, str(cfg["model_id"]), weights, cfg_path, cfg)
        self._order.append(cid)

    def ids(self) -> list[str]:
        """Registered codebook ids, in discovery order."""
        return list(self._order)

    def get(self, codebook_id: str) -> CodebookEntry:
        """The entry for ``codebook_id`` (raises ``UnknownCodebookError``)."""
        try:
            return self._entries[codebook_id]
        except KeyError:
            raise UnknownCodebookError(
                f"unknown codebook_id {codebook_id!r}; known: {self.ids()}"
            ) from None

    def latest(self) -> CodebookEntry:
        """The default entry: the first root's newest (by ``created``) weights."""
        if not self._order:
            raise UnknownCodebookError(f"no codec weights found under {self.roots}")
        first_root = self._entries[self._order[0]].config_path.parent
        pool = [e for e in self._entries.values() if e.config_path.parent == first_root]
        return max(pool, key=lambda e: e.created)

    def load(
        self, codebook_id: str | None = None, device: str | torch.device | None = None
    ) -> Codec:
        """A ready (``eval()``) ``Codec`` for ``codebook_id`` (default: ``latest``), cached."""
        entry = self.get(codebook_id) if codebook_id else self.latest()
        dev = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        key = (entry.codebook_id, dev)
        with self._lock:
            if key not in self._cache:
                log.info(
                    "loading codec %s (%s) from %s on %s",
                    entry.codebook_id,
                    entry.model_id,
                    entry.weights,
                    dev,
                )
                self._cache[key] = Codec.from_files(entry.weights, entry.config_path, dev)
            return self._cache[key]


_DEFAULT: CodebookRegistry | None = None
_DEFAULT_LOCK = threading.Lock()


def default_registry() -> CodebookRegistry:
    """Process-wide registry over ``default_roots()`` (built once)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = CodebookRegistry()
        return _DEFAULT


def load_codec(codebook_id: str | None = None, device: str | torch.device | None = None) -> Codec:
    """Load the codec for ``codebook_id`` (default: the latest registered weights)."""
    return default_registry().load(codebook_id, device)
