"""The API's error answers, as documented in its OpenAPI schema.

Every error is JSON ``{"detail": ..., "error"?: ...}``: ``detail`` says what is wrong and what to do
(a list of problems for a request that fails FastAPI's own validation, 422), ``error`` names the
project's error type (``PavementError`` subclasses, ``DataError``). ``responses(*codes)`` documents
the codes an operation can answer with, so that clients (and the schemathesis tests) know them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

DESCRIPTIONS = {
    400: "bad request: a header or parameter the service cannot use (the detail says which)",
    401: "no valid bearer token (send 'Authorization: Bearer <token>')",
    403: "the token's role may not do this",
    404: "not found (or not visible to this token)",
    409: "conflict with the current state (the detail says what to do)",
    412: "tus: Tus-Resumable is missing or not 1.0.0",
    413: "too large (over the server's limits, or past the upload's length)",
    415: "wrong Content-Type",
    422: "invalid parameters or body",
    423: "tus: another request on this upload is in progress; retry",
    460: "tus: Upload-Checksum does not match the chunk",
}


class ErrorOut(BaseModel):
    """An error answer."""

    detail: str | list[dict[str, Any]] = Field(
        description="what is wrong and what to do; FastAPI's validation errors are a list"
    )
    error: str | None = Field(None, description="the project's error type, e.g. GpsTrackError")


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error ``codes``."""
    return {code: {"model": ErrorOut, "description": DESCRIPTIONS[code]} for code in codes}


#: Every operation that takes a token: 401, 403, and 422 (our own JSON, not FastAPI's default model).
AUTHENTICATED = responses(401, 403, 422)
