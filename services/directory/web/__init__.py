"""The directory's HTTP edge: :func:`create_app` and the controllers it mounts."""

from services.directory.web.app import create_app

__all__ = ["create_app"]
