"""Errors of the semantic domain."""

from __future__ import annotations

from typing import Any

from backend.core.errors import Conflict, NotFound, ValidationFailed


class SemanticLayerNotFound(NotFound):
    code = "semantic_layer_not_found"
    message = "This connection has no semantic layer yet (PUT one, or POST .../draft)."


class SemanticLayerVersionNotFound(NotFound):
    code = "semantic_layer_version_not_found"
    message = "This connection's semantic layer has no such version."


class SemanticLayerInvalid(ValidationFailed):
    """A definition does not fit the connection; `details.errors` name each field and why."""

    code = "semantic_layer_invalid"
    message = "The semantic layer is not valid for this connection."

    @classmethod
    def naming(cls, errors: list[dict[str, Any]]) -> SemanticLayerInvalid:
        """The error for `errors` (each `{field, message, ...}`), the first one in its message."""
        first = errors[0]
        return cls(
            f"The semantic layer is not valid: {first['field']}: {first['message']}",
            details={"errors": errors},
        )


class SemanticLayerUnreadable(ValidationFailed):
    """An imported document is not a YAML or JSON layer within the bounds."""

    code = "semantic_layer_unreadable"
    message = "The uploaded file is not a readable YAML or JSON semantic layer."


class SemanticLayerConflict(Conflict):
    code = "semantic_layer_conflict"
    message = "Someone else changed this semantic layer at the same time; read it and retry."
