"""The validate table: Markdown (report.md), JSON (report.json) and a chart (report.png), a gallery
of what each artifact detects (gallery/, linked from report.md), and the results the sample apps
measured on phones (`ssdmobile device-report`), shown beside the host's numbers.

report.json holds everything report.md and report.png are made from, so `device-report` can
read it back (read_report), add device results and render all three again."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .bench import Timing
from .device import DeviceResult, result_key
from .errors import SSDMobileError
from .fileio import atomic_directory, atomic_write, prepare_out_dir, sha256_file, write_json_atomic
from .table import format_table
from .validate import GALLERY_SCORE, EagerSummary, Row, ValidateResult
from .visualize import ARTIFACT_ONLY, FLOAT_ONLY, compare_picture, save_png, vstack

GALLERY = "gallery"
GALLERY_SIDE = 400  # longer side of each drawn image, px

HEADERS = [
    "target",
    "precision",
    "file size",
    "AP",
    "ΔAP",
    "max abs diff (raw)",
    "detections match",
    "XNNPACK delegated",
    "ORT Mobile NNAPI / Core ML",
    "latency median",
    "latency p90",
    "speed-up vs eager",
    "status",
]


def _f(v, fmt: str, none: str = "-") -> str:
    return none if v is None else format(v, fmt)


def _delegated(row: Row) -> str:
    d = row.delegation
    if not d:
        return "-"
    total = d["delegated_ops"] + d["non_delegated_ops"]
    return f"all {total} ops" if not d["non_delegated_ops"] else f"{d['delegated_ops']}/{total} ops"


def _mobile(row: Row) -> str:
    """ONNX Runtime's mobile usability verdict for NNAPI and the Core ML EP (ML Program)."""
    m = row.mobile
    if not m:
        return "-"

    def ep(name: str, e: dict) -> str:
        pct = 100 * e["supported_nodes"] / max(e["nodes"], 1)
        return f"{name} {e['verdict']} ({e['partitions']} part., {pct:.0f}%)"

    return f"{ep('NNAPI', m['nnapi'])} / {ep('CoreML', m['coreml_mlprogram'])}"


def table_rows(result: ValidateResult) -> list[list[str]]:
    eager = result.eager
    rows = [
        [
            "eager (float)",
            "fp32",
            "-",
            _f(eager.ap, ".4f"),
            "reference",
            "reference",
            "reference",
            "-",
            "-",
            f"{eager.latency.median_ms:.1f} ms",
            f"{eager.latency.p90_ms:.1f} ms",
            "1.00x",
            "reference (core only)",
        ],
        [
            "eager (float) +nms",
            "fp32",
            "-",
            _f(eager.ap, ".4f"),
            "reference",
            "-",
            "reference",
            "-",
            "-",
            f"{eager.latency_nms.median_ms:.1f} ms",
            f"{eager.latency_nms.p90_ms:.1f} ms",
            "1.00x",
            "reference (core + decode + NMS)",
        ],
    ]
    for r in result.rows:
        rows.append(
            [
                r.target + (" +nms" if r.nms else ""),
                r.precision + (f" ({r.variant})" if r.variant else ""),
                _f(r.size_mb, ".1f") + (" MB" if r.size_mb else ""),
                _f(r.ap, ".4f"),
                _f(r.delta_ap, "+.4f"),
                _f(r.max_abs_diff, ".1e"),
                r.det_match or "-",
                _delegated(r),
                _mobile(r),
                _f(r.latency_median_ms, ".1f") + (" ms" if r.latency_median_ms else ""),
                _f(r.latency_p90_ms, ".1f") + (" ms" if r.latency_p90_ms else ""),
                _f(r.speedup, ".2f") + ("x" if r.speedup else ""),
                r.status,
            ]
        )
    return rows


def markdown(result: ValidateResult, gallery: list[dict] = (), devices: list[dict] = ()) -> str:
    meta = result.meta
    m = meta["machine"]
    lines = [
        f"# ssdmobile validate: {meta['model']}",
        "",
        f"{meta['images']} images, AP over {', '.join(meta['classes'])}; latency: batch 1, "
        f"{meta['threads']} threads, median and p90 of {meta['runs']} runs after {meta['warmup']} "
        f"warm-up runs, on {m['cpu']} ({m['cores']} cores visible, load average "
        f"{meta.get('load_average', ['?'])[0]} at the end), {m['system']}, torch {m['torch']}. "
        "Every artifact runs in its own runtime on the same preprocessed real images as the "
        "eager model. Raw-output difference and matching detections are against the float eager "
        f"model (match: same label, score within {meta['score_tol']}, box within "
        f"{meta['box_tol_px']} px). Speed-up of +nms rows is against eager core + decode + NMS.",
        "",
        format_table(HEADERS, table_rows(result), markdown=True),
        "",
    ]
    if any(r.target == "coreml" and "verified" in r.notes for r in result.rows):
        lines += [
            "Core ML: converted and its spec checked here (inputs, outputs, metadata, NMS "
            "parameters, precision). Core ML's `predict` exists only on macOS, so its AP, drift "
            "and detections here are computed by the **ML Program reference evaluator** "
            "(ssdmobile.mlprogram: the saved program evaluated op by op as coremltools' MIL op "
            "reference defines each op, in the dtypes the program declares (fp16 programs in "
            "fp16), and Core ML's NonMaximumSuppression model as its spec documents it): not the "
            "Core ML runtime, so "
            "no latency here; time it on a Mac or the device (`ssdmobile device-report`).",
            "",
        ]
    if any(r.delegation for r in result.rows):
        lines += [
            "XNNPACK delegated: of an ExecuTorch program's ops, how many the XNNPACK "
            "partitioner took "
            "(ExecuTorch devtools' delegation info, recorded in the sidecar); the rest run on "
            "ExecuTorch's portable kernels.",
            "",
        ]
    if any(r.mobile for r in result.rows):
        lines += [
            "ORT Mobile NNAPI / Core ML: ONNX Runtime's own check_onnx_model_mobile_usability "
            "on the ONNX graph (for .ort rows: the graph it was converted from): its 'should "
            "perform well with the EP as is' verdict, the partitions the EP's supported-op list "
            "splits the graph into and the share of nodes it takes (Core ML: the ML Program "
            "format; the sidecar's ort_mobile has NeuralNetwork too, and the unsupported ops).",
            "",
        ]
    if meta.get("max_drift") is not None:
        lines += [f"Gate: |ΔAP| ≤ {meta['max_drift']} (`--max-drift`).", ""]
    lines += [f"Finished in {meta['seconds']:.0f} s.", ""]
    lines += _gallery_markdown(gallery) + _devices_markdown(result, devices)
    return "\n".join(lines)


def _gallery_markdown(gallery: list[dict]) -> list[str]:
    if not gallery:
        return []
    g = gallery[0]
    lines = [
        "## What each artifact detects",
        "",
        f"{len(g['images'])} images (the first on which float shows a box), the float eager model "
        f"(left) against each artifact (right), boxes scoring at least {g['score_thresh']:g}. "
        "Thick red: only float shows the box; thick blue: only the artifact shows it; thin "
        f"green: both (same class, IoU ≥ {g['iou']:g}). Pictures are for eyes; the drift columns "
        "above are the measurement.",
        "",
        format_table(
            ["artifact", "same boxes", "float only", "artifact only", "pictures"],
            [
                [
                    e["label"],
                    f"{e['same']}/{len(e['images'])} images",
                    e["float_only"],
                    e["artifact_only"],
                    f"[{e['file']}]({e['file']})",
                ]
                for e in gallery
            ],
            markdown=True,
        ),
        "",
    ]
    return lines


def _ms(t: dict | None, key: str) -> str:
    return "-" if not t or t.get(key) is None else f"{t[key]:.1f} ms"


def _devices_markdown(result: ValidateResult, devices: list[dict]) -> list[str]:
    if not devices:
        return []
    rows = []
    for d in devices:
        r = result.rows[d["row"]]
        drift, lat = d.get("drift"), d["latency_ms"]
        rows.append(
            [
                r.label,
                f"{d['device']['name']} ({d['device']['soc']}, {d['device']['os']})",
                f"{d['runtime']['name']} {d['runtime']['version']}",
                d["runtime"]["threads"] or "default",
                _ms(lat["forward"], "median"),
                _ms(lat["forward"], "p90"),
                _f(r.latency_median_ms, ".1f") + (" ms" if r.latency_median_ms else ""),
                _ms(lat["postprocess"], "median"),
                _ms(lat["end_to_end"], "median"),
                _ms(lat["end_to_end"], "p90"),
                _f(r.max_abs_diff, ".1e"),
                "-" if not drift else _f(drift["max_abs_diff_raw"], ".1e"),
                r.det_match or "-",
                "-" if not drift else f"{drift['detections_matched']}/{drift['images']}",
                "no golden data" if not drift else ("PASS" if drift["passed"] else "FAIL"),
            ]
        )
    return [
        "## On device",
        "",
        "Results the sample apps wrote on phones, merged by `ssdmobile device-report` and "
        "matched to the rows above by the artifact's sha256. `forward`: the artifact alone on a "
        "fixed input; `end-to-end`: preprocessing a 640x480 frame + forward + post-processing; "
        "median and p90 as `ssdmobile bench` computes them. Host columns repeat the table above "
        "(host raw diff and match: over the validate images; device: over the golden images "
        "exported with the artifact, run by the phone's runtime against the float model's "
        "outputs, PASS/FAIL by the tolerances in its golden manifest).",
        "",
        format_table(
            [
                "artifact",
                "device",
                "runtime",
                "threads",
                "forward median",
                "forward p90",
                "host median",
                "post-processing median",
                "end-to-end median",
                "end-to-end p90",
                "raw diff (host)",
                "raw diff (device)",
                "match (host)",
                "match (device)",
                "drift check",
            ],
            rows,
            markdown=True,
        ),
        "",
    ]


def chart(result: ValidateResult, path: Path, devices: list[dict] = ()) -> Path:
    import matplotlib  # lazy: heavy (matplotlib), only when a chart is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: heavy (matplotlib), only when a chart is drawn

    eager, meta = result.eager, result.meta
    labels = ["eager", "eager +nms"]
    med = [eager.latency.median_ms, eager.latency_nms.median_ms]
    p90 = [eager.latency.p90_ms, eager.latency_nms.p90_ms]
    colors = ["#888888", "#888888"]
    dap = [0.0, 0.0]
    # each device result is a bar right under its host row (forward median), with no ΔAP of its own
    for i, r in enumerate(result.rows):
        if r.ap is None:
            continue
        labels.append(r.label)
        # no latency: a row computed by a reference evaluator (Core ML off macOS)
        med.append(r.latency_median_ms or 0.0)
        p90.append(r.latency_p90_ms or 0.0)
        colors.append("#3b7dd8" if not r.nms else "#7a4fc9")
        dap.append(r.delta_ap)
        for d in (d for d in devices if d["row"] == i):
            labels.append(f"  on {d['device']['name']}")
            med.append(d["latency_ms"]["forward"]["median"])
            p90.append(d["latency_ms"]["forward"]["p90"])
            colors.append("#e07b00")
            dap.append(None)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 0.45 * len(labels) + 1.8))
    y = range(len(labels))
    ax1.barh(
        list(y),
        med,
        xerr=[[0] * len(med), [b - a for a, b in zip(med, p90)]],
        color=colors,
        capsize=3,
    )
    ax1.set_yticks(list(y), labels)
    ax1.invert_yaxis()
    ax1.set_xlabel(
        f"latency ms (median, whisker to p90), host: {meta['threads']} threads"
        + ("; orange: on a phone (forward)" if devices else "")
    )
    for i, v in enumerate(med):
        ax1.text(v, i, f" {v:.1f}" if v else " on a Mac or device", va="center", fontsize=8)
    ax2.barh(
        list(y),
        [d or 0.0 for d in dap],
        color=["#888888"] * 2
        + [
            "#d84b3b"
            if (d is not None and meta["max_drift"] is not None and abs(d) > meta["max_drift"])
            else "#2e9e5b"
            for d in dap[2:]
        ],
    )
    ax2.axvline(0, color="black", lw=0.8)
    if meta["max_drift"] is not None:
        for s in (-1, 1):
            ax2.axvline(s * meta["max_drift"], color="#d84b3b", ls="--", lw=0.8)
    ax2.set_yticks(list(y), [""] * len(labels))
    ax2.invert_yaxis()
    ax2.set_xlabel(f"ΔAP vs float eager (AP {eager.ap:.4f})")
    lim = max([abs(d) for d in dap if d is not None] + [meta["max_drift"] or 0.002]) * 1.3
    ax2.set_xlim(-lim, lim)
    for i, v in enumerate(dap[2:], start=2):
        if v is not None:
            ax2.text(v, i, f" {v:+.4f}", va="center", fontsize=8)
    fig.suptitle(
        f"{meta['model']}: {meta['images']} images"
        + (
            "; Core ML: ML Program reference, no latency (macOS / device only)"
            if any(r.target == "coreml" and r.latency_median_ms is None for r in result.rows)
            else ""
        )
    )
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110))
    finally:
        plt.close(fig)


@dataclass
class Report:
    """What report.md, report.json and report.png are made of: validate's result, the gallery
    written beside them (one entry per drawn row) and device results matched to rows."""

    result: ValidateResult
    gallery: list[dict] = field(default_factory=list)
    devices: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**self.result.to_dict(), "gallery": self.gallery, "devices": self.devices}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def write_gallery(
    result: ValidateResult, out: Path, score_thresh: float = GALLERY_SCORE, iou: float = 0.5
) -> list[dict]:
    """One picture per measured artifact in out/gallery/: each gallery image, float against the
    artifact (see ssdmobile.visualize). The folder is replaced as a whole. ->
    what report.md links."""
    g = result.gallery
    if g is None or not g.images or not g.rows:
        return []
    entries = []
    with atomic_directory(out / GALLERY) as folder:
        for i, dets in sorted(g.rows.items()):
            row = result.rows[i]
            pictures, same, float_only, artifact_only = [], 0, 0, 0
            for image, ref, got in zip(g.images, g.reference, dets):
                picture, d = compare_picture(
                    image,
                    ref,
                    got,
                    g.class_names,
                    ref_title="float",
                    got_title=row.label,
                    score_thresh=score_thresh,
                    iou=iou,
                    max_side=GALLERY_SIDE,
                )
                pictures.append(picture)
                same += d.same
                float_only += d.float_only
                artifact_only += d.artifact_only
            name = f"{i:02d}_{_slug(row.label)}.png"
            save_png(vstack(pictures, gap=10), folder / name)
            entries.append(
                {
                    "row": i,
                    "label": row.label,
                    "file": f"{GALLERY}/{name}",
                    "images": list(g.names),
                    "same": same,
                    "float_only": float_only,
                    "artifact_only": artifact_only,
                    "score_thresh": score_thresh,
                    "iou": iou,
                    "colors": {"float_only": FLOAT_ONLY, "artifact_only": ARTIFACT_ONLY},
                }
            )
    return entries


def render(report: Report, out_dir: str | os.PathLike) -> dict[str, Path]:
    """report.md, report.json and report.png of `report`, each written atomically."""
    out = prepare_out_dir(out_dir)
    md = out / "report.md"
    text = markdown(report.result, report.gallery, report.devices)
    atomic_write(md, lambda tmp: Path(tmp).write_text(text))
    js = write_json_atomic(out / "report.json", report.to_dict())
    png = chart(report.result, out / "report.png", report.devices)
    return {"md": md, "json": js, "png": png}


def write_report(result: ValidateResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    out = prepare_out_dir(out_dir)
    report = Report(result, write_gallery(result, out))
    paths = render(report, out)
    if report.gallery:
        paths["gallery"] = out / GALLERY
    return paths


class ReportError(SSDMobileError):
    pass


def read_report(path: str | os.PathLike) -> Report:
    """report.json as `ssdmobile validate` wrote it (or device-report rewrote it)."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"report not found: {path} (the report.json `ssdmobile validate` wrote)")
    try:
        d = json.loads(path.read_text())
        names = {f.name for f in dataclasses.fields(Row)}
        rows = [Row(**{k: v for k, v in r.items() if k in names}) for r in d["rows"]]
        e = d["eager"]
        eager = EagerSummary(e["ap"], e["ap50"], Timing(**e["latency"]), Timing(**e["latency_nms"]))
        return Report(
            ValidateResult(rows, eager, d["meta"]), d.get("gallery", []), d.get("devices", [])
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ReportError(
            f"{path}: not a report.json of `ssdmobile validate` ({type(e).__name__}: {e})"
        ) from None


def merge_device_results(report: Report, results: list[tuple[str, DeviceResult]]) -> list[dict]:
    """Add device results (source, result) to the report, each to the row whose artifact has its
    sha256; a result matching no row is refused (all are checked before any is added). A result
    merged before (same content) replaces its earlier copy. -> the entries added."""
    by_sha = {}
    for i, r in enumerate(report.result.rows):
        # reports written before rows carried the sha256: the artifact file, where it still is
        sha = r.sha256 or (
            sha256_file(r.artifact) if r.artifact and Path(r.artifact).exists() else None
        )
        if sha:
            by_sha.setdefault(sha, i)
    for source, res in results:
        if res.artifact_sha256 not in by_sha:
            raise ReportError(
                f"{source}: artifact {res.artifact} (sha256 {res.artifact_sha256[:12]}...) matches "
                "no row of the report: it was not measured by this validate run (re-run validate "
                f"with --artifacts {res.artifact}, or give the report that measured it)"
            )
    added = []
    for source, res in results:
        entry = {**res.to_dict(), "row": by_sha[res.artifact_sha256], "source": Path(source).name}
        key = result_key(entry)
        report.devices = [d for d in report.devices if result_key(d) != key] + [entry]
        added.append(entry)
    return added
