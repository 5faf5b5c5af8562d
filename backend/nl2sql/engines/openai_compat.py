"""`openai`: any OpenAI-compatible chat-completions endpoint (hosted APIs and local servers)."""

from __future__ import annotations

from typing import Any

from backend.core.text import clean_text
from backend.nl2sql.engines.base import Generation, GenerationRequest, SqlGenerator
from backend.nl2sql.engines.http import DEFAULT_MAX_RETRIES, HttpReply, ProviderCall, RetryPolicy
from backend.nl2sql.engines.prompt import Prompt, build_prompt, estimate_tokens, extract_sql
from backend.nl2sql.errors import LlmReplyInvalid

COMPLETION_TOKEN_CAP = 100_000
"""More completion tokens than any model spends on one SQL reply: a larger count is not believed."""
PROMPT_TOKEN_SLACK = 4096
"""Prompt tokens believed beyond 4x the prompt's own estimate (system prompts, message framing)."""
MAX_EXPLANATION_CHARS = 20_000
MAX_MODEL_NAME_CHARS = 100


def usage_count(usage: Any, key: str) -> int | None:
    """A token count the provider reported, or None when it is missing or not a count."""
    if not isinstance(usage, dict):
        return None
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


MAX_REASON_CHARS = 40


def reason_of(body: Any, key: str) -> str | None:
    """A provider's stop/finish reason for an error's details: short text or nothing (a lying
    provider could put megabytes of anything there, and the details go back to the client)."""
    reason = body.get(key) if isinstance(body, dict) else None
    return clean_text(reason, MAX_REASON_CHARS) if isinstance(reason, str) else None


def believable(count: int | None, cap: int) -> int | None:
    """`count` when it is a plausible token count for this request (0..cap), else None."""
    return count if count is not None and 0 <= count <= cap else None


def finish_generation(
    *,
    reply_text: str,
    prompt: Prompt,
    model: str,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    provider: str,
    attempts: int,
    completion_cap: int = COMPLETION_TOKEN_CAP,
) -> Generation:
    """The `Generation` of a reply.

    Token counts are the provider's word, and they feed quotas and costs: a count that is
    missing, not a non-negative integer, or beyond what this request could have used (4x the
    prompt's estimate plus slack; `completion_cap`) is replaced by an estimate from the text,
    and the generation says which were estimated. Text from the provider is bounded, and made
    storable before anything reads it (NUL and lone surrogates become U+FFFD): the SQL goes on
    to the database, the records and, when it fails, back to the provider in a repair request,
    none of which can carry them.
    """
    reply_text = clean_text(reply_text)
    extracted = extract_sql(reply_text)
    estimated = []
    prompt_count = believable(prompt_tokens, 4 * prompt.estimated_tokens + PROMPT_TOKEN_SLACK)
    if prompt_count is None:
        prompt_count = prompt.estimated_tokens
        estimated.append("prompt_tokens")
    completion_count = believable(completion_tokens, completion_cap)
    if completion_count is None:
        completion_count = estimate_tokens(reply_text)
        estimated.append("completion_tokens")
    model = clean_text(model, MAX_MODEL_NAME_CHARS)
    explanation = extracted.explanation or f"SQL written by {model}."
    return Generation(
        sql=extracted.sql,
        explanation=clean_text(explanation, MAX_EXPLANATION_CHARS),
        prompt_tokens=prompt_count,
        completion_tokens=completion_count,
        model=model,
        recognised={
            "tables": prompt.tables,
            "omitted_tables": prompt.omitted_tables,
            "provider": provider,
            "http_attempts": attempts,
            "estimated_usage": estimated,
        },
    )


class OpenAIGenerator(SqlGenerator):
    name = "openai"
    supports_repair = True
    waits_on_network = True

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout_seconds: float = 60.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_base_seconds: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.model = model
        self.timeout_seconds = timeout_seconds
        self.policy = RetryPolicy(
            max_retries=max_retries, backoff_base_seconds=backoff_base_seconds
        )

    def __repr__(self) -> str:
        return f"OpenAIGenerator(base_url={self.base_url!r}, model={self.model!r})"

    def _call(self, request: GenerationRequest) -> tuple[Prompt, str, ProviderCall]:
        model = request.model or self.model
        prompt = build_prompt(request)
        messages = [{"role": "system", "content": prompt.system}]
        messages += [{"role": m.role, "content": m.content} for m in prompt.messages]
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        call = ProviderCall(
            url=f"{self.base_url}/chat/completions",
            provider=self.name,
            headers=headers,
            payload={"model": model, "messages": messages, "temperature": 0},
            timeout_seconds=self.timeout_seconds,
            policy=self.policy,
            secrets=(self._api_key,) if self._api_key else (),
        )
        return prompt, model, call

    def _finish(self, prompt: Prompt, model: str, reply: HttpReply) -> Generation:
        body = reply.body
        usage = body.get("usage")
        return finish_generation(
            reply_text=_content(body),
            prompt=prompt,
            model=str(body.get("model") or model),
            prompt_tokens=usage_count(usage, "prompt_tokens"),
            completion_tokens=usage_count(usage, "completion_tokens"),
            provider=self.name,
            attempts=reply.attempts,
        )

    def generate(self, request: GenerationRequest) -> Generation:
        prompt, model, call = self._call(request)
        return self._finish(prompt, model, call.send())

    async def generate_async(self, request: GenerationRequest) -> Generation:
        prompt, model, call = self._call(request)
        return self._finish(prompt, model, await call.send_async())


def text_of_parts(parts: list[Any], *, provider: str) -> str:
    """The text of a reply made of parts (`[{"type": "text", "text": ...}, ...]`): the text
    parts' strings joined; other kinds of part are skipped. A text part whose text is not a
    string is a reply that breaks the API's contract (it was read as its Python repr, SQL no
    database could parse, and answered as the user's 400)."""
    texts: list[str] = []
    for part in parts:
        if not isinstance(part, dict) or part.get("type", "text") != "text":
            continue
        text = part.get("text", "")
        if not isinstance(text, str):
            raise LlmReplyInvalid(
                f"The {provider} provider's reply has a text part that is not text.",
                details={"provider": provider},
            )
        texts.append(text)
    return "".join(texts)


def _content(body: dict[str, Any]) -> str:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LlmReplyInvalid(
            "The openai provider's reply has no choices.", details={"provider": "openai"}
        )
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        content = text_of_parts(content, provider="openai")
    if not isinstance(content, str) or not content.strip():
        raise LlmReplyInvalid(
            "The openai provider's reply has no message content.",
            details={"provider": "openai", "finish_reason": reason_of(choices[0], "finish_reason")},
        )
    return content
