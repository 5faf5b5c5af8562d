"""Errors of the templates domain."""

from backend.core.errors import Conflict, Forbidden, NotFound, ValidationFailed


class TemplateNotFound(NotFound):
    code = "template_not_found"
    message = "Template not found."


class TemplateNotEditable(Forbidden):
    code = "template_not_editable"
    message = "Only the template's owner or an admin may change it."


class VerificationForbidden(Forbidden):
    code = "template_verification_forbidden"
    message = "Only an admin may mark a template as verified."


class TemplateInvalid(ValidationFailed):
    """The template's question, SQL and parameters do not agree, or the SQL is not one SELECT."""

    code = "template_invalid"
    message = "The template is not valid."


class TemplateParameterInvalid(ValidationFailed):
    code = "template_parameter_invalid"
    message = "The template parameters are not valid."


class TemplateNotApplicable(Forbidden):
    """The template's SQL may not run on this connection: it is not its owner's, and the
    template was not published (public and verified) for it."""

    code = "template_not_applicable"
    message = "This template runs only on its owner's connections."


class TemplateConnectionMismatch(Conflict):
    code = "template_connection_mismatch"
    message = "This template belongs to another connection."


class TemplateReadsHidden(ValidationFailed):
    """The template's SQL reads a table or column the connection's semantic layer hides."""

    code = "template_reads_hidden"
    message = "The template reads an item the connection's semantic layer hides."
