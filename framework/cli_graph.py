from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Added by the run command module (work in progress)."""
