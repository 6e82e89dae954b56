"""/api/v1/transactions and /api/v1/chargepoints/{cp_id}/transactions: charging sessions,
read-only (charge points write them), under company policy."""

from __future__ import annotations

from dashboard.api import bp
from dashboard.api.envelope import (
    bool_arg,
    datetime_arg,
    endpoint,
    int_arg,
    page_args,
    page_data,
    respond,
    text_arg,
)
from dashboard.schemas.charging import MeterValueSchema, TransactionSchema
from dashboard.schemas.connector import MAX_ID
from dashboard.services import charging as service

transaction_schema = TransactionSchema()
meter_value_schema = MeterValueSchema()


@bp.get("/transactions")
@endpoint("read.transaction")
def list_transactions(user):
    """Every transaction the caller may see, newest first.
    ---
    get:
      summary: List transactions
      description: "Permission `read.transaction`; company policy applies. Filters:
        `chargepoint_id`, `connector_id`, `id_tag` (case-insensitive), `from` and `to`
        (start time, ISO 8601), `active` (`true`: going on; `false`: stopped or orphan)."
      tags: [transactions]
      parameters:
        - {in: query, name: chargepoint_id, schema: {type: integer}}
        - {in: query, name: connector_id, schema: {type: integer}}
        - {in: query, name: id_tag, schema: {type: string}}
        - {in: query, name: from, schema: {type: string, format: date-time}}
        - {in: query, name: to, schema: {type: string, format: date-time}}
        - {in: query, name: active, schema: {type: string, enum: ["true", "false"]}}
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
        - {in: query, name: per_page, schema: {type: integer, minimum: 1, default: 20}}
      responses:
        200:
          description: Transactions retrieved successfully
          content:
            application/json:
              schema: TransactionPageResponse
    """
    page, per_page = page_args()
    result = service.list_transactions(
        user,
        cp_id=int_arg("chargepoint_id", default=0, minimum=0, maximum=MAX_ID) or None,
        connector_id=int_arg("connector_id", default=0, minimum=0, maximum=MAX_ID) or None,
        id_tag=text_arg("id_tag", max_length=20),
        since=datetime_arg("from"),
        until=datetime_arg("to"),
        active=bool_arg("active"),
        page=page,
        per_page=per_page,
    )
    return respond("Transactions retrieved successfully", page_data(result, transaction_schema))


@bp.get("/chargepoints/<id:cp_id>/transactions")
@endpoint("read.transaction")
def list_chargepoint_transactions(user, cp_id: int):
    """The transactions of one charge point, newest first.
    ---
    get:
      summary: Transactions of a charge point
      description: "Permission `read.transaction`; company policy applies (404 for a
        charge point of another company). `active` as for the list of all transactions."
      tags: [transactions]
      parameters:
        - {in: path, name: cp_id, required: true, schema: {type: integer}}
        - {in: query, name: active, schema: {type: string, enum: ["true", "false"]}}
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
        - {in: query, name: per_page, schema: {type: integer, minimum: 1, default: 20}}
      responses:
        200:
          description: Transactions retrieved successfully
          content:
            application/json:
              schema: TransactionPageResponse
    """
    page, per_page = page_args()
    result = service.list_transactions(
        user, cp_id=cp_id, active=bool_arg("active"), page=page, per_page=per_page
    )
    return respond("Transactions retrieved successfully", page_data(result, transaction_schema))


@bp.get("/transactions/<id:transaction_id>")
@endpoint("read.transaction")
def get_transaction(user, transaction_id: int):
    """One transaction with its meter values.
    ---
    get:
      summary: Get a transaction
      description: "Permission `read.transaction`; company policy applies. With every
        sampled value still kept (see METER_VALUES_RETENTION_DAYS): as sent (`value`,
        `unit`, ...) and `normalised` (energy in Wh, power in W, as decimal strings)."
      tags: [transactions]
      parameters:
        - {in: path, name: transaction_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Transaction retrieved successfully
          content:
            application/json:
              schema: TransactionDetailResponse
    """
    transaction = service.get_transaction(user, transaction_id)
    data = transaction_schema.dump(transaction)
    data["meter_values"] = meter_value_schema.dump(
        service.transaction_meter_values(transaction), many=True
    )
    return respond("Transaction retrieved successfully", data)
