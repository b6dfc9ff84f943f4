"""Live view: an OpenCV window (``--show``) or a local web page (``--serve [HOST:]PORT``).

::

    from facegraph.vision.live import LiveServer

    with LiveServer("127.0.0.1", 8080, stats=lambda: graph_stats_dict(graph.stats())) as server:
        print("open", server.url)
        for frame in source:
            ...
            server.publish(drawn_rgb, faces=faces, outputs=outputs)   # never blocks

The server (standard library ``ThreadingHTTPServer``: no dependency, and a handful of
viewers is all a local preview needs) serves:

- ``/``: an HTML page showing the stream and the stats, polled once a second;
- ``/stream.mjpg``: the overlay as MJPEG (``multipart/x-mixed-replace``);
- ``/frame.jpg``: the newest frame as one JPEG;
- ``/stats.json``: ``{"fps", "frames", "faces", "face_list", "width", "height",
  "clients", "nodes"}`` where ``face_list`` has each face's track id, score and details
  (blendshapes, head pose) and ``nodes`` comes from the ``stats`` callable (per-node
  timings).

:meth:`LiveServer.publish` only stores a reference to the newest frame and wakes the
viewers: it never encodes and never waits for a client. A frame is JPEG-encoded once, by
the first viewer that needs it; a slow viewer simply skips to the newest frame, so the
pipeline's speed never depends on the network. The number of simultaneous streams is
bounded (``max_clients``; more get HTTP 503), as is the time one socket write may block.
It binds to 127.0.0.1 unless told otherwise: the page is a preview, not a service.

:class:`LiveWindow` is the ``--show`` window. The ``opencv-python-headless`` wheel has no
GUI; :func:`gui_available` detects that and :class:`LiveWindow` raises a
:class:`LiveViewError` that points to ``--serve``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from facegraph import Closeable, FacegraphError
from facegraph.condition_wait import wait_holding_lock
from facegraph.vision.opencv_threads import serial_opencv

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

__all__ = [
    "LiveServer",
    "LiveViewError",
    "LiveWindow",
    "graph_stats_dict",
    "gui_available",
    "parse_serve_address",
]

BOUNDARY = "facegraphframe"


class LiveViewError(FacegraphError):
    """The live view cannot start (no GUI, port taken, bad address)."""


def parse_serve_address(text: str | int, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``"8080"`` → ``("127.0.0.1", 8080)``; ``"0.0.0.0:8080"``, ``"[::1]:8080"`` as given."""
    value = str(text).strip()
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = default_host, value
    host = host.strip("[]") or default_host
    try:
        port = int(port_text)
    except ValueError:
        raise LiveViewError(f"--serve expects [HOST:]PORT, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise LiveViewError(f"--serve port must be 0-65535, got {port}")
    return host, port


def graph_stats_dict(stats: Any) -> dict[str, Any]:
    """A :class:`facegraph.profiler.GraphStats` as JSON-ready data (per-node timings)."""
    nodes = []
    for n in getattr(stats, "nodes", ()):
        nodes.append(
            {
                "node": n.node,
                "calculator": n.calculator,
                "calls": n.calls,
                "mean_ms": round(float(n.mean_ms), 3),
                "p50_ms": round(float(n.p50_ms), 3),
            }
        )
    return {"graph": getattr(stats, "graph", ""), "nodes": nodes}


#: Output streams whose values the page lists per face, by a word in the stream's name.
DETAIL_WORDS: tuple[str, ...] = ("blendshape", "pose", "matrix", "geometry")


def _named_numbers(value: Any, limit: int = 8) -> dict[str, float] | list[float] | None:
    """A small JSON view of a per-face detail: ``{name: score}`` (the largest ``limit``)
    for category-like values, a rounded flat list for matrices/poses, else None."""
    if isinstance(value, Mapping):
        pairs = []
        for k, v in value.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                pairs.append((str(k), float(v)))
            elif isinstance(v, Mapping):  # one level down: {"head_pose": {"yaw": ...}}
                pairs += [
                    (str(k2), float(v2))
                    for k2, v2 in v.items()
                    if isinstance(v2, (int, float)) and not isinstance(v2, bool)
                ]
    elif isinstance(value, (list, tuple)) and value and hasattr(value[0], "score"):
        pairs = [
            (str(getattr(c, "category_name", None) or getattr(c, "name", i)), float(c.score))
            for i, c in enumerate(value)
        ]
    elif isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size <= 16:
        return [round(float(v), 3) for v in value.ravel()]
    else:
        to_dict = getattr(value, "to_dict", None)
        return _named_numbers(to_dict(), limit) if callable(to_dict) else None
    pairs.sort(key=lambda p: -abs(p[1]))
    return {k: round(v, 3) for k, v in pairs[:limit]}


def face_details(faces: Sequence[Any], outputs: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One entry per face for the page: ``{"id", "score"}`` plus, for every output stream
    whose name contains a :data:`DETAIL_WORDS` word and that holds one value per face, that
    face's value (blendshapes as the largest scores, a pose matrix as numbers)."""
    from facegraph.vision.annotate import track_id

    details: list[dict[str, Any]] = []
    for face in faces:
        score = getattr(face, "score", None)
        entry: dict[str, Any] = {"id": track_id(face)}
        if isinstance(score, (int, float)) and np.isfinite(score):
            entry["score"] = round(float(score), 3)
        details.append(entry)
    for name, value in (outputs or {}).items():
        if not any(word in name.lower() for word in DETAIL_WORDS) or value is None:
            continue
        per_face = list(value) if isinstance(value, (list, tuple)) else [value]
        if (
            per_face
            and not isinstance(per_face[0], (list, tuple, Mapping, np.ndarray))
            and hasattr(per_face[0], "score")
        ):
            per_face = [per_face]  # one face's categories, not one value per face
        for entry, item in zip(details, per_face, strict=False):
            shown = _named_numbers(item)
            if shown is not None:
                entry[name] = shown
    return details


class _RateMeter:
    """Frames per second over the last ``window`` events."""

    def __init__(self, window: int = 30) -> None:
        self._times: deque[float] = deque(maxlen=window)

    def tick(self, now: float) -> None:
        self._times.append(now)

    @property
    def rate(self) -> float:
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>facegraph live</title>
<style>
body{font-family:system-ui,sans-serif;background:#111;color:#ddd;margin:1rem}
main{display:flex;gap:1.5rem;flex-wrap:wrap;align-items:flex-start}
img{max-width:min(100%,960px);background:#000;border:1px solid #333}
table{border-collapse:collapse;font-size:.85rem}td,th{padding:.15rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}.big{font-size:1.6rem}
</style></head><body>
<h1>facegraph <small id="graph"></small></h1>
<main><img id="view" src="stream.mjpg" alt="live overlay">
<section><div class="big"><span id="fps">-</span> FPS &middot;
<span id="faces">-</span> face(s)</div>
<p>frames: <span id="frames">-</span> &middot; <span id="size"></span></p>
<ul id="facelist"></ul>
<table><thead><tr><th>node</th><th>calls</th><th>mean ms</th><th>p50 ms</th></tr></thead>
<tbody id="nodes"></tbody></table></section></main>
<script>
function esc(t){return String(t).replace(/[&<>"']/g,c=>'&#'+c.charCodeAt(0)+';');}
async function poll(){
  try{
    const s=await (await fetch('stats.json',{cache:'no-store'})).json();
    document.getElementById('fps').textContent=s.fps.toFixed(1);
    document.getElementById('faces').textContent=s.faces;
    document.getElementById('frames').textContent=s.frames;
    document.getElementById('size').textContent=s.width?s.width+'x'+s.height:'';
    document.getElementById('graph').textContent=s.graph||'';
    const rows=(s.nodes||[]).map(n=>'<tr><td>'+esc(n.node)+'</td><td>'+n.calls+'</td><td>'+
      n.mean_ms.toFixed(2)+'</td><td>'+n.p50_ms.toFixed(2)+'</td></tr>');
    document.getElementById('nodes').innerHTML=rows.join('');
    const faces=(s.face_list||[]).map(f=>'<li>face '+(f.id==null?'?':'#'+esc(f.id))+
      (f.score==null?'':' score '+f.score.toFixed(2))+Object.keys(f).filter(k=>k!='id'&&k!='score')
      .map(k=>'<br><small>'+esc(k)+': '+esc(JSON.stringify(f[k]))+'</small>').join('')+'</li>');
    document.getElementById('facelist').innerHTML=faces.join('');
  }catch(e){}
}
poll();setInterval(poll,1000);
</script></body></html>
"""


class LiveServer(Closeable):
    """A local web page with the live overlay (MJPEG), FPS, face count and node timings."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        stats: Callable[[], Mapping[str, Any]] | None = None,
        jpeg_quality: int = 80,
        max_clients: int = 8,
        write_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.jpeg_quality = int(jpeg_quality)
        self.max_clients = int(max_clients)
        self._stats_fn = stats
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] | None = None  # (seq, data): the cached encoding
        self._encode_lock = threading.Lock()
        self._faces = 0
        self._details: list[dict[str, Any]] = []
        self._meter = _RateMeter()
        self._clients = 0
        self._closing = False
        import socket
        from http.server import ThreadingHTTPServer

        class _Server(ThreadingHTTPServer):
            # IPv6 hosts (``[::1]:8080``, the documented form) need an AF_INET6 socket.
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        handler = _make_handler(self, write_timeout)
        try:
            self._httpd = _Server((host, port), handler)
        except OSError as exc:
            raise LiveViewError(
                f"cannot serve on {host}:{port}: {exc.strerror or exc} "
                "(port in use? try another, e.g. --serve 8081)"
            ) from None
        self._httpd.daemon_threads = True
        self.port: int = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="live server"
        )
        self._thread.daemon = True
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # -- producer side ------------------------------------------------------------------------

    def publish(
        self,
        image: np.ndarray,
        *,
        faces: int | Sequence[Any] = 0,
        outputs: Mapping[str, Any] | None = None,
    ) -> None:
        """Make ``image`` (HxWx3 uint8 RGB) the newest frame. Cheap; never blocks on viewers.

        ``faces``: a count, or the faces shown (their track ids and scores appear on the
        page). ``outputs``: the frame's graph outputs; per-face numbers such as
        blendshape scores or a head pose found there are listed on the page (see
        :func:`face_details`). A writable array is copied (viewers encode it later, on
        their threads); a read-only one is kept as is.
        """
        if image.flags.writeable:
            image = image.copy()
        details = face_details(faces, outputs) if not isinstance(faces, int) else []
        with self._cond:
            self._frame = image
            self._seq += 1
            self._faces = faces if isinstance(faces, int) else len(faces)
            self._details = details
            self._meter.tick(time.monotonic())
            self._cond.notify_all()

    def stats(self) -> dict[str, Any]:
        """What ``/stats.json`` returns."""
        with self._cond:
            frame = self._frame
            data: dict[str, Any] = {
                "fps": round(self._meter.rate, 2),
                "frames": self._seq,
                "faces": self._faces,
                "face_list": self._details,
                "width": 0 if frame is None else int(frame.shape[1]),
                "height": 0 if frame is None else int(frame.shape[0]),
                "clients": self._clients,
            }
        extra: Mapping[str, Any] = {}
        if self._stats_fn is not None:
            try:
                extra = self._stats_fn()
            except Exception as exc:  # a stats failure must not break the page
                extra = {"stats_error": str(exc)}
        data.setdefault("nodes", [])
        data.update(extra)
        return data

    # -- viewer side --------------------------------------------------------------------------

    def _wait_frame(self, after: int, timeout: float) -> int | None:
        """The newest sequence number > ``after``, or None on timeout / shutdown."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._seq <= after and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                wait_holding_lock(self._cond, left)
            return None if self._closing or self._seq <= after else self._seq

    def _jpeg_bytes(self) -> tuple[int, bytes] | None:
        """The newest frame as JPEG, encoded at most once per frame (whoever asks first)."""
        import cv2

        with self._cond:
            frame, seq = self._frame, self._seq
        if frame is None:
            return None
        with self._encode_lock:
            cached = self._jpeg
            if cached is not None and cached[0] >= seq:
                return cached
            with serial_opencv():  # per frame: no spinning OpenCV worker
                bgr = cv2.cvtColor(np.asarray(frame), cv2.COLOR_RGB2BGR)
            ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                return None
            self._jpeg = (seq, data.tobytes())
            return self._jpeg

    def _enter_client(self) -> bool:
        with self._cond:
            if self._clients >= self.max_clients or self._closing:
                return False
            self._clients += 1
            return True

    def _leave_client(self) -> None:
        with self._cond:
            self._clients -= 1

    @property
    def closing(self) -> bool:
        return self._closing

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop serving: wake and end every stream, close the socket (idempotent)."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5.0)


def _make_handler(server: LiveServer, write_timeout: float) -> type[BaseHTTPRequestHandler]:
    from http import HTTPStatus
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        # A write to a stuck client times out instead of holding a thread forever.
        timeout = write_timeout
        server_version = "facegraph-live"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no per-request lines on the console of a running pipeline

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                if path in ("/", "/index.html"):
                    self._send(HTTPStatus.OK, _PAGE.encode(), "text/html; charset=utf-8")
                elif path == "/stats.json":
                    body = json.dumps(server.stats()).encode()
                    self._send(HTTPStatus.OK, body, "application/json")
                elif path == "/frame.jpg":
                    self._frame()
                elif path == "/stream.mjpg":
                    self._stream()
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass  # the viewer went away or stalled: drop it

        def _frame(self) -> None:
            server._wait_frame(0, 2.0)  # the first frame may still be on its way
            encoded = server._jpeg_bytes()
            if encoded is None:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"no frame yet\n", "text/plain")
                return
            self._send(HTTPStatus.OK, encoded[1], "image/jpeg")

        def _stream(self) -> None:
            if not server._enter_client():
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"too many viewers\n", "text/plain")
                return
            try:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                sent = 0
                while not server.closing:
                    # Always the newest frame: a slow viewer skips the ones it missed.
                    if server._wait_frame(sent, 1.0) is None:
                        continue
                    encoded = server._jpeg_bytes()
                    if encoded is None:
                        continue
                    sent, data = encoded
                    head = (
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n"
                    ).encode()
                    self.wfile.write(head + data + b"\r\n")
                    self.wfile.flush()
            finally:
                server._leave_client()
                self.close_connection = True

    return Handler


def gui_available() -> bool:
    """Whether this OpenCV build can open windows (``opencv-python-headless`` cannot)."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "GUI":
            return value.strip().upper() not in ("", "NONE", "NO")
    return True  # unknown build format: let namedWindow decide


class LiveWindow:
    """An OpenCV window showing frames (``--show``) with the live FPS in a corner.

    ``show`` returns False once the view has ended: the user pressed ``q`` or Esc, or
    closed the window.
    """

    def __init__(self, title: str = "facegraph", *, fps: bool = True) -> None:
        import cv2
        from facegraph.vision.annotate import FpsAnnotator

        if not gui_available():
            raise LiveViewError(
                "--show needs an OpenCV build with a GUI, but this one has none "
                "(opencv-python-headless). Use --serve 8080 and open http://127.0.0.1:8080/ "
                "in a browser, or install opencv-python instead of opencv-python-headless."
            )
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise LiveViewError(
                f"cannot open a window ({str(exc).strip().splitlines()[-1]}); is a display "
                "available? Use --serve 8080 instead."
            ) from None
        self._open = True
        self._fps = FpsAnnotator() if fps else None

    def show(self, image: np.ndarray) -> bool:
        """Display an RGB image; False when the user closed the window or pressed q/Esc."""
        import cv2

        if not self._open:
            return False
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # a new array: safe to draw on
        if self._fps is not None:
            bgr = self._fps.annotate(bgr, None)  # white text: same in BGR and RGB
        cv2.imshow(self.title, bgr)
        key = cv2.waitKey(1) & 0xFF
        visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        if key in (ord("q"), 27) or not visible:
            self.close()
        return self._open

    def close(self) -> None:
        import cv2

        if self._open:
            self._open = False
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
