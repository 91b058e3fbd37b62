"""The published JSON Schemas of the files ssdmobile and the apps exchange, generated from their
pydantic models:

    sidecar.schema.json        ssdmobile.sidecar.Sidecar: beside every artifact
    golden.schema.json         ssdmobile.device.ArtifactGolden: golden data for the apps' drift
                               check
    device_result.schema.json  ssdmobile.device.DeviceResult: what the apps' benchmark screens write

and, from the same models (ssdmobile.schema.codegen), the Kotlin data classes of
android_demo/postprocess and the Swift Codable structs of ios_demo/SSDMobileKit,
with their decoders:

    python -m ssdmobile.schema            rewrite all of them from the models
    python -m ssdmobile.schema --check    exit 1 if a committed file is stale (tests do the same)

The files are committed (and shipped in the package) so the apps, their tests and anyone else can
validate those files without Python; each $id carries the version it describes.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from ..device import GOLDEN_VERSION, VERSION as DEVICE_RESULT_VERSION, ArtifactGolden, DeviceResult
from ..fileio import atomic_write
from ..sidecar import SCHEMA_VERSION, Sidecar
from .codegen import generated_files

HERE = Path(__file__).parent
SCHEMA_FILE = HERE / "sidecar.schema.json"
GOLDEN_SCHEMA_FILE = HERE / "golden.schema.json"
DEVICE_RESULT_SCHEMA_FILE = HERE / "device_result.schema.json"
# a URN, not a URL: nothing is hosted; the file ships in the package and the repository
SCHEMA_ID = f"urn:ssdmobile:schema:sidecar:v{SCHEMA_VERSION}"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# file -> (model, its $id name, its version)
SCHEMAS: dict[Path, tuple[type[BaseModel], str, int]] = {
    SCHEMA_FILE: (Sidecar, "sidecar", SCHEMA_VERSION),
    GOLDEN_SCHEMA_FILE: (ArtifactGolden, "golden", GOLDEN_VERSION),
    DEVICE_RESULT_SCHEMA_FILE: (DeviceResult, "device-result", DEVICE_RESULT_VERSION),
}


def model_schema(path: Path) -> dict:
    """The model's model_json_schema() with the draft, $id and version it is published under."""
    model, name, version = SCHEMAS[path]
    return {
        "$schema": DRAFT,
        "$id": f"urn:ssdmobile:schema:{name}:v{version}",
        "version": version,
        **model.model_json_schema(),
    }


def sidecar_schema() -> dict:
    return model_schema(SCHEMA_FILE)


def schema_text(path: Path = SCHEMA_FILE) -> str:
    return json.dumps(model_schema(path), indent=2, sort_keys=False) + "\n"


def expected_files() -> dict[Path, str]:
    """Every generated file and its text: the JSON Schemas, the Kotlin and the Swift types."""
    return {**{p: schema_text(p) for p in SCHEMAS}, **generated_files()}


def write_schemas() -> list[Path]:
    written = []
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        written.append(atomic_write(path, lambda tmp, text=text: Path(tmp).write_text(text)))
    return written


def stale_files() -> list[Path]:
    """Generated files whose text differs from what the models generate now, or that are missing."""
    return [p for p, text in expected_files().items() if not p.is_file() or p.read_text() != text]


def is_stale(path: str | Path = SCHEMA_FILE) -> bool:
    path = Path(path)
    return not path.is_file() or path.read_text() != schema_text(
        SCHEMA_FILE if path not in SCHEMAS else path
    )
