"""/api/v1/idtags: the id tags (RFID cards and other idTokens) of each company, which its
charge points authorize by. Superadmins manage them; company users read their own."""

from __future__ import annotations

from dashboard.api import bp
from dashboard.api.envelope import (
    endpoint,
    int_arg,
    load_request,
    page_args,
    page_data,
    respond,
    text_arg,
)
from dashboard.schemas.charging import IdTagCreateSchema, IdTagSchema, IdTagUpdateSchema
from dashboard.schemas.connector import MAX_ID
from dashboard.schemas.envelope import EmptySchema
from dashboard.services import charging as service

idtag_schema = IdTagSchema()
create_schema = IdTagCreateSchema()
update_schema = IdTagUpdateSchema()
empty_schema = EmptySchema()


@bp.get("/idtags")
@endpoint("read.idtag")
def list_idtags(user):
    """The id tags of the companies the caller may see, by tag.
    ---
    get:
      summary: List id tags
      description: "Permission `read.idtag`; company policy applies. `registered: false`
        marks a tag only seen (remembered in `open` mode), which an operator may adopt."
      tags: [idtags]
      parameters:
        - {in: query, name: company_id, schema: {type: integer, minimum: 0}}
        - {in: query, name: q, schema: {type: string}, description: "Text in the tag or note"}
        - {in: query, name: page, schema: {type: integer, minimum: 1, default: 1}}
        - {in: query, name: per_page, schema: {type: integer, minimum: 1, default: 20}}
      responses:
        200:
          description: Id tags retrieved successfully
          content:
            application/json:
              schema: IdTagPageResponse
    """
    page, per_page = page_args()
    result = service.list_idtags(
        user,
        company_id=int_arg("company_id", default=0, minimum=0, maximum=MAX_ID) or None,
        text=text_arg("q"),
        page=page,
        per_page=per_page,
    )
    return respond("Id tags retrieved successfully", page_data(result, idtag_schema))


@bp.post("/idtags")
@endpoint("create.idtag")
def create_idtag(user):
    """Register an id tag for a company.
    ---
    post:
      summary: Create an id tag
      description: "Permission `create.idtag` (superadmin only). A tag only seen before
        is adopted: registered with these values."
      tags: [idtags]
      requestBody:
        content:
          application/json:
            schema: IdTagCreateRequest
      responses:
        201:
          description: Id tag created successfully
          content:
            application/json:
              schema: IdTagResponse
    """
    idtag = service.create_idtag(user, **load_request(create_schema))
    return respond("Id tag created successfully", idtag_schema.dump(idtag), 201)


@bp.get("/idtags/<id:idtag_id>")
@endpoint("read.idtag")
def get_idtag(user, idtag_id: int):
    """One id tag.
    ---
    get:
      summary: Get an id tag
      description: "Permission `read.idtag`; company policy applies."
      tags: [idtags]
      parameters:
        - {in: path, name: idtag_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Id tag retrieved successfully
          content:
            application/json:
              schema: IdTagResponse
    """
    return respond(
        "Id tag retrieved successfully", idtag_schema.dump(service.get_idtag(user, idtag_id))
    )


@bp.put("/idtags/<id:idtag_id>")
@endpoint("update.idtag")
def update_idtag(user, idtag_id: int):
    """Change an id tag's status, expiry, parent or note.
    ---
    put:
      summary: Update an id tag
      description: "Permission `update.idtag` (superadmin only). `expiry_date`,
        `parent_tag` and `note` may be `null`. A tag only seen is adopted (registered)."
      tags: [idtags]
      parameters:
        - {in: path, name: idtag_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: IdTagUpdateRequest
      responses:
        200:
          description: Id tag updated successfully
          content:
            application/json:
              schema: IdTagResponse
    """
    idtag = service.update_idtag(user, idtag_id, **load_request(update_schema))
    return respond("Id tag updated successfully", idtag_schema.dump(idtag))


@bp.delete("/idtags/<id:idtag_id>")
@endpoint("delete.idtag")
def delete_idtag(user, idtag_id: int):
    """Forget an id tag.
    ---
    delete:
      summary: Delete an id tag
      description: "Permission `delete.idtag` (superadmin only). Transactions keep the
        tag they were started with. The body, if any, is an envelope with `req_data: {}`."
      tags: [idtags]
      parameters:
        - {in: path, name: idtag_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: Id tag deleted successfully
          content:
            application/json:
              schema: EmptyResponse
    """
    load_request(empty_schema, body_optional=True)
    service.delete_idtag(user, idtag_id)
    return respond("Id tag deleted successfully", {})
