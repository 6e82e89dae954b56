"""/api/v1/webhooks: a company's webhook endpoints, their delivery log, redelivery.
Superadmins manage any company's; company users their own company's."""

from __future__ import annotations

from dashboard.api import bp
from dashboard.api.envelope import endpoint, load_request, page_args, page_data, respond
from dashboard.schemas.envelope import EmptySchema
from dashboard.schemas.integrations import (
    RedeliverSchema,
    WebhookCreateSchema,
    WebhookDeliverySchema,
    WebhookEndpointSchema,
    WebhookSecretSchema,
    WebhookUpdateSchema,
)
from dashboard.services import webhooks as service

endpoint_schema = WebhookEndpointSchema()
secret_schema = WebhookSecretSchema()
delivery_schema = WebhookDeliverySchema()
create_schema = WebhookCreateSchema()
update_schema = WebhookUpdateSchema()
redeliver_schema = RedeliverSchema()
empty_schema = EmptySchema()

_PATH = {"in": "path", "name": "webhook_id", "required": True}


@bp.get("/webhooks")
@endpoint("read.webhook")
def list_webhooks(user):
    """Webhook endpoints the caller may see.
    ---
    get:
      summary: List webhook endpoints
      description: "Permission `read.webhook`; company policy applies. Secrets are never
        listed."
      tags: [webhooks]
      parameters:
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
        - {in: query, name: per_page, schema: {type: integer, minimum: 1, default: 20}}
      responses:
        200:
          description: Webhook endpoints retrieved successfully
          content:
            application/json:
              schema: WebhookPageResponse
    """
    page, per_page = page_args()
    result = service.list_endpoints(user, page=page, per_page=per_page)
    return respond("Webhook endpoints retrieved successfully", page_data(result, endpoint_schema))


@bp.post("/webhooks")
@endpoint("create.webhook")
def create_webhook(user):
    """Add a webhook endpoint; the answer holds its secret, shown this once.
    ---
    post:
      summary: Create a webhook endpoint
      description: "Permission `create.webhook`. A superadmin names the `company_id`; a
        company user's endpoint is their company's. `event_types`: the types wanted
        (empty or missing: every type). The endpoint gets the events committed from now
        on, signed with `secret` (Standard Webhooks). Loopback, private and link-local
        addresses are refused unless WEBHOOK_ALLOWED_NETWORKS allows them."
      tags: [webhooks]
      requestBody:
        content:
          application/json:
            schema: WebhookCreateRequest
      responses:
        201:
          description: Webhook endpoint created successfully
          content:
            application/json:
              schema: WebhookSecretResponse
    """
    created = service.create_endpoint(user, **load_request(create_schema))
    return respond("Webhook endpoint created successfully", secret_schema.dump(created), 201)


@bp.get("/webhooks/<id:webhook_id>")
@endpoint("read.webhook")
def get_webhook(user, webhook_id: int):
    """One webhook endpoint, with its delivery state.
    ---
    get:
      summary: Get a webhook endpoint
      description: "Permission `read.webhook`; company policy applies. `disabled_reason`
        says why an endpoint was disabled (after failing for a day, or by whom)."
      tags: [webhooks]
      parameters:
        - {in: path, name: webhook_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Webhook endpoint retrieved successfully
          content:
            application/json:
              schema: WebhookResponse
    """
    found = service.get_endpoint(user, webhook_id)
    return respond("Webhook endpoint retrieved successfully", endpoint_schema.dump(found))


@bp.put("/webhooks/<id:webhook_id>")
@endpoint("update.webhook")
def update_webhook(user, webhook_id: int):
    """Change a webhook endpoint; `enabled: true` restarts a disabled one.
    ---
    put:
      summary: Update a webhook endpoint
      description: "Permission `update.webhook`; company policy applies. Enabling a
        disabled endpoint delivers from where it stopped, with a clean slate of attempts."
      tags: [webhooks]
      parameters:
        - {in: path, name: webhook_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: WebhookUpdateRequest
      responses:
        200:
          description: Webhook endpoint updated successfully
          content:
            application/json:
              schema: WebhookResponse
    """
    changed = service.update_endpoint(user, webhook_id, **load_request(update_schema))
    return respond("Webhook endpoint updated successfully", endpoint_schema.dump(changed))


@bp.delete("/webhooks/<id:webhook_id>")
@endpoint("delete.webhook")
def delete_webhook(user, webhook_id: int):
    """Remove a webhook endpoint and its delivery log.
    ---
    delete:
      summary: Delete a webhook endpoint
      description: "Permission `delete.webhook`; company policy applies. The body, if
        any, is an envelope with `req_data: {}`."
      tags: [webhooks]
      parameters:
        - {in: path, name: webhook_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Webhook endpoint deleted successfully
          content:
            application/json:
              schema: EmptyResponse
    """
    load_request(empty_schema, body_optional=True)
    service.delete_endpoint(user, webhook_id)
    return respond("Webhook endpoint deleted successfully", {})


@bp.post("/webhooks/<id:webhook_id>/secret")
@endpoint("update.webhook")
def rotate_webhook_secret(user, webhook_id: int):
    """A new secret for the endpoint, shown this once.
    ---
    post:
      summary: Rotate a webhook endpoint's secret
      description: "Permission `update.webhook`; company policy applies. The old secret
        stops signing at once. The body, if any, is an envelope with `req_data: {}`."
      tags: [webhooks]
      parameters:
        - {in: path, name: webhook_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Webhook secret rotated successfully
          content:
            application/json:
              schema: WebhookSecretResponse
    """
    load_request(empty_schema, body_optional=True)
    rotated = service.rotate_secret(user, webhook_id)
    return respond("Webhook secret rotated successfully", secret_schema.dump(rotated))


@bp.get("/webhooks/<id:webhook_id>/deliveries")
@endpoint("read.webhook")
def list_webhook_deliveries(user, webhook_id: int):
    """The endpoint's delivery log, newest first.
    ---
    get:
      summary: Deliveries of a webhook endpoint
      description: "Permission `read.webhook`; company policy applies. One entry per
        attempt: status code, error, response excerpt, duration."
      tags: [webhooks]
      parameters:
        - {in: path, name: webhook_id, required: true, schema: {type: integer}}
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
        - {in: query, name: per_page, schema: {type: integer, minimum: 1, default: 20}}
      responses:
        200:
          description: Deliveries retrieved successfully
          content:
            application/json:
              schema: WebhookDeliveryPageResponse
    """
    page, per_page = page_args()
    result = service.list_deliveries(user, webhook_id, page=page, per_page=per_page)
    return respond("Deliveries retrieved successfully", page_data(result, delivery_schema))


@bp.post("/webhooks/<id:webhook_id>/deliveries")
@endpoint("update.webhook")
def redeliver_webhook(user, webhook_id: int):
    """Send one event to the endpoint again, now.
    ---
    post:
      summary: Redeliver an event
      description: "Permission `update.webhook`; company policy applies. The event must
        still be kept (EVENTS_RETENTION_DAYS). The attempt is logged as manual; the
        ordered deliveries go on as before."
      tags: [webhooks]
      parameters:
        - {in: path, name: webhook_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: RedeliverRequest
      responses:
        201:
          description: Event redelivered
          content:
            application/json:
              schema: WebhookDeliveryResponse
    """
    event_id = load_request(redeliver_schema)["event_id"]
    delivery = service.redeliver(user, webhook_id, event_id)
    return respond("Event redelivered", delivery_schema.dump(delivery), 201)
