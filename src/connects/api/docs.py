"""``/docs``: Swagger UI from the vendored copy (``/static/vendor``), never a CDN, so the
API's interactive docs work on a machine without internet."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

VENDOR = "/static/vendor"  # the dashboard's static files (connects.web.install)


def install(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` (the app is created with ``docs_url=None``)."""

    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui.css",
            swagger_favicon_url="data:,",
            # No badge fetched from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.add_api_route("/docs", swagger_ui, include_in_schema=False, name="swagger_ui")
