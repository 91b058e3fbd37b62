"""The apps' plain-Kotlin module, compiled with kotlinc and run with JUnit
(android_demo/postprocess/test.sh) on what the Python side writes: the reference data on real
images (two SSDlite320 configurations, SSD300 VGG16 and the real TF person detector) and the
drift-check fixtures of real ExecuTorch programs (tests/phone_fixtures.sh, the session fixture
`phone_fixtures`), and on the test vectors (tests/vectors)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from ssdmobile.cli import main
from ssdmobile.device import read_results

from conftest import REPO
from device_results import report_for, result

SCRIPT = REPO / "android_demo" / "postprocess" / "test.sh"


NO_KOTLIN = pytest.mark.skipif(
    shutil.which("kotlinc") is None or not os.path.isfile("/usr/share/java/gson.jar"),
    reason="kotlinc or gson.jar not installed "
    "(install.sh: Debian's kotlin junit4 libgoogle-gson-java)",
)


@pytest.fixture(scope="module")
def kotlin_run(tmp_path_factory, phone_fixtures):
    """test.sh once on the session's fixtures: kotlinc, JUnit."""
    build = tmp_path_factory.mktemp("kotlin")
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "BUILD_DIR": str(build),
        "FIXTURES": str(phone_fixtures),
    }
    proc = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=1800
    )
    return build, phone_fixtures, proc


@pytest.mark.slow
@NO_KOTLIN
def test_kotlin_postprocess_matches_python(kotlin_run):
    _, _, proc = kotlin_run
    print(proc.stdout[-4000:], proc.stderr[-4000:])
    assert proc.returncode == 0, proc.stderr[-2000:] or proc.stdout[-2000:]
    assert "OK (" in proc.stdout  # JUnit's summary: every test passed


@pytest.mark.slow
@NO_KOTLIN
def test_the_app_hands_camera_bytes_exactly_as_the_host(kotlin_run):
    """A program exported with --input uint8 (tests/drift_fixtures.py, person_u8_fp32): the app's
    Preprocessor + RuntimeTensors.toUint8 make every golden input byte the host made, from the
    decoded image, and the program's outputs pass the drift check (PixelInputTest)."""
    _, _, proc = kotlin_run
    assert proc.returncode == 0, proc.stderr[-2000:] or proc.stdout[-2000:]
    assert "drift person_u8_fp32: PASS" in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line.startswith("camera bytes ")]
    assert lines and all(" 270000/270000 bytes as the host made them" in line for line in lines)


@pytest.mark.slow
@NO_KOTLIN
def test_drift_check_and_device_results_across_kotlin_and_python(kotlin_run, tmp_path, capsys):
    """tests/phone_fixtures.sh exports real ExecuTorch programs with golden data and runs them with
    ExecuTorch's Python runtime (OUT/drift); test.sh has the Kotlin comparator check the outputs
    (DriftCheckTest: the true program passes, a perturbed one fails, with the Python check's
    numbers); BenchResultTest writes device results with the app's writer (the generated
    DeviceResult). Here those files are read by ssdmobile/device.py, compared with the Python
    mirror the fast tests use, and merged by `ssdmobile device-report`."""

    build, fixtures, proc = kotlin_run
    assert proc.returncode == 0, proc.stderr[-2000:] or proc.stdout[-2000:]
    assert (
        "drift person_fp32: PASS" in proc.stdout
        and "drift person_fp32_perturb: FAIL" in proc.stdout
    )
    assert "drift tiny_nms: PASS" in proc.stdout and "drift tiny_nms_perturb: FAIL" in proc.stdout

    person = fixtures / "drift/person/ssdlite_mobilenet_v2_person_executorch_fp32.golden"
    golden = json.loads((person / "golden.json").read_text())
    sha = golden["artifact_sha256"]
    (written,) = (build / "results").glob("result_*.json")
    (from_file,) = read_results(written)
    (from_log,) = read_results(build / "results" / "logcat.txt")
    kotlin = json.loads(written.read_text())
    mirror = result(sha)
    assert kotlin == mirror and list(kotlin) == list(mirror)  # same values, same key order
    assert json.loads(
        (build / "results" / "logcat.txt").read_text().splitlines()[-1].split(": ", 1)[1]
    ) == result(sha, drift=None)
    assert from_file.artifact_sha256 == sha and from_log.drift is None

    # merged into a report whose row is that very artifact; another artifact's result is refused
    paths = report_for(golden["artifact"], sha, tmp_path / "report")
    capsys.readouterr()
    assert main(["device-report", str(written), "--report", str(paths["json"])]) == 0
    md = paths["md"].read_text()
    assert "Google Pixel 8" in md and "PASS" in md and "7.6e-05" in md
    # the logcat line of the same run (same device, time and runs) replaces it, not a second column
    assert (
        main(
            ["device-report", str(build / "results" / "logcat.txt"), "--report", str(paths["json"])]
        )
        == 0
    )
    assert len(json.loads(paths["json"].read_text())["devices"]) == 1
    assert "no golden data" in paths["md"].read_text()
    other = tmp_path / "other.json"
    other.write_text(written.read_text().replace(sha, "f" * 64))
    assert main(["device-report", str(other), "--report", str(paths["json"])]) == 2
    assert "matches no row" in capsys.readouterr().err
