"""Built-in calculators: core flow nodes, sources and sinks, and the face pipeline nodes."""
