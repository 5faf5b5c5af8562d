"""Every domain's tables, imported once so that `Base.metadata` is complete for Alembic."""

from backend.admin.models import SystemConfig
from backend.auth.models import ApiKey, RefreshToken, User, UserSession
from backend.chat.models import ChatMessage, ChatSession
from backend.connections.models import DatabaseConnection, DatabaseSchema
from backend.core.db import Base
from backend.evaluations.models import EvaluationResult, EvaluationRun, GoldenQuestion
from backend.feedback.models import AnswerFeedback, VerifiedExample
from backend.jobs.models import BackgroundJob
from backend.observability.models import AuditLog, Event, PerformanceMetric, QueryAnalytics
from backend.semantic.models import SemanticLayerHead, SemanticLayerVersion
from backend.templates.models import QueryTemplate

__all__ = [
    "AnswerFeedback",
    "ApiKey",
    "AuditLog",
    "BackgroundJob",
    "Base",
    "ChatMessage",
    "ChatSession",
    "DatabaseConnection",
    "DatabaseSchema",
    "EvaluationResult",
    "EvaluationRun",
    "Event",
    "GoldenQuestion",
    "PerformanceMetric",
    "QueryAnalytics",
    "QueryTemplate",
    "RefreshToken",
    "SemanticLayerHead",
    "SemanticLayerVersion",
    "SystemConfig",
    "User",
    "UserSession",
    "VerifiedExample",
]
