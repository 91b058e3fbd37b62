"""The published JSON Schema of the sidecar, generated from ssdmobile.sidecar.Sidecar.

    python -m ssdmobile.schema            rewrite sidecar.schema.json from the models
    python -m ssdmobile.schema --check    exit 1 if the committed file is stale (tests do the same)

The file is committed (and shipped in the package) so the apps, their tests and anyone else can
validate a sidecar without Python; its $id carries the schema_version it describes.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..fileio import atomic_write
from ..sidecar import SCHEMA_VERSION, Sidecar

SCHEMA_FILE = Path(__file__).with_name("sidecar.schema.json")
# a URN, not a URL: nothing is hosted; the file ships in the package and the repository
SCHEMA_ID = f"urn:ssdmobile:schema:sidecar:v{SCHEMA_VERSION}"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def sidecar_schema() -> dict:
    """Sidecar.model_json_schema() with the draft, $id and version it is published under."""
    return {"$schema": DRAFT, "$id": SCHEMA_ID, "version": SCHEMA_VERSION, **Sidecar.model_json_schema()}


def schema_text() -> str:
    return json.dumps(sidecar_schema(), indent=2, sort_keys=False) + "\n"


def write_schema(path: str | Path = SCHEMA_FILE) -> Path:
    text = schema_text()
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def is_stale(path: str | Path = SCHEMA_FILE) -> bool:
    path = Path(path)
    return not path.is_file() or path.read_text() != schema_text()
