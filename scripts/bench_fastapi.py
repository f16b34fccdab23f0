"""The stack sluice replaces, for scripts/bench.sh: a FastAPI app that makes the same three variants with Pillow.

POST /sync resizes before answering; POST /background stores the upload, answers 202 and resizes in a
BackgroundTasks task (after the answer, in the same process). Variants as sluice's defaults: thumb 256 WebP q80,
medium 1024 and large 2048 JPEG q82, never enlarging. Outputs go to the folder named by BENCH_OUT.
"""

import io
import os
import uuid

from fastapi import BackgroundTasks, FastAPI, UploadFile
from fastapi.responses import JSONResponse
from PIL import Image, ImageOps

OUT = os.environ.get("BENCH_OUT", "/tmp/bench-fastapi")
VARIANTS = [("large", 2048, "JPEG", 82), ("medium", 1024, "JPEG", 82), ("thumb", 256, "WEBP", 80)]

app = FastAPI()


def convert(data: bytes, job: str) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        for name, size, fmt, quality in VARIANTS:
            variant = image.copy()
            variant.thumbnail((size, size), Image.Resampling.LANCZOS)
            variant.save(os.path.join(OUT, f"{job}.{name}.{fmt.lower()}"), fmt, quality=quality)


@app.get("/healthz")
def healthz() -> dict:
    return {"ok": True}


@app.post("/sync", status_code=202)
def upload_sync(file: UploadFile) -> JSONResponse:
    job = uuid.uuid4().hex
    convert(file.file.read(), job)
    return JSONResponse({"id": job, "state": "completed"}, status_code=202)


@app.post("/background", status_code=202)
def upload_background(file: UploadFile, tasks: BackgroundTasks) -> JSONResponse:
    job = uuid.uuid4().hex
    data = file.file.read()
    with open(os.path.join(OUT, f"{job}.original"), "wb") as original:
        original.write(data)
    tasks.add_task(convert, data, job)
    return JSONResponse({"id": job, "state": "queued"}, status_code=202)
