"""Request and response shapes of query templates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator

from backend.core.schemas import AppSchema, Omitted

ParameterType = Literal["string", "integer", "number", "date", "boolean"]
ParameterValue = str | int | float | bool | None
PARAMETER_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class TemplateParameter(AppSchema):
    name: str = Field(pattern=PARAMETER_NAME_PATTERN)
    """Appears as `{name}` in the question template and `:name` in the SQL template."""
    type: ParameterType = "string"
    default: ParameterValue = None
    """Used when a run or a question gives no value; null means the value is required."""
    description: str | None = Field(default=None, max_length=500)


class TemplateCreate(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Orders per customer",
                    "description": "How many orders a customer placed",
                    "question_template": "How many orders did {customer} place?",
                    "sql_template": "SELECT COUNT(*) FROM orders WHERE customer_name = :customer",
                    "parameters": [
                        {"name": "customer", "type": "string", "description": "The customer's name"}
                    ],
                    "category": "sales",
                    "is_public": False,
                    "connection_id": "7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    question_template: str = Field(min_length=1, max_length=1000)
    """E.g. `revenue in {country} in {year}`."""
    sql_template: str = Field(min_length=1, max_length=20_000)
    """One SELECT with named bind parameters, e.g. `... WHERE country = :country`."""
    parameters: list[TemplateParameter] = Field(default_factory=list, max_length=20)
    category: str | None = Field(default=None, max_length=100)
    is_public: bool = False
    is_verified: bool = False
    """Only admins may set it."""
    connection_id: str | None = None


class TemplateUpdate(AppSchema):
    model_config = ConfigDict(json_schema_extra={"examples": [{"is_public": True}]})

    name: Annotated[str, Field(min_length=1, max_length=200)] | Omitted = None
    description: str | None = Field(default=None, max_length=2000)
    question_template: Annotated[str, Field(min_length=1, max_length=1000)] | Omitted = None
    sql_template: Annotated[str, Field(min_length=1, max_length=20_000)] | Omitted = None
    parameters: list[TemplateParameter] | None = Field(default=None, max_length=20)
    category: str | None = Field(default=None, max_length=100)
    is_public: bool | Omitted = None
    is_verified: bool | Omitted = None
    connection_id: str | None = None


class TemplateRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f0c9a2e-8b1d-4c57-9e2a-6d4b1f7a0c11",
                    "user_id": "3f0c9a2e-8b1d-4c57-9e2a-6d4b1f7a0c11",
                    "name": "Orders per customer",
                    "description": "How many orders a customer placed",
                    "question_template": "How many orders did {customer} place?",
                    "sql_template": "SELECT COUNT(*) FROM orders WHERE customer_name = :customer",
                    "parameters": [
                        {
                            "name": "customer",
                            "type": "string",
                            "default": None,
                            "description": "The customer's name",
                        }
                    ],
                    "category": "sales",
                    "is_public": False,
                    "is_verified": False,
                    "usage_count": 3,
                    "connection_id": "7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d",
                    "created_at": "2024-05-01T12:00:00Z",
                    "updated_at": None,
                }
            ]
        }
    )

    id: str
    user_id: str | None
    name: str
    description: str | None
    question_template: str
    sql_template: str
    parameters: list[TemplateParameter]
    category: str | None
    is_public: bool
    is_verified: bool
    usage_count: int
    connection_id: str | None
    created_at: datetime
    updated_at: datetime | None

    @field_validator("parameters", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return [] if value is None else value


class TemplateRunRequest(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "connection_id": "7d7f1c8e-2b1a-4f6e-9a43-1c2b3d4e5f60",
                    "parameters": {"country": "France", "year": 2023},
                }
            ]
        }
    )

    connection_id: str | None = Field(default=None, min_length=1, max_length=36)
    """Defaults to the template's connection; required when the template has none."""
    parameters: dict[str, ParameterValue] = Field(default_factory=dict, max_length=20)
    """Values bound to the SQL's `:name` parameters (never written into its text)."""
