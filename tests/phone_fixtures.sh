#!/usr/bin/env bash
# The files the apps' module tests run on (Kotlin: android_demo/postprocess/test.sh, Swift:
# ios_demo/SSDMobileKit/test.sh), written once by the Python side from real images and real programs:
#
#   tests/phone_fixtures.sh OUT
#
#   OUT/reference/<name>/   `ssdmobile golden`: the Python reference (preprocess, raw outputs, decode + NMS)
#                           on real val2017 images, reference.json + sidecar.json + tensors:
#       torchvision         SSDlite320 layout (softmax, xywh, clamp, torch bilinear), seeded random weights
#       tf                  the same raw outputs read the TF way (sigmoid, yxhw, no clamp, max_per_class,
#                           TF1 resize), so every decoding path the apps have is checked
#       ssd300_vgg16        torchvision's SSD300 (8732 anchors, 91 classes, caffe mean, std 1/255)
#       person              the real TF person detector (trained weights), when its graph is there
#   OUT/drift/              tests/drift_fixtures.py: ExecuTorch programs with golden data, run by
#                           ExecuTorch's Python runtime (a true and a perturbed program of each)
#
# Environment: PYTHON (default python3), SSDMOBILE_DATA (default ../shared/data/coco128),
# GOLDEN_IMAGES (default 4), PERSON_GRAPH.
set -euo pipefail

OUT="${1:?usage: tests/phone_fixtures.sh OUT}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DATA="${SSDMOBILE_DATA:-$REPO/../shared/data/coco128}"
N="${GOLDEN_IMAGES:-4}"
PERSON_GRAPH="${PERSON_GRAPH:-$REPO/../shared/models/ssdlite_mobilenet_v2_person/frozen_inference_graph.pb}"

rm -rf "$OUT/reference" "$OUT/drift"
mkdir -p "$OUT/reference"
cd "$REPO"
echo "== reference data (Python reference, $N images of $DATA val2017)"
"$PYTHON" -m ssdmobile golden --model ssdlite320_mobilenet_v3_large --random-seed 0 \
    --data "$DATA" --split val2017 --num-images "$N" --out "$OUT/reference/torchvision"
"$PYTHON" -m ssdmobile golden --model ssdlite320_mobilenet_v3_large --random-seed 1 \
    --data "$DATA" --split val2017 --num-images "$N" --out "$OUT/reference/tf" \
    --override postprocess.score=sigmoid --override box_coder.order=yxhw --override box_coder.clamp=null \
    --override box_coder.weights='[10, 10, 5, 5]' --override postprocess.max_per_class=20 \
    --override postprocess.iou_thresh=0.6 --override postprocess.score_thresh=0.3 \
    --override postprocess.topk_candidates=100 --override postprocess.max_detections=100 \
    --override preprocess.resize=tf1_bilinear --logit-scale 0.2
# random weights: the logits scaled so softmax scores stay apart in float32
"$PYTHON" -m ssdmobile golden --model ssd300_vgg16 --random-seed 2 --logit-scale 0.3 \
    --data "$DATA" --split val2017 --num-images "$N" --out "$OUT/reference/ssd300_vgg16"
if ! "$PYTHON" -m ssdmobile golden --model ssdlite_mobilenet_v2_person --weights "$PERSON_GRAPH" \
    --data "$DATA" --split val2017 --num-images "$N" --out "$OUT/reference/person"; then
    echo "phone_fixtures.sh: WARNING: no reference data from ssdlite_mobilenet_v2_person (weights unavailable?)" >&2
    rm -rf "$OUT/reference/person"
fi
echo "== drift-check fixtures (ExecuTorch programs with golden data, run by the Python runtime)"
"$PYTHON" "$REPO/tests/drift_fixtures.py" "$OUT/drift" --images "$N" --data "$DATA" --person-graph "$PERSON_GRAPH"
echo "phone_fixtures.sh: wrote $OUT/reference and $OUT/drift"
