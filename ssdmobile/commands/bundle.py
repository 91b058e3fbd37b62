from ..bundle import APPS, bundle
from ._args import existing_path, output_dir

NAME = "bundle"
HELP = (
    "put an exported artifact and its sidecar where a sample app loads them "
    "(android: .pte, ios: .mlpackage)"
)


def add_arguments(p):
    p.add_argument("--app", required=True, choices=sorted(APPS), help="which sample app")
    p.add_argument(
        "--artifact",
        required=True,
        type=existing_path,
        help="the exported artifact (.pte for android, .mlpackage with --nms for ios); "
        "its sidecar <stem>.json must sit beside it",
    )
    p.add_argument(
        "--dest",
        type=output_dir,
        help="asset directory (default: the app's, e.g. android_demo/app/src/main/assets)",
    )


def run(args):
    artifact, sidecar, *golden = bundle(args.app, args.artifact, args.dest)
    print(
        f"bundled {artifact.name} and {sidecar.name}"
        + (f" with its golden data {golden[0].name}" if golden else "")
        + f" into {artifact.parent}"
    )
    print(
        f"next: build the {args.app} app (see "
        f"{'android_demo' if args.app == 'android' else 'ios_demo'}/README.md)"
    )
