"""Herald: a self-hosted, Svix-compatible webhook delivery service."""

from api.app import create_app

__all__ = ["create_app"]
