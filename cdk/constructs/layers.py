"""Lambda layers: the core library from ``layers/core`` and the layers built offline by
``cdk/build_layers.py`` (no Docker bundling at synth)."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk import constants as c

# Never part of an asset: byte code differs per machine and would change the asset hash.
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", ".stamp"]

_DESCRIPTIONS = {
    c.LAYER_CORE: "Sightline domain library (layers/core/python)",
    c.LAYER_DEPS: "Runtime dependencies of the core library",
    c.LAYER_MEDIA: "Static ffmpeg (bin/) for probe, chunk and live_fetch",
    c.LAYER_VISION: "ONNX Runtime + OpenCV for the local describer",
    c.LAYER_EMBED: "ONNX Runtime + tokenizers + MiniLM for the local embedder",
    c.LAYER_SEARCH: "OpenSearch client",
}


class MissingLayerBuild(FileNotFoundError):
    """A built layer folder is absent: run ``make layers`` (cdk/build_layers.py) first."""


class SightlineLayers(Construct):
    """Creates each layer once per stack, on first use."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        build_dir: Path,
        runtime: lambda_.Runtime,
        architecture: lambda_.Architecture,
    ) -> None:
        super().__init__(scope, construct_id)
        self._build_dir = build_dir
        self._runtime = runtime
        self._architecture = architecture
        self._layers: dict[str, lambda_.ILayerVersion] = {}
        self._check_build(runtime, architecture)

    def _check_build(self, runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> None:
        """Wheels with C extensions only load on the CPython and CPU they were built for."""
        info_file = self._build_dir / "BUILD_INFO.json"
        if not info_file.is_file():
            return
        info = json.loads(info_file.read_text())
        if f"python{info.get('python')}" != runtime.name or (
            info.get("architecture") != architecture.name
        ):
            raise ValueError(
                f"layers in {self._build_dir} were built for python{info.get('python')} / "
                f"{info.get('architecture')}, but the functions run {runtime.name} / "
                f"{architecture.name}: align pipeline.runtime / pipeline.architecture with "
                "cdk/build_layers.py"
            )

    def source_dir(self, name: str) -> Path:
        if name == c.LAYER_CORE:
            return c.CORE_LAYER_DIR
        path = self._build_dir / name
        if not path.is_dir():
            raise MissingLayerBuild(
                f"layer '{name}' is not built at {path}: run `make layers` "
                "(python cdk/build_layers.py) before synthesizing"
            )
        return path

    def get(self, name: str) -> lambda_.ILayerVersion:
        if name not in self._layers:
            self._layers[name] = lambda_.LayerVersion(
                self,
                name.capitalize(),
                code=lambda_.Code.from_asset(str(self.source_dir(name)), exclude=ASSET_EXCLUDES),
                compatible_runtimes=[self._runtime],
                compatible_architectures=[self._architecture],
                description=_DESCRIPTIONS.get(name, name),
            )
        return self._layers[name]

    def for_function(self, function_name: str) -> list[lambda_.ILayerVersion]:
        return [self.get(n) for n in c.FUNCTION_LAYERS.get(function_name, (c.LAYER_CORE,))]
