"""The two ways to authenticate: an API key (``/agent/*``) or x402 payment (``/v2/*``).

An auth object decides the paths, headers and prompt body of each request, and (for x402)
answers a ``402`` challenge by signing a payment locally. Nothing here does I/O; signing uses
``eth-account`` (the ``bankr-client[x402]`` extra, imported only when an
:class:`X402Auth` is built), no hand-written crypto, and never contacts a chain.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from bankr_client.errors import ConfigError, PaymentRequiredError

__all__ = ["USDC_BASE", "ApiKeyAuth", "Auth", "X402Auth", "transfer_with_authorization"]

#: USDC on Base, the asset the Bankr x402 endpoint asks for (6 decimals).
USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
#: USDC on Base Sepolia.
_USDC_BASE_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
#: The x402 v1 networks this client can pay on, with their EIP-155 chain ids and USDC.
_NETWORKS = {"base": (8453, USDC_BASE), "base-sepolia": (84532, _USDC_BASE_SEPOLIA)}
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_UINT = re.compile(r"^[0-9]+$")
#: x402-fetch signs an authorization valid from 10 minutes ago, against clock skew.
_VALID_AFTER_SLACK = 600


#: What to install when eth-account is missing (it is only needed to pay and sign).
X402_EXTRA_HINT = "X402Auth needs eth-account: pip install 'bankr-client[x402]'"


def _eth_account() -> Any:
    """``eth_account.Account``, imported on first use so API-key users never need it."""
    try:
        from eth_account import Account
    except ModuleNotFoundError as exc:
        raise ImportError(X402_EXTRA_HINT, name=exc.name) from exc
    return Account


def _job_segment(job_id: str) -> str:
    # A job id is one path segment: "../x" or "a/b" must not escape it.
    return quote(job_id, safe="")


class ApiKeyAuth:
    """``X-API-Key`` authentication for the ``/agent/*`` endpoints (what ``@bankr/cli`` uses).

    ``BankrClient(api_key=...)`` builds one for you; ``partner_key`` adds the CLI's optional
    ``X-Partner-Key`` header.

    Example::

        client = BankrClient(auth=ApiKeyAuth("bk_live_...", partner_key="pk_..."))
    """

    prompt_path = "/agent/prompt"

    def __init__(self, api_key: str, *, partner_key: str | None = None) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigError("api_key must be a non-empty string")
        self._api_key = api_key.strip()
        self._partner_key = partner_key

    def __repr__(self) -> str:
        return f"ApiKeyAuth({self._api_key[:3]}...)"

    def _headers(self) -> dict[str, str]:
        headers = {"X-API-Key": self._api_key}
        if self._partner_key:
            headers["X-Partner-Key"] = self._partner_key
        return headers

    def prompt_headers(self) -> dict[str, str]:
        """Headers of a prompt request."""
        return self._headers()

    def prompt_body(self, prompt: str, thread_id: str | None) -> dict[str, Any]:
        """``{"prompt", "threadId"?}``; ``threadId`` is left out when ``None``."""
        body: dict[str, Any] = {"prompt": prompt}
        if thread_id is not None:
            body["threadId"] = thread_id
        return body

    def job_path(self, job_id: str) -> str:
        """Path of the job status request."""
        return f"/agent/job/{_job_segment(job_id)}"

    def cancel_path(self, job_id: str) -> str:
        """Path of the cancel request."""
        return f"/agent/job/{_job_segment(job_id)}/cancel"

    def job_headers(self, job_id: str, *, cancel: bool) -> dict[str, str]:
        """Headers of a job status (or cancel) request."""
        return self._headers()


class X402Auth:
    """x402 payment for the ``/v2/*`` endpoints (what ``@bankr/sdk`` uses).

    A ``402`` on ``/v2/prompt`` is answered by signing an EIP-712 ``TransferWithAuthorization``
    (EIP-3009) for the requested amount, at most ``max_payment_usdc`` (default 1 USDC, the
    official SDK's cap), and resending the prompt once with ``X-PAYMENT``. Job requests carry
    ``wallet-address`` (the payer), ``x-signature`` (EIP-191) and ``x-message``.

    ``now`` gives unix seconds for the authorization's validity window. When it is not given,
    a client that was built with its own ``clock=`` uses ``clock.now()`` (every simulator clock
    counts unix seconds, so a virtual-time run signs windows the simulator accepts); with the
    default clock it is ``time.time``. ``nonce`` returns the 32 random bytes of each payment
    (default ``secrets.token_bytes``): a nonce must never repeat against a real server.

    Example::

        auth = X402Auth("0x" + "11" * 32, max_payment_usdc=0.5)
        client = BankrClient("http://127.0.0.1:8402", auth=auth)
        client.prompt_and_wait("what is the price of ETH?")
    """

    prompt_path = "/v2/prompt"

    def __init__(
        self,
        private_key: str | bytes,
        max_payment_usdc: float | Decimal | str = 1.0,
        *,
        now: Callable[[], float] | None = None,
        nonce: Callable[[], bytes] | None = None,
        wallet_address: str | None = None,
    ) -> None:
        account_type = _eth_account()
        try:
            self._account = account_type.from_key(private_key)
        except Exception:  # eth-account raises several types for a bad key
            raise ConfigError("private_key is not a valid secp256k1 private key") from None
        try:
            cap = Decimal(str(max_payment_usdc))
        except InvalidOperation:
            raise ConfigError(f"max_payment_usdc is not a number: {max_payment_usdc!r}") from None
        if not cap.is_finite() or cap < 0:
            raise ConfigError(f"max_payment_usdc must be >= 0, got {max_payment_usdc!r}")
        if wallet_address is not None and not _ADDRESS.match(wallet_address):
            raise ConfigError(f"wallet_address is not an address: {wallet_address!r}")
        #: The cap in USDC atomic units (6 decimals): 1.0 -> 1000000.
        self.max_amount: int = int(cap * 10**6)
        self.now = now
        self._nonce = nonce if nonce is not None else (lambda: secrets.token_bytes(32))
        self.wallet_address = wallet_address

    @property
    def address(self) -> str:
        """The checksummed payer address, derived from the private key."""
        address: str = self._account.address
        return address

    def __repr__(self) -> str:
        return f"X402Auth(address={self.address!r}, max_amount={self.max_amount})"

    def prompt_headers(self) -> dict[str, str]:
        """Headers of a prompt request (``wallet-address`` only with a context wallet)."""
        return {"wallet-address": self.wallet_address} if self.wallet_address else {}

    def prompt_body(self, prompt: str, thread_id: str | None) -> dict[str, Any]:
        """``{"prompt", "walletAddress"?}``; ``/v2/prompt`` has no threads."""
        if thread_id is not None:
            raise ConfigError(
                "the x402 flavour (/v2/prompt) has no threads; thread_id must be None"
            )
        body: dict[str, Any] = {"prompt": prompt}
        if self.wallet_address:
            body["walletAddress"] = self.wallet_address
        return body

    def job_path(self, job_id: str) -> str:
        """Path of the job status request."""
        return f"/v2/job/{_job_segment(job_id)}"

    def cancel_path(self, job_id: str) -> str:
        """Path of the cancel request."""
        return f"/v2/job/{_job_segment(job_id)}/cancel"

    def job_headers(self, job_id: str, *, cancel: bool) -> dict[str, str]:
        """``wallet-address``, ``x-signature`` (EIP-191 personal_sign) and ``x-message``.

        Example::

            auth.job_headers("job_1", cancel=False)["x-message"]  # "Get job status for job_1"
        """
        message = f"Cancel job {job_id}" if cancel else f"Get job status for {job_id}"
        from eth_account.messages import encode_defunct

        signed = self._account.sign_message(encode_defunct(text=message))
        return {
            "wallet-address": self.address,
            "x-signature": signed.signature.to_0x_hex(),
            "x-message": message,
        }

    def pay(self, challenge: Mapping[str, Any], *, now: float) -> str:
        """The ``X-PAYMENT`` header answering a 402 body, or :class:`PaymentRequiredError`.

        ``now`` is unix seconds. Raises without signing anything when the challenge is not x402
        v1, offers nothing payable on Base, is malformed, or asks more than the cap.

        Example::

            header = auth.pay(response.json(), now=time.time())
        """
        requirement = _select(challenge)
        amount = int(requirement["maxAmountRequired"])
        if amount > self.max_amount:
            raise _refuse(
                challenge,
                f"payment of {amount} atomic units exceeds the cap of {self.max_amount}",
            )
        network = requirement["network"]
        start = int(now)
        authorization = {
            "from": self.address,
            "to": requirement["payTo"],
            "value": str(amount),
            "validAfter": str(max(0, start - _VALID_AFTER_SLACK)),
            "validBefore": str(start + int(requirement["maxTimeoutSeconds"])),
            "nonce": "0x" + self._nonce().hex(),
        }
        typed = transfer_with_authorization(
            authorization,
            name=requirement["extra"]["name"],
            version=requirement["extra"]["version"],
            chain_id=_NETWORKS[network][0],
            asset=requirement["asset"],
        )
        signature = self._account.sign_typed_data(full_message=typed).signature.to_0x_hex()
        payment = {
            "x402Version": challenge["x402Version"],
            "scheme": "exact",
            "network": network,
            "payload": {"signature": signature, "authorization": authorization},
        }
        return base64.b64encode(json.dumps(payment, separators=(",", ":")).encode()).decode()


#: The :class:`ApiKeyAuth` or :class:`X402Auth` a client was given.
Auth = ApiKeyAuth | X402Auth


def transfer_with_authorization(
    authorization: Mapping[str, str], *, name: str, version: str, chain_id: int, asset: str
) -> dict[str, Any]:
    """The EIP-712 ``TransferWithAuthorization`` message for an ``authorization`` of strings.

    Used to sign, and by tests to recover the signer with ``encode_typed_data(full_message=)``.

    Example::

        typed = transfer_with_authorization(auth_dict, name="USD Coin", version="2",
                                            chain_id=8453, asset=USDC_BASE)
    """
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"},
                {"name": "nonce", "type": "bytes32"},
            ],
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": asset,
        },
        "message": {
            "from": authorization["from"],
            "to": authorization["to"],
            "value": int(authorization["value"]),
            "validAfter": int(authorization["validAfter"]),
            "validBefore": int(authorization["validBefore"]),
            "nonce": bytes.fromhex(authorization["nonce"].removeprefix("0x")),
        },
    }


def _refuse(challenge: Mapping[str, Any], reason: str) -> PaymentRequiredError:
    accepts = challenge.get("accepts")
    error = challenge.get("error")
    version = challenge.get("x402Version")
    return PaymentRequiredError(
        402,
        error if isinstance(error, str) else None,
        reason,
        challenge,
        accepts=[a for a in accepts if isinstance(a, Mapping)] if isinstance(accepts, list) else (),
        x402_version=version if isinstance(version, int) else None,
    )


def _payable(item: Any) -> bool:
    if not isinstance(item, Mapping):
        return False
    extra = item.get("extra")
    timeout = item.get("maxTimeoutSeconds")
    return (
        item.get("scheme") == "exact"
        and item.get("network") in _NETWORKS
        and isinstance(item.get("maxAmountRequired"), str)
        and bool(_UINT.match(item["maxAmountRequired"]))
        and isinstance(item.get("payTo"), str)
        and bool(_ADDRESS.match(item["payTo"]))
        and isinstance(item.get("asset"), str)
        and bool(_ADDRESS.match(item["asset"]))
        and isinstance(timeout, int)
        and not isinstance(timeout, bool)
        and timeout > 0
        # Without the token's EIP-712 name and version the signature is worthless.
        and isinstance(extra, Mapping)
        and isinstance(extra.get("name"), str)
        and isinstance(extra.get("version"), str)
    )


def _select(challenge: Mapping[str, Any]) -> Mapping[str, Any]:
    """The requirement to pay: exact scheme on a known network, USDC preferred.

    Unlike x402-fetch, never falls back to an entry on a network we cannot pay on.
    """
    if challenge.get("x402Version") != 1:
        raise _refuse(challenge, "only x402 version 1 challenges can be paid")
    accepts = challenge.get("accepts")
    if not isinstance(accepts, list):
        raise _refuse(challenge, "the 402 body has no accepts list")
    payable: list[Mapping[str, Any]] = [item for item in accepts if _payable(item)]
    if not payable:
        raise _refuse(challenge, "no payment requirement this client can pay (exact, Base)")
    for item in payable:
        if item["asset"].lower() == _NETWORKS[item["network"]][1].lower():
            return item
    return payable[0]
