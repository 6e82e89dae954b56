"""Remote operations from the charge point page (superadmins): Reset, TriggerMessage,
ClearCache, the configuration read live with writable keys changed in place,
RemoteStartTransaction, and RemoteStopTransaction from the connector page. Each answer
is a small fragment shown where it was asked (and kept there)."""

from __future__ import annotations

from flask import render_template, request
from flask_login import current_user

from dashboard.pages import bp, command_answer
from dashboard.pages.forms import load
from dashboard.schemas.commands import (
    ConfigurationChangeSchema,
    DataTransferSchema,
    RemoteStartSchema,
    ResetSchema,
    TriggerSchema,
)
from dashboard.services import commands
from dashboard.services.errors import (
    Invalid,
    ServiceUnavailable,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)

reset_schema, trigger_schema = ResetSchema(), TriggerSchema()
configuration_schema, remote_start_schema = ConfigurationChangeSchema(), RemoteStartSchema()
data_transfer_schema = DataTransferSchema()


@bp.post("/chargepoints/<id:cp_id>/reset")
def reset(cp_id: int):
    """Reset Soft or Hard (Hard after the browser's confirmation)."""

    def run():
        kind = load(reset_schema, {"type": request.form.get("type")})["type"]
        return commands.reset(current_user, cp_id, kind, "ui")

    return command_answer(f"answer-ops-{cp_id}", run)


@bp.post("/chargepoints/<id:cp_id>/clear-cache")
def clear_cache(cp_id: int):
    """ClearCache."""
    return command_answer(
        f"answer-ops-{cp_id}", lambda: commands.clear_cache(current_user, cp_id, "ui")
    )


@bp.post("/chargepoints/<id:cp_id>/trigger")
def trigger(cp_id: int):
    """TriggerMessage of a message, for a connector or the whole charge point."""

    def run():
        connector = request.form.get("connector_id", "").strip()
        data = load(
            trigger_schema,
            {
                "requested_message": request.form.get("requested_message"),
                "connector_id": int(connector) if connector.isdigit() else None,
            },
        )
        return commands.trigger_message(
            current_user, cp_id, data["requested_message"], data.get("connector_id"), "ui"
        )

    return command_answer(f"answer-trigger-{cp_id}", run)


@bp.post("/chargepoints/<id:cp_id>/data-transfer")
def data_transfer(cp_id: int):
    """DataTransfer of vendor-specific data to the charge point."""

    def run():
        form = request.form
        data = load(
            data_transfer_schema,
            {
                "vendor_id": form.get("vendor_id", ""),
                "message_id": form.get("message_id", "").strip() or None,
                "data": form.get("data") or None,
            },
        )
        return commands.data_transfer(
            current_user, cp_id, data["vendor_id"], data.get("message_id"), data.get("data"), "ui"
        )

    return command_answer(f"answer-transfer-{cp_id}", run)


@bp.get("/chargepoints/<id:cp_id>/configuration")
def configuration(cp_id: int):
    """The charge point's configuration, read live (htmx fragment)."""
    try:
        answer = commands.get_configuration(current_user, cp_id, [], "ui")
        failure = None
    except (Unavailable, ServiceUnavailable, UpstreamError, UpstreamTimeout) as exc:
        answer, failure = None, exc.message
    return render_template(
        "operations/_configuration.html", cp_id=cp_id, answer=answer, failure=failure
    )


@bp.post("/chargepoints/<id:cp_id>/configuration")
def change_configuration(cp_id: int):
    """ChangeConfiguration of one writable key, from the configuration table."""
    key = request.form.get("key", "")

    def run():
        data = load(configuration_schema, {"key": key, "value": request.form.get("value", "")})
        return commands.change_configuration(current_user, cp_id, data["key"], data["value"], "ui")

    return command_answer(f"answer-config-{cp_id}-{key_id(key)}", run)


def key_id(key: str) -> str:
    """A configuration key as a piece of an element id."""
    return "".join(ch if ch.isalnum() else "-" for ch in key)[:50]


@bp.post("/chargepoints/<id:cp_id>/remote-start")
def remote_start(cp_id: int):
    """RemoteStartTransaction on a connector for a tag."""

    def run():
        connector = request.form.get("connector_id", "")
        if not connector.isdigit() or not 0 < int(connector) < 2**31:
            raise Invalid("Invalid connector", {"connector_id": ["Choose a connector."]})
        data = load(
            remote_start_schema,
            {"connector_cp_id": cp_id, "id_tag": request.form.get("id_tag", "")},
        )
        return commands.remote_start(current_user, cp_id, int(connector), data["id_tag"], "ui")

    return command_answer(f"answer-start-{cp_id}", run)


@bp.post("/transactions/<id:transaction_id>/remote-stop")
def remote_stop(transaction_id: int):
    """RemoteStopTransaction of a session going on (after the browser's confirmation)."""
    return command_answer(
        f"answer-stop-{transaction_id}",
        lambda: commands.remote_stop(current_user, transaction_id, "ui"),
    )
