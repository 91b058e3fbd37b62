import argparse
import sys

from . import stale_files, write_schemas

parser = argparse.ArgumentParser(
    prog="python -m ssdmobile.schema",
    description="regenerate the published JSON Schemas (sidecar, golden data, device "
    "result) from their pydantic models",
)
parser.add_argument(
    "--check", action="store_true", help="exit 1 if a committed schema is stale; write nothing"
)
args = parser.parse_args()
if args.check:
    stale = stale_files()
    if stale:
        sys.exit(
            f"stale: {', '.join(map(str, stale))}: run `python -m ssdmobile.schema` and commit them"
        )
    print("the published schemas are up to date")
else:
    for path in write_schemas():
        print(f"wrote {path}")
