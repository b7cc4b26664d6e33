"""The fast EIP-3009 digest and signer agree with eth-account's typed-data path."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from mockbankr.eip3009 import Transfer, TransferDomain, transfer_digest, transfer_signer

DOMAIN = TransferDomain("USD Coin", "2", 8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")
KEYS = [Account.from_key(bytes([n]) * 32) for n in (1, 2, 3)]
uint256 = st.integers(min_value=0, max_value=2**256 - 1)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
transfers = st.builds(
    Transfer,
    from_=st.sampled_from([key.address for key in KEYS]),
    to=addresses,
    value=uint256,
    valid_after=uint256,
    valid_before=uint256,
    nonce=st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()),
)


def _typed(domain: TransferDomain, transfer: Transfer) -> dict[str, object]:
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
            "name": domain.name,
            "version": domain.version,
            "chainId": domain.chain_id,
            "verifyingContract": domain.contract,
        },
        "message": {
            "from": transfer.from_,
            "to": transfer.to,
            "value": transfer.value,
            "validAfter": transfer.valid_after,
            "validBefore": transfer.valid_before,
            "nonce": bytes.fromhex(transfer.nonce[2:]),
        },
    }


@settings(max_examples=40, deadline=None)
@given(transfer=transfers, chain_id=st.sampled_from([8453, 84532]))
def test_the_digest_is_eth_accounts(transfer: Transfer, chain_id: int) -> None:
    domain = TransferDomain(DOMAIN.name, DOMAIN.version, chain_id, DOMAIN.contract)
    signable = encode_typed_data(full_message=_typed(domain, transfer))
    expected = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert transfer_digest(domain, transfer) == expected


@settings(max_examples=20, deadline=None)
@given(transfer=transfers, index=st.sampled_from(range(len(KEYS))))
def test_the_signer_is_the_key_that_signed(transfer: Transfer, index: int) -> None:
    account = KEYS[index]
    signature = account.sign_typed_data(full_message=_typed(DOMAIN, transfer)).signature
    recovered = transfer_signer(DOMAIN, transfer, signature.to_0x_hex())
    assert recovered == bytes.fromhex(account.address[2:])


def test_another_field_or_domain_recovers_someone_else() -> None:
    transfer = Transfer(KEYS[0].address, "0x" + "ab" * 20, 100000, 0, 2**40, "0x" + "07" * 32)
    signature = KEYS[0].sign_typed_data(full_message=_typed(DOMAIN, transfer)).signature.to_0x_hex()
    signer = bytes.fromhex(KEYS[0].address[2:])
    assert transfer_signer(DOMAIN, transfer, signature) == signer
    paid_less = Transfer(**{**transfer.__dict__, "value": 99999})
    assert transfer_signer(DOMAIN, paid_less, signature) not in (None, signer)
    sepolia = TransferDomain(DOMAIN.name, DOMAIN.version, 84532, DOMAIN.contract)
    assert transfer_signer(sepolia, transfer, signature) not in (None, signer)


def test_unusable_signatures_recover_nobody() -> None:
    transfer = Transfer(KEYS[0].address, "0x" + "ab" * 20, 1, 0, 1, "0x" + "00" * 32)
    for signature in ("0x", "0x" + "00" * 65, "0x" + "11" * 64 + "1d", "zz" * 65, "0x" + "ff" * 65):
        assert transfer_signer(DOMAIN, transfer, signature) is None, signature
