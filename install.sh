#!/usr/bin/env bash
# One-step set-up: the Python package with its pinned, tested-together dependencies, plus (where
# apt-get is available and we are root, as on CI) Kotlin, JUnit and Gson for the Android module's tests.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install -e ".[dev]"
if { ! command -v kotlinc >/dev/null 2>&1 || [ ! -f /usr/share/java/gson.jar ]; } \
    && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kotlin junit4 libgoogle-gson-java >/dev/null) \
    || echo "install.sh: kotlin/junit4/gson not installed; the Kotlin post-processing tests will be skipped" >&2
fi
# The iOS app's logic (ios_demo/SSDMobileKit) is built and tested with the Swift toolchain, which this
# script cannot install (it is not a Debian or PyPI package); say so once where it is missing.
if ! command -v swift >/dev/null 2>&1 && [ ! -x /opt/swift/usr/bin/swift ]; then
  echo "install.sh: swift not found; the SSDMobileKit (Swift) tests will be skipped" >&2
fi
