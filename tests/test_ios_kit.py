"""The iOS app's logic, the Swift package ios_demo/SSDMobileKit (Foundation only), built with
`swift build` and tested with `swift test` on Linux: the cross-language vectors and the format
checks (fast), and with ios_demo/SSDMobileKit/test.sh the reference data from real images and the
drift-check fixtures from real ExecuTorch programs (slow); the device result the Swift writer
saved is then read by `ssdmobile device-report`."""

import json
import os
import re
import shutil
import subprocess

import pytest

from ssdmobile.cli import main
from ssdmobile.device import read_results

from conftest import REPO
from device_results import report_for

KIT = REPO / "ios_demo" / "SSDMobileKit"
SCRIPT = KIT / "test.sh"


def _swift() -> str | None:
    found = shutil.which("swift")
    if found:
        return found
    fallback = "/opt/swift/usr/bin/swift"
    return fallback if os.access(fallback, os.X_OK) else None


SWIFT = _swift()
NO_SWIFT = pytest.mark.skipif(
    SWIFT is None,
    reason="swift not found on PATH or in /opt/swift/usr/bin "
    "(a Swift toolchain from swift.org builds ios_demo/SSDMobileKit)",
)


def _env(**extra) -> dict:
    env = {**os.environ, **extra}
    env["PATH"] = f"{os.path.dirname(SWIFT)}{os.pathsep}{env.get('PATH', '')}"
    return env


@NO_SWIFT
@pytest.mark.slow
def test_swift_kit_vectors_and_formats(tmp_path_factory):
    """No fixtures needed: every tests/vectors/*.json case through the Kit (VectorsTests), the
    generated decoders' refusals (FormatTests) and the app-facing API (KitTests)."""
    scratch = tmp_path_factory.mktemp("swift-fast")
    build = subprocess.run(
        [SWIFT, "build", "--build-tests", "--scratch-path", str(scratch)],
        cwd=KIT,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=1200,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    warnings = [
        line
        for line in (build.stdout + build.stderr).splitlines()
        if "warning:" in line and "/Generated/" not in line
    ]
    assert not warnings, "\n".join(warnings)
    env = _env()
    for var in (
        "SSDMOBILE_REFERENCE_DIRS",
        "SSDMOBILE_DRIFT_DIR",
        "SSDMOBILE_RESULTS_OUT",
        "SSDMOBILE_VECTORS_DIR",
    ):
        env.pop(var, None)
    proc = subprocess.run(
        [
            SWIFT,
            "test",
            "--skip-build",
            "--scratch-path",
            str(scratch),
            "--filter",
            r"SSDMobileKitTests\.(VectorsTests|FormatTests|KitTests)",
        ],
        cwd=KIT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "with 0 failures" in out
    for section in ("decode", "nms", "match", "drift", "preview", "latency"):
        assert f"vectors {section}: " in out, f"no {section} vectors ran"


@pytest.fixture(scope="module")
def swift_run(phone_fixtures, tmp_path_factory):
    """test.sh once, on the session's phone fixtures: swift build, swift test (every test class)."""
    build = tmp_path_factory.mktemp("swift")
    proc = subprocess.run(
        ["bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=1800,
        env=_env(FIXTURES=str(phone_fixtures), BUILD_DIR=str(build)),
    )
    return phone_fixtures, build, proc


@pytest.mark.slow
@NO_SWIFT
def test_swift_kit_on_reference_data_and_drift_fixtures(swift_run, tmp_path, capsys):
    """The Kit's decode + NMS against the Python reference on real images, its drift check on real
    programs (the true ones pass, the perturbed ones fail, with the Python check's numbers), and the
    device result its writer saved, merged by `ssdmobile device-report` into a report whose row is
    that artifact."""

    fixtures, build, proc = swift_run
    print(proc.stdout[-4000:], proc.stderr[-4000:])
    assert proc.returncode == 0, proc.stderr[-3000:] or proc.stdout[-3000:]
    out = proc.stdout + proc.stderr
    # every fixture was there
    assert "with 0 failures" in out and not re.search(r"\d+ tests? skipped", out)
    assert "drift person_fp32: PASS" in out and "drift person_fp32_perturb: FAIL" in out
    assert "drift tiny_nms: PASS" in out and "drift tiny_nms_perturb: FAIL" in out

    golden = json.loads(
        (
            fixtures / "drift/person/ssdlite_mobilenet_v2_person_executorch_fp32.golden/golden.json"
        ).read_text()
    )
    sha = golden["artifact_sha256"]
    (written,) = (build / "results").glob("result_*.json")
    (result,) = read_results(written)
    assert (
        result.app == "ios"
        and result.artifact == golden["artifact"]
        and result.artifact_sha256 == sha
    )
    assert (
        written.name == "result_ssdlite_mobilenet_v2_person_executorch_fp32_20250102T030405Z.json"
    )
    python = next(
        c["python"]
        for c in json.loads((fixtures / "drift/cases.json").read_text())["cases"]
        if c["name"] == "person_fp32"
    )
    # the Swift check's numbers are Python's
    assert json.loads(written.read_text())["drift"] == python

    # merged into a report whose row is that very artifact; another artifact's result is refused
    paths = report_for(golden["artifact"], sha, tmp_path / "report")
    capsys.readouterr()
    assert main(["device-report", str(written), "--report", str(paths["json"])]) == 0
    md = paths["md"].read_text()
    assert "iPhone15,2" in md and "PASS" in md and f"{python['max_abs_diff_raw']:.1e}" in md
    assert len(json.loads(paths["json"].read_text())["devices"]) == 1
    other = tmp_path / "other.json"
    other.write_text(written.read_text().replace(sha, "f" * 64))
    assert main(["device-report", str(other), "--report", str(paths["json"])]) == 2
    assert "matches no row" in capsys.readouterr().err
