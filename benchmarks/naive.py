"""The naive baseline the load benchmark compares against: the same post, written plainly.

``POST /v1/users/{user_id}/posts`` (multipart ``image``, ``post_id``) in a plain FastAPI ``def``
handler (Starlette's thread pool): the whole JPEG decoded at full size, converted to grayscale,
shrunk to 270 px for OpenCV's Haar cascade, the face cropped, the emotion CNN run at batch 1, then
the user's state read, stepped and written back with one Redis command per step (GET of the state,
GET of the post id, SET, RPUSH, LTRIM, SET): read-modify-write without a compare-and-set. The temporal step
and the drift detector are the service's own (``service.transition.advance``), so only the plumbing differs.

``python -m benchmarks.naive --port 8001 --redis-url redis://...`` serves it; benchmarks/load.py
starts it on its own.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from typing import Annotated, Any, cast

import numpy as np
import redis
from fastapi import FastAPI, File, Form
from PIL import Image

from service import calibration, keys, model_repository
from service.config import Settings
from service.images import CROP_SIZE, DETECT_SIDE, MARGIN, FaceDetector, _square_around
from service.inference import EmotionModel, choose_provider
from service.transition import Post, Rules, Scored, advance
from service.state_store import decode_record, encode_record
from service.temporal import TemporalModel


def create_app(settings: Settings) -> FastAPI:
    choice = choose_provider("cpu")
    emotion = EmotionModel(model_repository.load(settings.model_repository, settings.emotion_model), choice)
    temporal = TemporalModel(model_repository.load(settings.model_repository, settings.temporal_model), choice)
    config = calibration.detector_config(temporal.artifact.manifest, calibration.overrides(settings),
                                         temporal.score_profile)
    rules = Rules(temporal, config, settings.recent_alpha, settings.baseline_alpha)
    detector = FaceDetector()
    assert settings.redis_url is not None  # --redis-url is required
    db = redis.Redis.from_url(settings.redis_url)
    app = FastAPI(title="emodrift naive baseline")

    def face_pixels(data: bytes) -> tuple[np.ndarray, bool]:
        gray = Image.open(io.BytesIO(data)).convert("L")  # full-size decode
        scale = DETECT_SIDE / max(gray.size)
        small = gray.resize((round(gray.width * scale), round(gray.height * scale)), Image.Resampling.BILINEAR)
        boxes = detector._classifier().detectMultiScale(np.asarray(small), scaleFactor=1.1, minNeighbors=5,
                                                        minSize=(24, 24))
        if len(boxes):
            # a row of the (N, 4) array cv2 returns (its stubs say a Sequence of Sequences)
            x, y, w, h = cast(np.ndarray, max(boxes, key=lambda b: b[2] * b[3])) / scale
            box = _square_around((x, y, w, h), gray.size, MARGIN)
        else:
            side = min(gray.size)
            box = ((gray.width - side) / 2, (gray.height - side) / 2, (gray.width + side) / 2, (gray.height + side) / 2)
        crop = gray.resize((CROP_SIZE, CROP_SIZE), Image.Resampling.BICUBIC, box=box)
        return (np.asarray(crop, dtype=np.float32) / 255.0 - 0.5) * 2.0, bool(len(boxes))

    @app.post("/v1/users/{user_id}/posts")
    def post(user_id: str, image: Annotated[bytes, File()], post_id: Annotated[str, Form()]) -> dict[str, Any]:
        pixels, face = face_pixels(image)
        probabilities, _ = emotion(pixels[None, None])  # batch of one
        scored = Scored(probabilities[0], face, "image")
        prior = db.get(keys.post(user_id, post_id))
        if prior is not None:
            return {**json.loads(prior), "duplicate": True}
        raw = db.get(keys.state(user_id))
        previous = decode_record(cast(bytes, raw)) if raw else rules.new_state()  # the client never decodes
        step = advance(previous, Post(user_id, post_id, time.time(), scored), rules)
        state, result = step.state, step.result
        db.set(keys.state(user_id), encode_record(state.version + 1, state.h, state.c, state.meta()))
        db.rpush(keys.timeline(user_id), json.dumps(result))
        db.ltrim(keys.timeline(user_id), -settings.timeline_length, -1)
        db.set(keys.post(user_id, post_id), json.dumps(result), ex=settings.idempotency_ttl_seconds)
        return result

    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m benchmarks.naive", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args(argv)
    app = create_app(Settings(redis_url=args.redis_url))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
