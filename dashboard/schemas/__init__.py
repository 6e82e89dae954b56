"""marshmallow schemas: the envelope, connectors, charge points."""
