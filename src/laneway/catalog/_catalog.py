"""Queries over the loaded catalog: lookup by id or alias, filters, close matches."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from laneway.catalog._model import ModelInfo
from laneway.errors import ModelNotFound

__all__ = ["Catalog"]


class Catalog:
    """An immutable set of models, looked up by id or alias (case-insensitive)."""

    __slots__ = ("_index", "models", "updated", "version")

    def __init__(
        self, models: Iterable[ModelInfo], *, version: int = 1, updated: str | None = None
    ) -> None:
        self.models: tuple[ModelInfo, ...] = tuple(models)
        self.version = version
        self.updated = updated
        index: dict[str, ModelInfo] = {}
        for model in self.models:
            for name in (model.id, *model.aliases):
                key = name.lower()
                other = index.get(key)
                if other is not None and other is not model:
                    raise ValueError(f"name {name!r} is used by both {other.id!r} and {model.id!r}")
                index[key] = model
        self._index = index

    def __len__(self) -> int:
        return len(self.models)

    def __repr__(self) -> str:
        return f"Catalog({len(self.models)} models, updated={self.updated!r})"

    def get(self, name: str) -> ModelInfo | None:
        """The model whose id or alias is ``name`` (any case), or ``None``."""
        return self._index.get(name.strip().lower())

    def require(self, name: str) -> ModelInfo:
        """Like ``get`` but raises ``ModelNotFound`` naming the closest known names."""
        model = self.get(name)
        if model is not None:
            return model
        matches = self.close_matches(name)
        hint = f"; did you mean {', '.join(matches)}?" if matches else ""
        raise ModelNotFound(f"model {name!r} is not in the catalog{hint}", param="model")

    def close_matches(self, name: str, limit: int = 3) -> tuple[str, ...]:
        """Ids of the models whose id or alias is closest to ``name``."""
        found = difflib.get_close_matches(
            name.strip().lower(), self._index, n=limit * 3, cutoff=0.5
        )
        ids: list[str] = []
        for key in found:
            model_id = self._index[key].id
            if model_id not in ids:
                ids.append(model_id)
        return tuple(ids[:limit])

    def filter(
        self,
        *,
        open_weights: bool | None = None,
        license: str | None = None,
        origin: str | None = None,
    ) -> tuple[ModelInfo, ...]:
        """Models matching every given criterion.

        ``license`` matches a license id or a licence class; ``origin`` an ISO alpha-2
        code; both case-insensitively. ``None`` leaves a criterion out.
        """
        lic = license.lower() if license is not None else None
        org = origin.upper() if origin is not None else None
        return tuple(
            m
            for m in self.models
            if (open_weights is None or m.open_weights == open_weights)
            and (lic is None or lic in (m.license_id.lower(), m.license_class))
            and (org is None or m.origin == org)
        )
