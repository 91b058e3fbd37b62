"""`ssdmobile device-report`: merge results the sample apps measured on
phones into a validate report."""

from pathlib import Path

from ._args import existing_file

NAME = "device-report"
HELP = (
    "merge the sample apps' benchmark results (pulled JSON files, shared files or saved `adb "
    "logcat -s SSDMobileBench` text) into a validate report as device columns beside the host's"
)


def add_arguments(p):
    p.add_argument(
        "results",
        nargs="+",
        type=existing_file,
        metavar="RESULT",
        help="result files the apps wrote, or text saved from `adb logcat -s SSDMobileBench`",
    )
    p.add_argument(
        "--report",
        default="runs/validate/report.json",
        type=existing_file,
        help="the report.json of `ssdmobile validate` (default runs/validate/report.json); "
        "report.md, report.json and report.png beside it are rewritten",
    )


def run(args):
    from ..device import read_results
    from ..report import merge_device_results, read_report, render

    report = read_report(args.report)
    results = [(str(path), r) for path in args.results for r in read_results(path)]
    # refuses a result that matches no row, before writing
    added = merge_device_results(report, results)
    paths = render(report, Path(args.report).parent)
    for d in added:
        lat = d["latency_ms"]
        drift = d["drift"]
        print(
            f"{report.result.rows[d['row']].label} on {d['device']['name']}: forward "
            f"{lat['forward']['median']:.1f} ms "
            f"(median), end-to-end {lat['end_to_end']['median']:.1f} ms; drift check "
            + (
                "not run (no golden data)"
                if drift is None
                else f"{'PASS' if drift['passed'] else 'FAIL'} "
                f"({drift['detections_matched']}/{drift['images']} images match)"
            )
        )
    print(
        f"merged {len(added)} device result(s); wrote {paths['md']}, "
        f"{paths['json']}, {paths['png']}"
    )
    return 0
