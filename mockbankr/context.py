"""What one request learns on its way through the server, in one typed object.

The steering layer creates a :class:`RequestContext` for every Bankr request;
the flavours fill in who the caller is and which job it is about, steering
hands down a job shape and notes the fault it injected, and the journal reads
the result. It travels in the ASGI scope under :data:`CONTEXT_KEY`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from mockbankr.rules import JobShape

__all__ = ["CONTEXT_KEY", "RequestContext", "context_of"]

CONTEXT_KEY: Final = "mockbankr.context"
"""The ASGI scope key of a request's :class:`RequestContext`."""


@dataclass(slots=True)
class RequestContext:
    """One request's findings. Every field starts unknown (``None``).

    ``owner`` is who the caller is, as the journal shows it (the API key's
    fingerprint, never the key, or the wallet), once a flavour authenticated it;
    ``job_id`` the job the request is about (or created); ``shape`` a ``job``
    action for the prompt handler; ``fault`` the kind of steering action the
    request got (``rule_id`` the rule that chose it, if a rule did); ``prompt_hash`` a
    hash of the prompt a request carried and ``job_status`` the status a poll
    answered (both for the journal's verdicts).

    Example::

        ctx = context_of(scope)
        ctx.owner, ctx.job_id = key_fingerprint("bk_1"), "job_X"
    """

    owner: str | None = None
    job_id: str | None = None
    shape: JobShape | None = None
    fault: str | None = None
    rule_id: str | None = None
    prompt_hash: str | None = None
    job_status: str | None = None


def context_of(scope: MutableMapping[str, Any]) -> RequestContext:
    """The context of the request in ``scope``, created on first use.

    Example::

        context_of(request.scope).job_id = job.id
    """
    ctx: RequestContext | None = scope.get(CONTEXT_KEY)
    if ctx is None:
        ctx = scope[CONTEXT_KEY] = RequestContext()
    return ctx
