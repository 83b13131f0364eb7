"""The REST API (FastAPI): the HTTP contract of ``/work/shared/API.md``, served exactly."""
