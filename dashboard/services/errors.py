"""Domain errors raised by services; each face maps them to its own answer
(an API envelope, a page, a CALLERROR)."""


class ServiceError(Exception):
    """Base of the errors a service raises for a request it cannot carry out."""

    status_code = 400

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors


class NotFound(ServiceError):
    """The resource does not exist, or the actor may not see it (indistinguishable)."""

    status_code = 404


class Forbidden(ServiceError):
    """The actor's role lacks the permission."""

    status_code = 403


class Conflict(ServiceError):
    """The change collides with existing data (a duplicate key, a referenced row)."""

    status_code = 409


class Invalid(ServiceError):
    """Field-level validation failed; `errors` maps field names to messages."""

    status_code = 422


class Unavailable(ServiceError):
    """The operation needs something that is not there now (a charge point offline)."""

    status_code = 409


class ServiceUnavailable(ServiceError):
    """Something Plugboard relies on (Redis, between processes) cannot be reached now."""

    status_code = 503


class UpstreamError(ServiceError):
    """The charge point answered a call with an error."""

    status_code = 502


class UpstreamTimeout(ServiceError):
    """The charge point did not answer a call in time."""

    status_code = 504
