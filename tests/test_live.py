"""The live web view over loopback: page, MJPEG stream of real JPEGs, stats, bounds, shutdown."""

from __future__ import annotations

import http.client
import json
import socket
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from facegraph import Graph
from facegraph.config import graph_from_yaml
from facegraph.vision.live import (
    LiveServer,
    LiveViewError,
    LiveWindow,
    graph_stats_dict,
    gui_available,
    parse_serve_address,
)

TIMEOUT = 5.0


def frame(red: int = 200, h: int = 48, w: int = 64) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2, 0] = red  # left half red (RGB)
    img.flags.writeable = False
    return img


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with LiveServer("127.0.0.1", 0) as s:
        yield s


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
        return r.status, r.headers["Content-Type"], r.read()


def read_mjpeg_part(conn: http.client.HTTPResponse) -> bytes:
    """One part of a multipart/x-mixed-replace body: boundary, headers, JPEG bytes."""
    line = conn.fp.readline()
    while line in (b"\r\n", b"\n"):
        line = conn.fp.readline()
    assert line.strip() == b"--facegraphframe", line
    length = None
    while True:
        header = conn.fp.readline().strip()
        if not header:
            break
        name, _, value = header.partition(b":")
        if name.lower() == b"content-type":
            assert value.strip() == b"image/jpeg"
        if name.lower() == b"content-length":
            length = int(value)
    assert length is not None
    return conn.fp.read(length)


class Producer:
    """Publishes frames from a thread until stopped (like a running pipeline)."""

    def __init__(self, server: LiveServer, period: float = 0.01, faces: int = 2) -> None:
        self._stop = threading.Event()
        self.count = 0

        def run() -> None:
            while not self._stop.is_set():
                server.publish(frame(), faces=faces)
                self.count += 1
                time.sleep(period)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)


def test_binds_loopback_by_default() -> None:
    with LiveServer(port=0) as s:
        assert s.host == "127.0.0.1"
        assert s.url == f"http://127.0.0.1:{s.port}/"
        assert s._httpd.server_address[0] == "127.0.0.1"


def test_page_has_the_stream_and_polls_the_stats(server: LiveServer) -> None:
    status, ctype, body = get(server.url)
    assert status == 200 and ctype.startswith("text/html")
    page = body.decode()
    assert 'src="stream.mjpg"' in page and "stats.json" in page


def test_mjpeg_stream_delivers_decodable_jpegs_of_the_newest_frame(server: LiveServer) -> None:
    producer = Producer(server)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        conn.request("GET", "/stream.mjpg")
        response = conn.getresponse()
        assert response.status == 200
        assert response.headers["Content-Type"] == (
            "multipart/x-mixed-replace; boundary=facegraphframe"
        )
        for _ in range(3):
            data = read_mjpeg_part(response)
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and image.shape == (48, 64, 3)
            assert image[24, 10, 2] > 170 and image[24, 10, 0] < 40  # red on the left (BGR)
            assert image[24, 54].max() < 40  # black on the right
        conn.close()
    finally:
        producer.stop()


def test_single_frame_endpoint(server: LiveServer) -> None:
    server.publish(frame(red=255, h=30, w=40))
    status, ctype, body = get(server.url + "frame.jpg")
    assert status == 200 and ctype == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape == (30, 40, 3)


def test_stats_report_fps_faces_size_and_node_timings() -> None:
    # Real per-node timings from a profiled run of a small graph.
    spec = graph_from_yaml(
        textwrap.dedent(
            """
            outputs: [n]
            nodes:
              - name: counter
                calculator: CountSource
                outputs: {OUT: n}
                options: {count: 20}
            """
        )
    )
    graph = Graph(spec, mode="deterministic", profile=True)
    graph.start()
    graph.wait_until_done(timeout=TIMEOUT)
    with LiveServer("127.0.0.1", 0, stats=lambda: graph_stats_dict(graph.stats())) as server:
        start = time.monotonic()
        for i in range(11):
            if i:
                time.sleep(0.02)
            server.publish(frame(), faces=3)
        span = time.monotonic() - start
        status, ctype, body = get(server.url + "stats.json")
    assert status == 200 and ctype == "application/json"
    stats = json.loads(body)
    assert stats["frames"] == 11 and stats["faces"] == 3
    assert (stats["width"], stats["height"]) == (64, 48)
    # 10 intervals between the first and last publish: at least the 10 sleeps of 20 ms,
    # at most what this test measured around them (so no bound depends on machine speed).
    assert 10 / span - 0.01 <= stats["fps"] <= 10 / 0.2 + 0.01
    (node,) = stats["nodes"]
    assert node["node"] == "counter" and node["calculator"] == "CountSource"
    # The page serves the graph's own per-node figures (rounded to µs).
    (own,) = graph.stats().nodes
    assert node["calls"] == own.calls >= 20
    assert node["mean_ms"] == round(own.mean_ms, 3) and node["p50_ms"] == round(own.p50_ms, 3)


def test_stats_before_any_frame(server: LiveServer) -> None:
    stats = json.loads(get(server.url + "stats.json")[2])
    assert stats["frames"] == 0 and stats["fps"] == 0 and stats["nodes"] == []


def test_a_viewer_that_never_reads_does_not_slow_publishing() -> None:
    big = frame(h=720, w=1280)
    with LiveServer("127.0.0.1", 0) as server:
        stuck = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        stuck.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")  # and never reads
        time.sleep(0.2)
        start = time.perf_counter()
        for _ in range(300):
            server.publish(big, faces=1)
        elapsed = time.perf_counter() - start
        stuck.close()
    assert elapsed < 0.5, elapsed  # no encoding, no socket work on the producer's thread


def test_too_many_viewers_get_503() -> None:
    with LiveServer("127.0.0.1", 0, max_clients=1) as server:
        server.publish(frame())
        first = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        first.request("GET", "/stream.mjpg")
        assert first.getresponse().status == 200
        with pytest.raises(urllib.error.HTTPError) as info:
            get(server.url + "stream.mjpg")
        assert info.value.code == 503
        first.close()


def test_unknown_path_is_404(server: LiveServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        get(server.url + "nope")
    assert info.value.code == 404


def test_close_ends_open_streams_and_frees_the_port() -> None:
    server = LiveServer("127.0.0.1", 0)
    server.publish(frame())
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    conn.request("GET", "/stream.mjpg")
    response = conn.getresponse()
    read_mjpeg_part(response)
    start = time.perf_counter()
    server.close()
    assert time.perf_counter() - start < 3
    # The stream ends (EOF) instead of hanging.
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and response.fp.readline():
        pass
    assert time.monotonic() < deadline
    conn.close()
    # The port can be bound again.
    again = LiveServer("127.0.0.1", server.port)
    again.close()


def test_port_in_use_is_a_clear_error(server: LiveServer) -> None:
    with pytest.raises(LiveViewError, match=f"cannot serve on 127.0.0.1:{server.port}"):
        LiveServer("127.0.0.1", server.port)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8080", ("127.0.0.1", 8080)),
        (8081, ("127.0.0.1", 8081)),
        ("0.0.0.0:9000", ("0.0.0.0", 9000)),
        ("[::1]:9001", ("::1", 9001)),
        (":9002", ("127.0.0.1", 9002)),
    ],
)
def test_parse_serve_address(text: str | int, expected: tuple[str, int]) -> None:
    assert parse_serve_address(text) == expected


@pytest.mark.parametrize("text", ["http", "localhost:x", "70000"])
def test_bad_serve_addresses_are_clear_errors(text: str) -> None:
    with pytest.raises(LiveViewError, match="--serve"):
        parse_serve_address(text)


@pytest.mark.skipif(gui_available(), reason="this OpenCV build has a GUI")
def test_show_without_a_gui_build_points_to_serve() -> None:
    with pytest.raises(LiveViewError, match="--serve"):
        LiveWindow()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_live_view_node_serves_the_graph_images() -> None:
    port = free_port()
    spec = graph_from_yaml(
        textwrap.dedent(
            f"""
            inputs: [image, faces]
            nodes:
              - calculator: LiveView
                inputs: {{IMAGE: image, FACES: faces}}
                options: {{serve: "127.0.0.1:{port}"}}
            """
        )
    )
    graph = Graph(spec, mode="threads")
    graph.start()
    graph.add_packet("image", frame(), 0)
    graph.add_packet("faces", ["a", "b"], 0)
    graph.add_packet("image", frame(), 1)
    graph.wait_until_idle(timeout=TIMEOUT)
    stats = json.loads(get(f"http://127.0.0.1:{port}/stats.json")[2])
    assert stats["frames"] >= 1 and stats["width"] == 64
    body = get(f"http://127.0.0.1:{port}/frame.jpg")[2]
    assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape == (48, 64, 3)
    graph.close_all_inputs()
    graph.wait_until_done(timeout=TIMEOUT)
    with pytest.raises(OSError):  # closed with the graph
        get(f"http://127.0.0.1:{port}/stats.json")
