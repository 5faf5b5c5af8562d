"""`openai`: any OpenAI-compatible chat-completions endpoint (hosted APIs and local servers)."""

from __future__ import annotations

from typing import Any

from backend.nl2sql.engines.base import Generation, GenerationRequest, SqlGenerator
from backend.nl2sql.engines.http import DEFAULT_MAX_RETRIES, HttpReply, ProviderCall, RetryPolicy
from backend.nl2sql.engines.prompt import Prompt, build_prompt, estimate_tokens, extract_sql
from backend.nl2sql.errors import LlmReplyInvalid


def usage_count(usage: Any, key: str) -> int | None:
    if not isinstance(usage, dict):
        return None
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def finish_generation(
    *,
    reply_text: str,
    prompt: Prompt,
    model: str,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    provider: str,
    attempts: int,
) -> Generation:
    """The `Generation` of a reply; counts the provider left out are estimated from the text."""
    extracted = extract_sql(reply_text)
    if prompt_tokens is None:
        prompt_tokens = prompt.estimated_tokens
    if completion_tokens is None:
        completion_tokens = estimate_tokens(reply_text)
    return Generation(
        sql=extracted.sql,
        explanation=extracted.explanation or f"SQL written by {model}.",
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        model=model,
        recognised={
            "tables": prompt.tables,
            "omitted_tables": prompt.omitted_tables,
            "provider": provider,
            "http_attempts": attempts,
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


def _content(body: dict[str, Any]) -> str:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LlmReplyInvalid(
            "The openai provider's reply has no choices.", details={"provider": "openai"}
        )
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        raise LlmReplyInvalid(
            "The openai provider's reply has no message content.",
            details={"provider": "openai", "finish_reason": choices[0].get("finish_reason")},
        )
    return content
