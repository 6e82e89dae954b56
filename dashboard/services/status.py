"""The OCPP 1.6 vocabulary of connector states, taken from `ocpp.v16.enums`, and the table
of expected transitions (OCPP 1.6 §4.9), used to flag anomalies, never to refuse."""

from __future__ import annotations

from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus, RegistrationStatus

STATUSES: tuple[str, ...] = tuple(status.value for status in ChargePointStatus)
ERROR_CODES: tuple[str, ...] = tuple(code.value for code in ChargePointErrorCode)
REGISTRATION_STATUSES: tuple[str, ...] = tuple(status.value for status in RegistrationStatus)

# The only states connectorId 0, the charge point's main controller, can take.
CHARGEPOINT_STATUSES = ("Available", "Unavailable", "Faulted")

OPERATIVE = frozenset(
    {"Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing", "Reserved"}
)

_ANY_BUT = frozenset(STATUSES).difference
EXPECTED_TRANSITIONS: dict[str, frozenset[str]] = {
    "Available": _ANY_BUT({"Available", "Finishing"}),
    "Preparing": frozenset(
        {"Available", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Faulted"}
    ),
    "Charging": frozenset(
        {"Available", "SuspendedEV", "SuspendedEVSE", "Finishing", "Unavailable", "Faulted"}
    ),
    "SuspendedEV": frozenset(
        {"Available", "Charging", "SuspendedEVSE", "Finishing", "Unavailable", "Faulted"}
    ),
    "SuspendedEVSE": frozenset(
        {"Available", "Charging", "SuspendedEV", "Finishing", "Unavailable", "Faulted"}
    ),
    "Finishing": frozenset({"Available", "Preparing", "Unavailable", "Faulted"}),
    "Reserved": frozenset({"Available", "Preparing", "Unavailable", "Faulted"}),
    "Unavailable": frozenset(
        {"Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Faulted"}
    ),
    "Faulted": _ANY_BUT({"Faulted"}),
}


def is_expected_transition(previous: str | None, new: str) -> bool:
    """Whether `previous` → `new` is in the table. A first status, or a repeat of the same
    status (a new error code, say), is not a transition and so never unexpected."""
    if previous is None or previous == new:
        return True
    return new in EXPECTED_TRANSITIONS.get(previous, frozenset())
