"""The API's routers, one per concept; ``connects.api.app`` mounts them under ``/v1``."""
