#!/usr/bin/env bash
# Build the SSDMobileKit Swift package (Foundation only) and run its XCTest suite on the files the
# Python side writes from real images and real programs (tests/phone_fixtures.sh: reference data of
# `ssdmobile golden`, drift-check fixtures of tests/drift_fixtures.py), plus tests/vectors/*.json.
#
#   ios_demo/SSDMobileKit/test.sh                  from anywhere; exit status 0 = every test passes
#   FIXTURES=OUT ios_demo/SSDMobileKit/test.sh     reuse `tests/phone_fixtures.sh OUT`
#
# Needs: a Swift toolchain (5.9 or newer; `swift` on PATH or in /opt/swift/usr/bin), and for the
# fixtures the ssdmobile Python package (pip install -e .) and ../shared/data beside the repository.
# Environment: FIXTURES (default: made into BUILD_DIR/fixtures), BUILD_DIR (default
# ios_demo/SSDMobileKit/.build, SwiftPM's own scratch folder; git-ignored), PYTHON (for
# phone_fixtures.sh). Device results the tests write land in BUILD_DIR/results.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="${BUILD_DIR:-$HERE/.build}"

if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        PATH="/opt/swift/usr/bin:$PATH"
    else
        echo "test.sh: swift not found (install a Swift toolchain from swift.org, or put it in /opt/swift)" >&2
        exit 2
    fi
fi

mkdir -p "$BUILD"
if [ -z "${FIXTURES:-}" ]; then
    FIXTURES="$BUILD/fixtures"
    echo "== fixtures: tests/phone_fixtures.sh $FIXTURES"
    bash "$REPO/tests/phone_fixtures.sh" "$FIXTURES"
fi
FIXTURES="$(cd "$FIXTURES" && pwd)"
[ -f "$FIXTURES/drift/cases.json" ] || { echo "test.sh: $FIXTURES/drift/cases.json not found (run tests/phone_fixtures.sh $FIXTURES)" >&2; exit 1; }

REFERENCE_DIRS=""
for name in torchvision tf ssd300_vgg16 person; do
    if [ -f "$FIXTURES/reference/$name/reference.json" ]; then
        REFERENCE_DIRS="${REFERENCE_DIRS:+$REFERENCE_DIRS,}$FIXTURES/reference/$name"
    elif [ "$name" != person ]; then  # the person detector's graph may be unavailable; the others are not
        echo "test.sh: $FIXTURES/reference/$name/reference.json not found" >&2
        exit 1
    fi
done
RESULTS="$BUILD/results"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

cd "$HERE"
echo "== swift build ($(swift --version 2>/dev/null | head -n 1))"
LOG="$BUILD/build.log"
if ! swift build --build-tests --scratch-path "$BUILD" >"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "test.sh: swift build failed" >&2
    exit 1
fi
# zero warnings in the hand-written sources (the generated ones are python -m ssdmobile.schema's)
if grep -E "warning:" "$LOG" | grep -v "/Generated/" >&2; then
    echo "test.sh: swift build warned (above)" >&2
    exit 1
fi

echo "== swift test"
SSDMOBILE_REFERENCE_DIRS="$REFERENCE_DIRS" SSDMOBILE_DRIFT_DIR="$FIXTURES/drift" SSDMOBILE_RESULTS_OUT="$RESULTS" \
    swift test --skip-build --scratch-path "$BUILD"
