"""The apps' plain-Kotlin post-processing, compiled with kotlinc and run with JUnit against golden
files that the Python reference writes on real images (android_demo/postprocess/test.sh): two
SSDlite320 configurations, SSD300 VGG16 and the real TF person detector."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = REPO / "android_demo" / "postprocess" / "test.sh"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("kotlinc") is None or not os.path.isfile("/usr/share/java/gson.jar"),
                    reason="kotlinc or gson.jar not installed (install.sh installs Debian's kotlin, junit4 and "
                           "libgoogle-gson-java where apt-get works)")
def test_kotlin_postprocess_matches_python(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "BUILD_DIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=900)
    print(proc.stdout[-4000:], proc.stderr[-4000:])
    assert proc.returncode == 0, proc.stderr[-2000:] or proc.stdout[-2000:]
    assert "OK (" in proc.stdout  # JUnit's summary: every test passed
