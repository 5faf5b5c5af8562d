"""`anthropic`: the Anthropic Messages API."""

from __future__ import annotations

from typing import Any

from backend.nl2sql.engines.base import Generation, GenerationRequest, SqlGenerator
from backend.nl2sql.engines.http import DEFAULT_MAX_RETRIES, HttpReply, ProviderCall, RetryPolicy
from backend.nl2sql.engines.openai_compat import (
    finish_generation,
    reason_of,
    text_of_parts,
    usage_count,
)
from backend.nl2sql.engines.prompt import Prompt, build_prompt
from backend.nl2sql.errors import LlmReplyInvalid

ANTHROPIC_VERSION = "2023-06-01"
MAX_OUTPUT_TOKENS = 1024


class AnthropicGenerator(SqlGenerator):
    name = "anthropic"
    supports_repair = True
    waits_on_network = True

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        timeout_seconds: float = 60.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_base_seconds: float = 0.5,
        max_output_tokens: int = MAX_OUTPUT_TOKENS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.model = model
        self.timeout_seconds = timeout_seconds
        self.max_output_tokens = max_output_tokens
        self.policy = RetryPolicy(
            max_retries=max_retries, backoff_base_seconds=backoff_base_seconds
        )

    def __repr__(self) -> str:
        return f"AnthropicGenerator(base_url={self.base_url!r}, model={self.model!r})"

    def _call(self, request: GenerationRequest) -> tuple[Prompt, str, ProviderCall]:
        model = request.model or self.model
        prompt = build_prompt(request)
        call = ProviderCall(
            url=f"{self.base_url}/v1/messages",
            provider=self.name,
            headers={
                "x-api-key": self._api_key,
                "anthropic-version": ANTHROPIC_VERSION,
                "content-type": "application/json",
            },
            payload={
                "model": model,
                "system": prompt.system,
                "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
                "max_tokens": self.max_output_tokens,
                "temperature": 0,
            },
            timeout_seconds=self.timeout_seconds,
            policy=self.policy,
            secrets=(self._api_key,),
        )
        return prompt, model, call

    def _finish(self, prompt: Prompt, model: str, reply: HttpReply) -> Generation:
        body = reply.body
        usage = body.get("usage")
        return finish_generation(
            reply_text=_text(body),
            prompt=prompt,
            model=str(body.get("model") or model),
            prompt_tokens=usage_count(usage, "input_tokens"),
            completion_tokens=usage_count(usage, "output_tokens"),
            provider=self.name,
            attempts=reply.attempts,
            completion_cap=self.max_output_tokens,
        )

    def generate(self, request: GenerationRequest) -> Generation:
        prompt, model, call = self._call(request)
        return self._finish(prompt, model, call.send())

    async def generate_async(self, request: GenerationRequest) -> Generation:
        prompt, model, call = self._call(request)
        return self._finish(prompt, model, await call.send_async())


def _text(body: dict[str, Any]) -> str:
    content = body.get("content")
    if not isinstance(content, list):
        raise LlmReplyInvalid(
            "The anthropic provider's reply has no content.", details={"provider": "anthropic"}
        )
    text = text_of_parts(
        [b for b in content if isinstance(b, dict) and b.get("type") == "text"],
        provider="anthropic",
    )
    if not text.strip():
        raise LlmReplyInvalid(
            "The anthropic provider's reply has no text.",
            details={"provider": "anthropic", "stop_reason": reason_of(body, "stop_reason")},
        )
    return text
