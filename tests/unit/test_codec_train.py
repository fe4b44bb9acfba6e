"""train.py as a SageMaker training entry point and as a local CPU recipe (tiny runs)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from sagemaker_models.codec import train
from sagemaker_models.codec.inference import model_fn
from sagemaker_models.codec.registry import CodebookRegistry
from tests.support.media import synth_video

TINY_RUN = {
    "steps": 2,
    "batch": 1,
    "crop-frames": 8,
    "crop-size": 32,
    "threads": 1,
    "no-eval": True,
    "log-every": 1,
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("train-data")
    synth_video(d / "pattern.mp4", seconds=2.0, size="64x48", fps=10)
    return d


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_sagemaker_environment_drives_the_run(data_dir, tmp_path, monkeypatch):
    # Given SageMaker's training environment: data channel, model dir, hyper-parameters
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    monkeypatch.setenv("SM_CHANNEL_TRAINING", str(data_dir))
    monkeypatch.setenv("SM_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("SM_HPS", json.dumps(TINY_RUN))
    # When the entry point runs with no arguments (and again with one on the command line)
    train.main([])
    meta = json.loads((model_dir / "codec_v1.json").read_text())
    # Then the artefacts land in the model dir, in the layout the endpoint loads
    assert meta["training"]["steps"] == 2 and meta["training"]["batch"] == 1
    assert meta["training"]["data"][0]["file"] == "pattern.mp4"
    codec = model_fn(str(model_dir))
    assert codec.codebook_id == meta["codebook_id"]
    assert CodebookRegistry([model_dir]).ids() == [meta["codebook_id"]]
    train.main(["--steps", "1", "--name", "codec_cli"])
    cli = json.loads((model_dir / "codec_cli.json").read_text())
    assert cli["training"]["steps"] == 1  # the command line wins over SM_HPS


def test_local_recipe_is_bit_reproducible(data_dir, tmp_path):
    args = ["--data", str(data_dir)]
    for k, v in TINY_RUN.items():
        args += [f"--{k}"] if v is True else [f"--{k}", str(v)]
    # (torch.save names the archive after the file, so the runs use one name in two folders)
    train.main([*args, "--out", str(tmp_path / "a" / "w.pt")])
    train.main([*args, "--out", str(tmp_path / "b" / "w.pt")])
    assert sha256(tmp_path / "a" / "w.pt") == sha256(tmp_path / "b" / "w.pt")
    train.main([*args, "--seed", "1", "--out", str(tmp_path / "c" / "w.pt")])
    assert sha256(tmp_path / "a" / "w.pt") != sha256(tmp_path / "c" / "w.pt")


def test_decoder_fine_tuning_keeps_the_tokens(data_dir, tmp_path):
    args = ["--data", str(data_dir)]
    for k, v in TINY_RUN.items():
        args += [f"--{k}"] if v is True else [f"--{k}", str(v)]
    train.main([*args, "--out", str(tmp_path / "base.pt")])
    with pytest.raises(SystemExit, match="codebook-version"):
        train.main([*args, "--init-from", str(tmp_path / "base.pt"), "--train", "decoder",
                    "--out", str(tmp_path / "same.pt")])  # fmt: skip
    train.main(
        [
            *args,
            "--init-from",
            str(tmp_path / "base.pt"),
            "--train",
            "decoder",
            "--dec-temporal-blocks",
            "1",
            "--model-id",
            "vqvae3d-test",
            "--codebook-version",
            "t2",
            "--out",
            str(tmp_path / "ft.pt"),
        ]
    )
    base = torch.load(tmp_path / "base.pt", weights_only=True)
    tuned = torch.load(tmp_path / "ft.pt", weights_only=True)
    for k, v in base.items():
        if k.startswith(("encoder.", "quantizer.")):
            assert torch.equal(v, tuned[k]), k
    assert "decoder.blocks.1.temporal.weight" not in tuned
    assert not torch.equal(base["decoder.out.weight"], tuned["decoder.out.weight"])
    meta = json.loads((tmp_path / "ft.json").read_text())
    base_id = json.loads((tmp_path / "base.json").read_text())["codebook_id"]
    assert meta["codebook_id"].startswith("cb-t2-") and meta["codebook_id"][6:] == base_id[6:]
    assert meta["model_id"] == "vqvae3d-test"
    assert meta["architecture"]["dec_temporal_blocks"] == 1
    assert CodebookRegistry([tmp_path]).load(meta["codebook_id"], "cpu").halo[0] == 1


def test_unknown_hyperparameter_is_refused(data_dir, monkeypatch):
    monkeypatch.setenv("SM_HPS", json.dumps({"stepz": 3}))
    with pytest.raises(SystemExit, match="stepz"):
        train.main(["--data", str(data_dir)])
