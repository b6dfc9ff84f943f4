#!/usr/bin/env bash
# Manual check of the --serve live page in a real headless browser (not part of CI).
#
# Starts a LiveServer that publishes an annotated face frame at 30 FPS with node stats,
# loads the page in headless Chromium, and checks that
#   1. the page's JavaScript filled in the stats (FPS > 0, 1 face, the node table), and
#   2. the screenshot shows the MJPEG image (the overlay is drawn in the page).
# Usage:  scripts/check_live_view.sh [PYTHON] [OUT_DIR]
# Needs:  Debian's chromium (apt-get install chromium); the facegraph package installed in
#         PYTHON (default: python3). Exits non-zero with a message when a check fails; the
#         screenshot is kept in OUT_DIR (default: a temporary folder) for a look.
set -euo pipefail

PYTHON=${1:-python3}
OUT=${2:-$(mktemp -d)}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$CHROMIUM" ]]; then
    echo "chromium not found: apt-get install chromium" >&2
    exit 2
fi
PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"$PYTHON" - "$ROOT" "$PORT" <<'EOF' &
import sys, time

import cv2
import numpy as np
from facegraph.calculators.annotate import default_annotators
from facegraph.vision.face.types import FaceLandmarks
from facegraph.calculators.live import LiveServer

root, port = sys.argv[1], int(sys.argv[2])
image = np.ascontiguousarray(cv2.imread(f"{root}/tests/fixtures/faces/astronaut.png")[:, :, ::-1])
ref = np.load(f"{root}/tests/fixtures/reference/mesh_static_astronaut_refine.npz")
drawn = default_annotators().annotate(image, [FaceLandmarks(ref["landmarks"][0, 0], 0.99)])
drawn.flags.writeable = False
node = {"node": "face_mesh/landmarks/model", "calculator": "X", "calls": 1, "mean_ms": 2.5,
        "p50_ms": 2.4}
with LiveServer("127.0.0.1", port, stats=lambda: {"graph": "check", "nodes": [node]}) as server:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        server.publish(drawn, faces=1)
        time.sleep(1 / 30)
EOF
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
# Wait (at most 20 s) until the page answers.
for _ in $(seq 100); do
    if "$PYTHON" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/', timeout=1)" \
        2>/dev/null; then break; fi
    sleep 0.2
done

FLAGS=(--headless --no-sandbox --disable-gpu --window-size=1100,700 --virtual-time-budget=4000)
URL="http://127.0.0.1:$PORT/"
"$CHROMIUM" "${FLAGS[@]}" --dump-dom "$URL" 2>"$OUT/chromium.log" >"$OUT/dom.html" ||
    { echo "FAIL: chromium --dump-dom failed (see $OUT/chromium.log)" >&2; exit 1; }
"$CHROMIUM" "${FLAGS[@]}" --screenshot="$OUT/live.png" "$URL" >>"$OUT/chromium.log" 2>&1 ||
    { echo "FAIL: chromium --screenshot failed (see $OUT/chromium.log)" >&2; exit 1; }

"$PYTHON" - "$OUT" <<'EOF'
import re, sys

import cv2

out = sys.argv[1]
dom = open(f"{out}/dom.html", encoding="utf-8").read()
fps = re.search(r'<span id="fps">([^<]*)</span>', dom)
faces = re.search(r'<span id="faces">([^<]*)</span>', dom)
problems = []
if not fps or not re.fullmatch(r"\d+\.\d", fps.group(1)) or float(fps.group(1)) <= 0:
    problems.append(f"FPS not filled in: {fps.group(1) if fps else 'missing'}")
if not faces or faces.group(1) != "1":
    problems.append(f"face count not 1: {faces.group(1) if faces else 'missing'}")
if "face_mesh/landmarks/model" not in dom:
    problems.append("node timings table is empty")
shot = cv2.imread(f"{out}/live.png")
if shot is None:
    problems.append("no screenshot")
else:
    # The page background is flat #111; the MJPEG image (512x512 at 16,80) is a photo.
    region = shot[100:560, 30:500]
    if region.std() < 20:
        problems.append("the stream image is not shown (flat region where it should be)")
if problems:
    print("FAIL:", "; ".join(problems), f"(see {out})", file=sys.stderr)
    sys.exit(1)
print(f"OK: page shows the stream, FPS {fps.group(1)}, 1 face, node timings ({out}/live.png)")
EOF
