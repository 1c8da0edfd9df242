"""Supply-chain pinning: a deployment's weights file must match its configured sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

from laneway.settings import DeploymentSettings

__all__ = ["pin_problem", "sha256_of"]


def sha256_of(path: Path, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def pin_problem(deployment: DeploymentSettings) -> str | None:
    """Why the deployment must not serve (``None`` when unpinned or the file matches).

    The file is ``model_file``, or for the embedded model its GGUF file."""
    if deployment.sha256 is None:
        return None
    path_text = deployment.model_file
    if path_text is None and deployment.provider == "local":
        local = deployment.local
        if local is not None and local.model_path:
            path_text = local.model_path
        else:
            from laneway.providers import default_gguf_path

            path_text = str(default_gguf_path())
    if path_text is None:
        return "sha256 pinned but no model_file to check"
    path = Path(path_text)
    if not path.is_file():
        return f"pinned model file not found: {path}"
    actual = sha256_of(path)
    if actual != deployment.sha256.lower():
        return (
            f"model file {path.name} has sha256 {actual[:16]}…, the config pins "
            f"{deployment.sha256[:16]}…: refusing to serve it"
        )
    return None
