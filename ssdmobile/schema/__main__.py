import argparse
import sys

from . import SCHEMA_FILE, is_stale, write_schema

parser = argparse.ArgumentParser(prog="python -m ssdmobile.schema",
                                 description="regenerate the sidecar JSON Schema from ssdmobile.sidecar")
parser.add_argument("--check", action="store_true", help="exit 1 if the committed schema is stale; write nothing")
args = parser.parse_args()
if args.check:
    if is_stale():
        sys.exit(f"{SCHEMA_FILE} is stale: run `python -m ssdmobile.schema` and commit it")
    print(f"{SCHEMA_FILE} is up to date")
else:
    print(f"wrote {write_schema()}")
