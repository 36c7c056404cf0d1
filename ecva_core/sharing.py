"""Rules for an explorer shared beyond this machine: who may submit, and what one upload may spend.

``ecva serve explorer --address 0.0.0.0`` lets anyone who reaches the port use the Submit page,
and with a judge configured, spend its API budget. On an address other than loopback, submitting
needs ``ECVA_SUBMIT_TOKEN`` (without it the page is read-only); on loopback it stays token-free.
``ECVA_JUDGE_MAX_COST`` (in the units of ``ECVA_JUDGE_PRICE_IN/OUT``) and ``ECVA_JUDGE_MAX_CALLS``
cap what one upload may cost the judge; one over the cap is scored with text metrics only.
The apps ask these functions and draw their answers.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ecva_core.errors import ConfigError

if TYPE_CHECKING:
    from ecva_core.metrics.judge.engine import JudgePlan

SUBMIT_TOKEN_VAR = "ECVA_SUBMIT_TOKEN"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


@dataclass(frozen=True)
class SharingSettings:
    """The submit token (a secret, never shown or stored) and the per-upload judge limits (None: none)."""

    submit_token: str | None = field(default=None, repr=False)
    judge_max_cost: float | None = None
    judge_max_calls: int | None = None


def _limit(name: str, kind: type[float] | type[int]) -> float | int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{name}={raw!r} is not a valid limit: give a number of at least 0, or leave it unset")
    return value


def sharing_settings() -> SharingSettings:
    """Read ``ECVA_SUBMIT_TOKEN``, ``ECVA_JUDGE_MAX_COST`` and ``ECVA_JUDGE_MAX_CALLS`` from the environment."""
    calls = _limit("ECVA_JUDGE_MAX_CALLS", int)
    return SharingSettings(
        submit_token=os.environ.get(SUBMIT_TOKEN_VAR, "").strip() or None,
        judge_max_cost=_limit("ECVA_JUDGE_MAX_COST", float),
        judge_max_calls=None if calls is None else int(calls),
    )


def is_loopback(address: str | None) -> bool:
    """True when a server bound to ``address`` is reachable from this machine only.

    ``None`` or an empty address means every interface (Streamlit's default), so it is not loopback.
    """
    text = (address or "").strip().strip("[]").lower()
    if not text:
        return False
    if text in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def token_matches(given: str | None, expected: str | None) -> bool:
    """Compare a typed token with the configured one in constant time; no token configured never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class SubmitAccess:
    """What the Submit page may do for this visitor, and the sentence that explains it."""

    can_submit: bool
    sees_upload_log: bool
    needs_token: bool
    reason: str


def submit_access(address: str | None, given_token: str | None, settings: SharingSettings) -> SubmitAccess:
    """Decide whether the visitor of an explorer bound to ``address`` may upload and see the upload log."""
    if is_loopback(address):
        return SubmitAccess(True, True, False, "served on loopback: only this machine can reach it")
    if settings.submit_token is None:
        return SubmitAccess(
            False,
            False,
            False,
            f"This explorer is shared on {address or 'every network interface'} and no submit token is set, so "
            f"the Submit page is read-only. Whoever runs it can set {SUBMIT_TOKEN_VAR} to allow uploads.",
        )
    if token_matches(given_token, settings.submit_token):
        return SubmitAccess(True, True, True, "token accepted")
    if given_token:
        return SubmitAccess(False, False, True, "That submit token is not right; nothing can be uploaded.")
    return SubmitAccess(
        False,
        False,
        True,
        "This explorer is shared: enter the submit token (ask whoever runs it) to upload a submission.",
    )


@dataclass(frozen=True)
class JudgeBudget:
    """Whether one upload may use the judge, and why not when it may not."""

    allowed: bool
    reason: str = ""


def judge_budget(plan: JudgePlan, settings: SharingSettings) -> JudgeBudget:
    """Allow the judge for an upload whose estimated calls and cost stay within the configured limits."""
    if settings.judge_max_calls is not None and plan.calls_needed > settings.judge_max_calls:
        return JudgeBudget(
            False,
            f"judging it would take about {plan.calls_needed:,} calls, over the limit of "
            f"{settings.judge_max_calls:,} per upload (ECVA_JUDGE_MAX_CALLS)",
        )
    if settings.judge_max_cost is not None and plan.est_cost > settings.judge_max_cost:
        return JudgeBudget(
            False,
            f"judging it would cost about {plan.est_cost:.2f}, over the limit of {settings.judge_max_cost:g} "
            "per upload (ECVA_JUDGE_MAX_COST, in the units of ECVA_JUDGE_PRICE_IN/OUT)",
        )
    return JudgeBudget(True)
