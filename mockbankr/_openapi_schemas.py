"""The component schemas of :mod:`mockbankr.openapi`, and the helpers that write them.

Split out to keep each module readable; the document is assembled in ``openapi.py``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import msgspec

from mockbankr.accounts import KeysDocument, Plan
from mockbankr.jobs import JobFault, JobStatus
from mockbankr.ledger import JOB_STATUSES, LedgerEntry
from mockbankr.money import NETWORK_CHAIN_IDS
from mockbankr.rules import FRAMING_HEADERS, MAX_PATTERN_LENGTH, RULE_ID_PATTERN, Rule
from mockbankr.validate import (
    AFTER,
    DELAY,
    LATENCY,
    PROBABILITY,
    RESPOND_STATUS,
    SPEED,
    TIMES,
)
from mockbankr.verdicts import CHECKS, THRESHOLD_BOUNDS
from mockbankr.wire import MAX_PROMPT_LENGTH, PROMPT_SPACE
from mockbankr.x402 import PaymentReason

__all__ = [
    "ADDRESS",
    "ATOMIC",
    "BOOL",
    "COUNT",
    "ISO",
    "NUM",
    "Opt",
    "PROMPT",
    "SECONDS",
    "STATUSES",
    "STR",
    "Schema",
    "TRUE",
    "USDC",
    "array",
    "bankr_schemas",
    "control_schemas",
    "enum_of",
    "error_shape",
    "job_schemas",
    "nullable",
    "obj",
    "ref",
    "struct_schemas",
    "tighten",
]

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
COUNT: Schema = {"type": "integer", "minimum": 0}
SECONDS: Schema = {"type": "number", "minimum": 0}
ISO: Schema = {"type": "string", "format": "date-time"}
ADDRESS: Schema = {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}
ATOMIC: Schema = {"type": "string", "pattern": "^[0-9]+$", "description": "USDC atomic units"}
USDC: Schema = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]*[1-9])?$"}
#: A prompt: not blank (a character other than ASCII white space), 10,000 at most.
PROMPT: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_PROMPT_LENGTH,
    "pattern": f"[^{PROMPT_SPACE.encode('unicode_escape').decode()}]",
}
TRUE: Schema = {"const": True}
STATUSES: Schema = {"type": "string", "enum": [status.value for status in JobStatus]}


@dataclass(frozen=True)
class Opt:
    """A property that is sometimes left out."""

    schema: Schema


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def enum_of(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def array(items: Schema, **constraints: Any) -> Schema:
    return {"type": "array", "items": items, **constraints}


def obj(_open: bool = False, /, **fields: Schema | Opt) -> Schema:
    """An object with these properties, all sent unless wrapped in :class:`Opt`."""
    return {
        "type": "object",
        "properties": {k: v.schema if isinstance(v, Opt) else v for k, v in fields.items()},
        "required": [k for k, v in fields.items() if not isinstance(v, Opt)],
        "additionalProperties": _open,
    }


def error_shape(*texts: str, **extra: Schema) -> Schema:
    """The wire error shape; ``texts`` are the possible ``error`` values."""
    return obj(error=enum_of(*texts) if texts else STR, message=STR, **extra)


# -- component schemas ---------------------------------------------------------------------


def job_schemas() -> dict[str, Schema]:
    """``JobStatus`` (``jobs.job_body``): one closed variant per status, told by ``status``."""
    item = {"type": "object", "required": ["type"], "properties": {"type": STR}}

    def variant(status: JobStatus, **fields: Schema | Opt) -> Schema:
        common: dict[str, Schema | Opt] = {
            "success": TRUE,
            "jobId": STR,
            "threadId": STR,
            "status": {"const": status.value},
            "prompt": STR,
            "createdAt": ISO,
            "cancellable": {"const": not status.terminal},
            "statusUpdates": array(ref("StatusUpdate")),
        }
        return obj(**(common | fields))

    ms = {"type": "integer", "minimum": 0, "description": "milliseconds"}
    variants = {
        "JobPending": variant(JobStatus.PENDING, statusUpdates=array(STR, maxItems=0)),
        "JobProcessing": variant(JobStatus.PROCESSING, startedAt=ISO),
        "JobCompleted": variant(
            JobStatus.COMPLETED,
            startedAt=ISO,
            completedAt=ISO,
            processingTime=ms,
            response=STR,
            richData=array(item),
            transactions=Opt(array(item)),
        ),
        "JobFailed": variant(JobStatus.FAILED, startedAt=ISO, completedAt=ISO, error=STR),
        "JobCancelled": variant(JobStatus.CANCELLED, startedAt=Opt(ISO), cancelledAt=ISO),
    }
    mapping = {name[3:].lower(): f"#/components/schemas/{name}" for name in variants}
    return {
        **variants,
        "StatusUpdate": obj(message=STR, timestamp=ISO),
        "JobStatus": {
            "description": "A job now; which fields are present depends on its status.",
            "oneOf": [ref(name) for name in variants],
            "discriminator": {"propertyName": "status", "mapping": mapping},
        },
        "CancelledJob": obj(
            success=TRUE,
            jobId=STR,
            status={"const": JobStatus.CANCELLED.value},
            prompt=STR,
            createdAt=ISO,
            cancelledAt=ISO,
        ),
    }


def tighten(prop: Schema, **constraints: Any) -> None:
    """Add constraints to a property, to its non-null alternative if it may be null."""
    branches = [s for s in prop.get("anyOf", ()) if s != {"type": "null"}]
    (branches[0] if len(branches) == 1 else prop).update(constraints)


def struct_schemas(categories: tuple[str, ...]) -> dict[str, Schema]:
    """Generated from the msgspec structs, then tightened to what ``parse_rule`` enforces
    (and what adding a rule checks: ``categories``, the server's timing categories).
    """
    _, found = msgspec.json.schema_components(
        [Rule, JobFault, LedgerEntry, KeysDocument], ref_template="#/components/schemas/{name}"
    )
    for schema in found.values():
        schema.pop("title", None)
        schema["description"] = schema.get("description", "").split("\n")[0]
    props = {name: schema["properties"] for name, schema in found.items() if "properties" in schema}
    # An optional key may be null, which means what leaving it out means; a listed rule
    # never carries a null (msgspec omits defaults). An action key is never null
    # (parse_rule refuses it): the one key present is the action.
    for key, value in props["Action"].items():
        props["Action"][key] = next(s for s in value["anyOf"] if s != {"type": "null"})
    found["Rule"]["required"] = ["action"]
    found["Action"].update(minProperties=1, maxProperties=1)  # exactly one action
    # What parse_rule checks across the keys of a job action.
    found["JobShape"]["allOf"] = [
        {
            "if": {"required": ["error"], "properties": {"error": STR}},
            "then": {"properties": {"outcome": {"enum": ["failed", None]}}},
        },
        {
            "if": {"required": ["after"], "properties": {"after": NUM}},
            "then": {"required": ["outcome"], "properties": {"outcome": {"const": "vanish"}}},
        },
    ]
    # The bounds are the ones parse_rule checks, through mockbankr.validate.
    tighten(props["Rule"]["times"], **TIMES.json_schema(integer=True))
    tighten(props["Rule"]["probability"], **PROBABILITY.json_schema())
    tighten(props["Rule"]["id"], pattern=RULE_ID_PATTERN)
    props["Match"]["path"]["description"] = "a glob, e.g. /agent/job/*"
    tighten(props["Match"]["prompt"], format="regex", maxLength=MAX_PATTERN_LENGTH)
    props["Match"]["prompt"]["description"] = "a regex, searched"
    props["Respond"]["status"].update(RESPOND_STATUS.json_schema(integer=True))
    tighten(
        props["Respond"]["headers"], propertyNames=_HEADER_NAME, additionalProperties=_HEADER_VALUE
    )
    props["Delay"]["seconds"].update(DELAY.json_schema())
    props["Hang"]["seconds"].update(DELAY.json_schema())
    tighten(props["JobShape"]["latency"], **LATENCY.json_schema())
    tighten(props["JobShape"]["after"], **AFTER.json_schema())
    for name in ("Match", "JobShape"):
        tighten(props[name]["category"], enum=list(categories))
    listed = copy.deepcopy(found["Rule"])
    listed["properties"]["remaining"] = nullable(COUNT)
    listed.update(required=["action", "id", "remaining"], description="A rule as stored")
    found["JobFault"].update(required=["kind", "at"], additionalProperties=False)
    ledger = found["LedgerEntry"]  # summarize() sends the amount as strings
    ledger["properties"].update(amountAtomic=ATOMIC, amountUsdc=USDC)
    ledger.update(required=[*ledger["required"], "amountUsdc"], additionalProperties=False)
    listing = copy.deepcopy(found["KeyEntry"])
    listing["properties"]["dailyLimit"] = nullable(listing["properties"]["dailyLimit"])
    listing.update(required=sorted(listing["properties"]), description="A key as known now")
    return {**found, "RuleListing": listed, "KeyListing": listing}


def control_schemas() -> dict[str, Schema]:
    money = obj(count=COUNT, totalAtomic=ATOMIC, totalUsdc=USDC)
    job = obj(
        jobId=STR,
        owner={
            "type": "string",
            "description": "key:<the API key's fingerprint> or wallet:<address>; never a key",
        },
        ownerLabel={"type": "string", "description": "a wallet, or an API key's fingerprint"},
        prompt=STR,
        category=STR,
        status=STATUSES,
        schedule=obj(
            createdAt=ISO, startedAt=ISO, finishedAt=nullable(ISO), cancelledAt=nullable(ISO)
        ),
        outcome=enum_of("completed", "failed"),
        fault=nullable(ref("JobFault")),
        costUsdc={**USDC, "description": "what the job would have cost (the server's price)"},
    )
    detail = copy.deepcopy(job)
    detail["properties"]["body"] = ref("JobStatus")
    detail["required"].append("body")
    duplicate = obj(
        payer=ADDRESS,
        prompt=STR,
        count={"type": "integer", "minimum": 2},
        jobIds=array(STR, minItems=2),
        firstAt=NUM,
        lastAt=NUM,
        extraAtomic=ATOMIC,
        extraUsdc=USDC,
    )
    account = obj(
        plan=nullable(enum_of(*Plan)),
        dailyLimit=nullable({"type": "integer", "minimum": 1}),
        wallet=Opt(STR),
        used={**COUNT, "description": "prompts in the account's 24 h window now"},
    )
    book = obj(
        open={"type": "boolean", "description": "any other non-empty key is accepted"},
        accounts={"type": "object", "additionalProperties": account},
        keys=array(ref("KeyListing")),
    )
    return {
        "KeyBook": book,
        "Clock": obj(
            now=ISO,
            unix=NUM,
            kind=enum_of("virtual", "scaled", "real"),
            speed=nullable(SPEED.json_schema()),
        ),
        "ControlJob": job,
        "ControlJobDetail": detail,
        "JournalEntry": obj(
            seq={
                "type": "integer",
                "minimum": 1,
                "description": "arrival order; it goes on through a reset",
            },
            state={
                "type": "string",
                "enum": ["in-flight", "done"],
                "description": "in-flight: arrived, not answered yet (status 0, latencyMs"
                " the wall time so far, simLatencyMs 0); done: ended",
            },
            method={**STR, "maxLength": 256},
            path={**STR, "maxLength": 256, "description": "cut to 256 characters (ending in …)"},
            status={
                "type": "integer",
                "minimum": 0,
                "description": "0: no answer was sent (a drop, a client gone) or none yet",
            },
            owner={
                **nullable(STR),
                "maxLength": 256,
                "description": "a wallet, or an API key's fingerprint (bk_…, then 12 hex"
                " digits of its SHA-256); never a key",
            },
            jobId=nullable(STR),
            simTime={**ISO, "description": "arrival, simulated"},
            wallTime={**ISO, "description": "arrival, wall clock"},
            latencyMs={**SECONDS, "description": "wall time to answer"},
            simLatencyMs={**SECONDS, "description": "simulated time to answer (a delay rule)"},
            fault=nullable(STR),
            userAgent={**nullable(STR), "maxLength": 256},
            promptHash={
                **nullable(STR),
                "description": "a hash of a prompt's text, never the text",
            },
            retryAfter={**nullable(SECONDS), "description": "an error answer's Retry-After"},
            jobStatus={**nullable(STR), "description": "the job status a poll answered"},
        ),
        "LedgerSummary": obj(
            count=COUNT,
            totalAtomic=ATOMIC,
            totalUsdc=USDC,
            assets=array(ADDRESS),
            networks=array(STR),
            byPayer={"type": "object", "additionalProperties": money},
            byStatus=obj(**{status: money for status in (*JOB_STATUSES, "unknown")}),
            duplicates=array(duplicate),
            duplicateCount=COUNT,
            duplicateExtraAtomic=ATOMIC,
            duplicateExtraUsdc=USDC,
            entries=Opt(array(ref("LedgerEntry"))),  # absent with ?entries=false
        ),
        "Verdicts": _verdicts(),
    }


def _verdicts() -> Schema:
    """``GET /__mock/verdicts`` (``verdicts.Report.to_json``)."""
    evidence = obj(
        seq={"type": "integer", "minimum": 1},
        simTime=ISO,
        method=STR,
        path=STR,
        status=COUNT,
        jobStatus=Opt(STATUSES),
    )
    verdict = obj(
        verdict=enum_of("pass", "fail", "not-exercised"),
        count=Opt({"type": "integer", "minimum": 1}),
        evidence=Opt(array(obj(message=STR, entries=array(evidence)))),
        usdcWasted=Opt(USDC),
    )
    client = obj(
        owner={"type": "string", "description": "a wallet, or an API key's fingerprint"},
        userAgents=array(STR),
        requests=COUNT,
        failed=array(enum_of(*CHECKS)),
        usdcWasted=USDC,
        verdicts=obj(**{check: verdict for check in CHECKS}),
    )
    window = obj(
        complete=BOOL,
        entries=COUNT,
        dropped=COUNT,
        since=nullable(ISO),
        note=nullable(STR),
        **{"from": nullable(ISO), "to": nullable(ISO)},
    )
    limits: dict[str, Schema] = {
        name: {"type": "integer" if integral else "number", "minimum": low, "maximum": high}
        for name, (low, high, integral) in THRESHOLD_BOUNDS.items()
    }
    return obj(
        failed=BOOL,
        now=nullable(ISO),
        window=window,
        thresholds=obj(**limits, price_usdc=USDC),
        unattributed=COUNT,
        clients=array(client),
    )


def bankr_schemas() -> dict[str, Schema]:
    pending = {"const": JobStatus.PENDING.value}
    return {
        # null, like a missing key, means no thread / no wallet / no XMTP (as an empty id):
        # what a client that serialises an unset field sends, and what the API accepts.
        "PromptRequest": obj(True, prompt=PROMPT, threadId=Opt(nullable(STR))),
        "PromptAccepted": obj(success=TRUE, jobId=STR, threadId=STR, status=pending, message=STR),
        "V2PromptRequest": obj(
            True, prompt=PROMPT, walletAddress=Opt(nullable(STR)), xmtp=Opt(nullable(BOOL))
        ),
        "V2PromptAccepted": obj(
            success=TRUE,
            jobId=STR,
            status=pending,
            message=STR,
            price=obj(amount=ATOMIC, asset=ADDRESS),
        ),
        "PaymentRequirements": obj(
            scheme={"const": "exact"},
            network=enum_of(*NETWORK_CHAIN_IDS),
            maxAmountRequired=ATOMIC,
            resource={"type": "string", "format": "uri"},
            description=STR,
            mimeType=STR,
            payTo=ADDRESS,
            maxTimeoutSeconds={"type": "integer", "minimum": 1},
            asset=ADDRESS,
            outputSchema={"type": "object"},
            extra=obj(name=STR, version=STR),
        ),
        "PaymentRequired": error_shape(
            "X-PAYMENT header is required",
            *PaymentReason,
            x402Version={"const": 1},
            accepts=array(ref("PaymentRequirements"), minItems=1),
        ),
        # A thread and a wallet: what a prompt's threadId and an x402 prompt's walletAddress
        # refer to. Named, so that the document says where they come from (a prompt's 202,
        # /wallet/me); schemathesis starts stateful scenarios only with operations whose
        # references some operation produces.
        "Thread": {
            "type": "object",
            "description": "A conversation: pass its threadId with the next prompt to go on",
            "required": ["threadId"],
            "properties": {"threadId": STR},
        },
        "Wallet": obj(chain=enum_of("evm", "solana"), address=STR),
        "Me": obj(
            success=TRUE,
            wallets=array(ref("Wallet")),
            socialAccounts=array(obj(platform=STR, username=Opt(STR))),
            refCode=Opt(STR),
            bankrClub=obj(active=BOOL, subscriptionType=Opt(STR), renewOrCancelOn=Opt(NUM)),
            leaderboard=obj(score=NUM, rank=Opt(NUM)),
        ),
    }


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)  # a-z and -


#: A response header a rule may set: an RFC 9110 token, not one mockbankr frames with
#: (JSON Schema patterns have no case-insensitive flag, so each letter is a class).
_HEADER_NAME: Schema = {
    "type": "string",
    "pattern": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
    "not": {"pattern": "^(" + "|".join(_any_case(h) for h in sorted(FRAMING_HEADERS)) + ")$"},
}
#: Its value: printable Latin-1 and tabs, no line breaks or other controls.
_HEADER_VALUE: Schema = {"type": "string", "pattern": "^[\\t\\u0020-\\u007e\\u0080-\\u00ff]*$"}
