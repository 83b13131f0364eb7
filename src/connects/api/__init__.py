"""The REST API (FastAPI): the HTTP contract of ``docs/api.md``, served exactly."""
