#!/usr/bin/env bash
# Compile the plain-Kotlin post-processing module and its JUnit4 tests with kotlinc (no Gradle,
# no Android SDK) and run them on the Python side's files: the reference data and drift-check
# fixtures of tests/phone_fixtures.sh (real images, real ExecuTorch programs) and the
# cross-language test vectors (tests/vectors).
#
#   android_demo/postprocess/test.sh                     from anywhere; exit status 0 = all tests pass
#   FIXTURES=OUT android_demo/postprocess/test.sh        on fixtures `tests/phone_fixtures.sh OUT` wrote
#
# Needs: Debian packages `kotlin` (kotlinc 1.3), `junit4` (junit4.jar, hamcrest-core.jar) and
# `libgoogle-gson-java` (gson.jar) in /usr/share/java; without FIXTURES, what tests/phone_fixtures.sh
# needs (the ssdmobile Python package, ../shared/data beside the repository). Environment:
# FIXTURES (default: tests/phone_fixtures.sh writes BUILD_DIR/fixtures), BUILD_DIR (default
# android_demo/postprocess/build, git-ignored), VECTORS_DIR (default tests/vectors), PYTHON.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="${BUILD_DIR:-$HERE/build}"
VECTORS="${VECTORS_DIR:-$REPO/tests/vectors}"
JAVA_DIR=/usr/share/java

for tool in kotlinc java; do
    command -v "$tool" >/dev/null || { echo "test.sh: $tool not found (apt-get install -y kotlin junit4 libgoogle-gson-java)" >&2; exit 2; }
done
for jar in junit4.jar hamcrest-core.jar kotlin-stdlib.jar gson.jar; do
    [ -f "$JAVA_DIR/$jar" ] || { echo "test.sh: $JAVA_DIR/$jar not found (apt-get install -y kotlin junit4 libgoogle-gson-java)" >&2; exit 2; }
done
CP_MAIN="$JAVA_DIR/kotlin-stdlib.jar:$JAVA_DIR/gson.jar"
CP_TEST="$JAVA_DIR/junit4.jar:$JAVA_DIR/hamcrest-core.jar"
mkdir -p "$BUILD"

# 1. the fixtures: given, or written now by the Python side
if [ -n "${FIXTURES:-}" ]; then
    FIXTURES="$(cd "$FIXTURES" && pwd)"
else
    FIXTURES="$BUILD/fixtures"
    echo "== fixtures (tests/phone_fixtures.sh $FIXTURES)"
    bash "$REPO/tests/phone_fixtures.sh" "$FIXTURES"
fi
[ -f "$FIXTURES/drift/cases.json" ] || { echo "test.sh: $FIXTURES/drift/cases.json not found (make the fixtures with tests/phone_fixtures.sh OUT)" >&2; exit 1; }
GOLDEN_DIRS=""
for dir in "$FIXTURES"/reference/*/; do
    [ -f "$dir/reference.json" ] && GOLDEN_DIRS="${GOLDEN_DIRS:+$GOLDEN_DIRS,}${dir%/}"
done
[ -n "$GOLDEN_DIRS" ] || { echo "test.sh: no reference data under $FIXTURES/reference (reference.json)" >&2; exit 1; }

# 2. compile (main, then tests against it)
rm -rf "$BUILD/classes" "$BUILD/test-classes" "$BUILD/results"
mkdir -p "$BUILD/classes" "$BUILD/test-classes"
echo "== kotlinc"
compile() {  # compile OUT_DIR CLASSPATH SRC_DIR
    if ! kotlinc -nowarn -cp "$2" "$3" -d "$1" >"$BUILD/kotlinc.log" 2>&1; then
        grep -v "^OpenJDK 64-Bit Server VM warning" "$BUILD/kotlinc.log" >&2
        echo "test.sh: kotlinc failed on $3" >&2
        exit 1
    fi
}
compile "$BUILD/classes" "$CP_MAIN" "$HERE/src/main/kotlin"
compile "$BUILD/test-classes" "$BUILD/classes:$CP_MAIN:$CP_TEST" "$HERE/src/test/kotlin"

# 3. run every *Test class
TESTS=$(cd "$BUILD/test-classes" && find . -name '*Test.class' | sed 's|^\./||; s|\.class$||; s|/|.|g' | sort)
echo "== JUnit: $(echo $TESTS | wc -w) test classes (reference data: $GOLDEN_DIRS)"
java -cp "$BUILD/classes:$BUILD/test-classes:$CP_MAIN:$CP_TEST" \
    -Dgolden.dirs="$GOLDEN_DIRS" -Ddrift.dir="$FIXTURES/drift" \
    -Dvectors.dir="$VECTORS" -Dresults.out="$BUILD/results" \
    org.junit.runner.JUnitCore $TESTS
