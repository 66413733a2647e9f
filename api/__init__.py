"""HTTP API: a FastAPI app over the store and the live household state."""

from api.app import create_app

__all__ = ["create_app"]
