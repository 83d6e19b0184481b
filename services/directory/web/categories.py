"""``/api/v1/categories``: the partner-category vocabulary (public)."""

from __future__ import annotations

from litestar import get

from services.directory.web.schemas import CategoryOut
from shared import categories


@get("/api/v1/categories", tags=["categories"], summary="Partner categories", sync_to_thread=False)
def list_categories() -> list[CategoryOut]:
    return [CategoryOut.from_category(category) for category in categories.load().values()]
