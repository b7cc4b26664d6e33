"""The Bankr wire format, built in one place: JSON encoding, timestamps and error bodies.

Error texts and status codes are the documented ones (``spec/bankr-wire.md``
sections 1.3-1.5). Handlers raise the :class:`~mockbankr.errors.ApiError` these
functions return; no handler writes an error body by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.responses import Response

from mockbankr.errors import ApiError

__all__ = [
    "MAX_PROMPT_LENGTH",
    "JSONResponse",
    "already_finished",
    "auth_required",
    "invalid_json",
    "invalid_request",
    "job_id_required",
    "job_not_found",
    "method_not_allowed",
    "prompt_too_long",
    "route_not_found",
    "server_error",
]

#: The documented maximum prompt length, in characters.
MAX_PROMPT_LENGTH = 10_000

_encoder = msgspec.json.Encoder()


class JSONResponse(Response):
    """A JSON response encoded with msgspec (several times faster than ``json``).

    Example::

        return JSONResponse({"success": True}, status_code=202)
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def invalid_request() -> ApiError:
    return ApiError(400, "Invalid request", "Request body must include a prompt")


def invalid_json(detail: str) -> ApiError:
    # Undocumented case; same error name as a missing prompt, with a message that helps.
    return ApiError(400, "Invalid request", f"Request body must be a JSON object ({detail})")


def prompt_too_long() -> ApiError:
    return ApiError(400, "Prompt too long", "Prompt must be 10,000 characters or less")


def auth_required() -> ApiError:
    return ApiError(401, "Authentication required", "Please provide a valid API key")


def job_id_required() -> ApiError:
    return ApiError(400, "Job ID required", "Please provide a job ID")


def job_not_found(job_id: str) -> ApiError:
    return ApiError(404, "Job not found", f"No job found with ID {job_id}")


def already_finished(job_id: str, status: str) -> ApiError:
    """Cancelling a completed or failed job (the message text is not documented)."""
    return ApiError(
        400, f"Job already {status}", f"Job {job_id} is already {status} and cannot be cancelled"
    )


def server_error(detail: str) -> ApiError:
    return ApiError(500, "Internal server error", detail)


def route_not_found(method: str, path: str) -> ApiError:
    return ApiError(404, "Not found", f"No route for {method} {path}")


def method_not_allowed(
    method: str, path: str, allowed: Mapping[str, str] | None = None
) -> ApiError:
    return ApiError(
        405, "Method not allowed", f"{method} is not allowed on {path}", headers=allowed
    )
