"""MediaPipe model files: manifest, fetch, verification, cache, and LiteRT inference."""
