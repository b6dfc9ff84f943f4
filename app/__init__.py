"""The facegraph application: command-line tools, the media runner, batch, bench,
evaluation and the ``FaceMesh`` façade.

It is built the way a user would build on facegraph: it uses the engine
(``facegraph``), the nodes (``facegraph.calculators``), the shared vision library
(``facegraph.vision``) and the model store (``facegraph.models``) through their
public APIs, and plugs its commands and public names into the engine through the
entry points declared in ``pyproject.toml``. Nothing below the application imports it.
"""
