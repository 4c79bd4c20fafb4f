"""Checks every request passes before a view sees it: row ids that fit the database, and no
NUL characters in the path, the query or a form (PostgreSQL cannot store one in text); and
the headers every response carries, so a browser runs no script, frames no page and guesses
no content type (the pages need none of that)."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.routing import IntegerConverter

from hub.inputs import MAX_ROW_ID


class IdOutOfRange(NotFound):
    """A row id in the path past the largest the database holds: no such record."""


class RowIdConverter(IntegerConverter):
    """``<int:...>`` in every route: a row id, at most ``MAX_ROW_ID``."""

    def to_python(self, value: str) -> Any:
        number = super().to_python(value)
        if number > MAX_ROW_ID:
            raise IdOutOfRange(f"id {number} does not exist (ids go up to {MAX_ROW_ID})")
        return number


def refuse_nul_characters() -> None:
    """Raise 400 naming the part of the request that holds a NUL character."""
    if "\x00" in request.path:
        raise BadRequest("the path contains a NUL character")
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise BadRequest(f"query parameter {name!r} contains a NUL character")
    if request.mimetype == "application/x-www-form-urlencoded":  # the UI's forms
        for name, value in request.form.items(multi=True):
            if "\x00" in name or "\x00" in value:
                raise BadRequest(f"form field {name!r} contains a NUL character")


# The pages are server-rendered without script; inline style attributes draw bars and heat
# maps. Evidence files (customers' uploads) are served under the same policy.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; object-src 'none'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    """Give a response the headers of ``SECURITY_HEADERS`` it does not set itself."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def install(app: Flask) -> None:
    """Register the converter (before any route), the request check and the response
    headers on ``app``."""
    app.url_map.converters["int"] = RowIdConverter
    app.before_request(refuse_nul_characters)
    app.after_request(add_security_headers)
