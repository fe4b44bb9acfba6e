"""The SageMaker async contract on one machine.

A worker thread runs the very inference handler SageMaker runs
(``model_fn / input_fn / predict_fn / output_fn``): input object in the blob store →
output object (or failure object) in the blob store → a success/error notice on the bus in
SageMaker's SNS message format, the local stand-in for the endpoint's SNS topics (the local
runtime delivers it to ``functions/codec_callback`` as an SNS event).
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sightline.ports import AsyncInvocation, BlobStore, EventBus
from sightline.services.codec_client import (
    NOTICE_FAILED,
    NOTICE_SUCCEEDED,
    notice_message,
    wait_for_output,
)

logger = logging.getLogger(__name__)


class LocalAsyncCodec:
    prefix = "codec"
    endpoint = "sightline-codec-local"

    def __init__(
        self, blobs: BlobStore, bus: EventBus, *, workers: int = 1, model_dir: str | None = None
    ) -> None:
        self.blobs = blobs
        self.bus = bus
        self.model_dir = model_dir
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="codec")
        self._model: Any = None
        self._model_lock = threading.Lock()

    def _handler(self) -> Any:
        from sagemaker_models.codec import inference

        return inference

    def _loaded_model(self) -> Any:
        # model_fn runs once per worker process, as on a SageMaker instance.
        with self._model_lock:
            if self._model is None:
                self._model = self._handler().model_fn(self.model_dir)
            return self._model

    def invoke_async(
        self, input_key: str, *, inference_id: str, content_type: str
    ) -> AsyncInvocation:
        inv = AsyncInvocation(
            inference_id=inference_id,
            input_key=input_key,
            output_key=f"{self.prefix}/output/{inference_id}.out",
            failure_key=f"{self.prefix}/failure/{inference_id}.err",
        )
        self._pool.submit(self._run, inv, content_type)
        return inv

    def _run(self, inv: AsyncInvocation, content_type: str) -> None:
        handler = self._handler()
        try:
            model = self._loaded_model()
            body = self.blobs.get_bytes(inv.input_key)
            data = handler.input_fn(body, content_type)
            prediction = handler.predict_fn(data, model)
            out = handler.output_fn(prediction, "application/json")
            self.blobs.put_bytes(inv.output_key, out, "application/json")
        except Exception as exc:  # every failure becomes a failure object, as on SageMaker
            logger.warning("codec inference %s failed: %s", inv.inference_id, exc)
            reason = f"{type(exc).__name__}: {exc}"
            self.blobs.put_bytes(
                inv.failure_key, json.dumps({"reason": reason}).encode(), "application/json"
            )
            self.bus.publish(
                NOTICE_FAILED,
                notice_message(
                    inv.inference_id,
                    endpoint=self.endpoint,
                    input_location=self.blobs.uri(inv.input_key),
                    failure_location=self.blobs.uri(inv.failure_key),
                    reason=reason,
                ),
            )
            return
        # The success topic's message; subscribers (the local runtime's codec_callback
        # delivery) run in this worker thread, as SNS would run them after the write.
        self.bus.publish(
            NOTICE_SUCCEEDED,
            notice_message(
                inv.inference_id,
                endpoint=self.endpoint,
                input_location=self.blobs.uri(inv.input_key),
                output_location=self.blobs.uri(inv.output_key),
            ),
        )

    def wait(self, invocation: AsyncInvocation, timeout_s: float) -> bytes:
        return wait_for_output(self.blobs, invocation, timeout_s)
