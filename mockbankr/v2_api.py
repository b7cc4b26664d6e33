"""The x402 flavour (``/v2/*``), used by ``@bankr/sdk``: pay per prompt, sign per job read.

``POST /v2/prompt`` without ``X-PAYMENT`` answers the x402 v1 challenge (402).
With it, the body is validated first (a bad body is a 400 and costs nothing),
then the payment is verified locally (signature, recipient, amount, validity
window, network, scheme) and, in one atomic store operation, its nonce is
claimed, a ledger entry is written and the job is created, owned by the payer.
Nothing is ever settled. A refused payment is a 402 whose ``error`` names the
reason in the x402 vocabulary, and charges nothing.

The validity window of a payment is checked on ``payment_clock``: wall time for
a live server, since the SDK signs it with ``Date.now()`` however fast the
simulated clock runs; the simulated clock in-process, where the reference client
signs with that clock.

``GET /v2/job/{id}`` and ``POST /v2/job/{id}/cancel`` need the EIP-191
``wallet-address``/``x-signature``/``x-message`` headers of the paying wallet.
"""

from __future__ import annotations

from typing import Any, Literal

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from mockbankr import wire
from mockbankr._http import read_prompt_object, valid_prompt
from mockbankr.clock import Clock
from mockbankr.context import RequestContext, context_of
from mockbankr.core import Simulator
from mockbankr.errors import ApiError, JobAuthError, PaymentRejected
from mockbankr.job_auth import verify_job_signature
from mockbankr.jobs import cancel_body
from mockbankr.journal import prompt_key
from mockbankr.ledger import LedgerEntry
from mockbankr.money import PaymentTerms
from mockbankr.x402 import (
    PaymentReason,
    challenge_body,
    claimed_payer,
    payment_response_header,
    transaction_hash,
    verify_payment,
)

__all__ = ["V2Api", "parse_v2_prompt_body"]

PROMPT_ACCEPTED = "Prompt submitted successfully. Use the jobId to check status."


def parse_v2_prompt_body(data: dict[str, Any]) -> str:
    """Validate ``{prompt, walletAddress?, xmtp?}`` like the API-key prompt; the prompt."""
    prompt = valid_prompt(data)
    wallet = data.get("walletAddress")
    if wallet is not None and not isinstance(wallet, str):
        raise wire.invalid_json("walletAddress must be a string")
    xmtp = data.get("xmtp")
    if xmtp is not None and not isinstance(xmtp, bool):
        raise wire.invalid_json("xmtp must be a boolean")
    return prompt


class V2Api:
    """The ``/v2/*`` endpoints over the shared :class:`~mockbankr.core.Simulator`.

    Example::

        api = V2Api(sim, PaymentTerms())
        Route("/v2/prompt", api.prompt, methods=["POST"])
    """

    def __init__(self, sim: Simulator, terms: PaymentTerms, *, payment_clock: Clock) -> None:
        self._sim = sim
        self._terms = terms
        self._payment_clock = payment_clock

    def _refuse(self, request: Request, reason: str, detail: str | None = None) -> ApiError:
        body = challenge_body(self._terms, str(request.url), error=reason)
        extra = {k: v for k, v in body.items() if k != "error"}
        # x402 bodies carry no `message`; the SDK reads `error`. The detail helps humans.
        return ApiError(402, reason, detail or reason, extra=extra)

    async def prompt(self, request: Request) -> Response:
        header = request.headers.get("x-payment")
        if not header:
            raise self._refuse(request, "X-PAYMENT header is required", "Payment required")
        prompt = parse_v2_prompt_body(await read_prompt_object(request))
        context_of(request.scope).prompt_hash = prompt_key(prompt)
        now = self._sim.clock.now()
        try:
            paid = verify_payment(header, self._terms, self._payment_clock.now())
        except PaymentRejected as exc:
            raise self._refuse(request, exc.reason, exc.detail) from exc
        owner = "wallet:" + paid.payer
        ctx = context_of(request.scope)
        ctx.owner = paid.payer
        job = await self._sim.new_job(prompt, owner=owner, shape=ctx.shape)
        entry = LedgerEntry(
            payer=paid.payer,
            amount_atomic=paid.value,  # what the transfer would move: overpaying costs more
            asset=self._terms.asset,
            network=paid.network,
            nonce=paid.nonce,
            job_id=job.id,
            prompt=prompt,
            at=now,
            transaction=transaction_hash(paid.nonce),
        )
        if not await self._sim.store.add_paid(job, entry):
            raise self._refuse(
                request, PaymentReason.NONCE_REUSED, "this authorization's nonce was used before"
            )
        ctx.job_id = job.id
        return wire.JSONResponse(
            {
                "success": True,
                "jobId": job.id,
                "status": "pending",
                "message": PROMPT_ACCEPTED,
                "price": {"amount": str(self._terms.price_atomic), "asset": self._terms.asset},
            },
            status_code=202,
            headers={"X-PAYMENT-RESPONSE": payment_response_header(paid)},
        )

    @staticmethod
    def identify(scope: Scope) -> str | None:
        """Who the caller claims to be: the ``wallet-address`` of a signed job request,
        else the payer an ``X-PAYMENT`` names; unverified.

        The steering rules and the journal use this claim; :meth:`authenticate`
        (and the payment check of :meth:`prompt`) verify it by its signature.
        """
        payment = None
        for name, value in scope["headers"]:
            if name == b"wallet-address" and value:
                wallet: str = value.decode("latin-1")
                return wallet
            if name == b"x-payment" and payment is None:
                payment = value.decode("latin-1")
        return claimed_payer(payment)

    def authenticate(
        self,
        scope: Scope,
        ctx: RequestContext,
        job_id: str,
        action: Literal["status", "cancel"] = "status",
    ) -> str:
        """The owner id of the wallet that signed this job request, or a 401.

        The signature must be the claimed wallet's (:meth:`identify`).
        """
        ctx.job_id = job_id
        try:
            wallet = verify_job_signature(Headers(scope=scope), job_id, action)
        except JobAuthError as exc:
            raise ApiError(401, "Authentication required", f"{exc.reason}: {exc.detail}") from exc
        ctx.owner = wallet
        return "wallet:" + wallet

    async def cancel(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        owner = self.authenticate(request.scope, context_of(request.scope), job_id, "cancel")
        return wire.JSONResponse(cancel_body(await self._sim.cancel(job_id, owner=owner)))
