"""Who is calling from where: the client facts that audit rows and events carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request


@dataclass(frozen=True, slots=True)
class ClientContext:
    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


def client_ip(request: Request) -> str | None:
    trusted = request.app.state.settings.trusted_proxy_count
    if trusted > 0:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            if len(hops) >= trusted:
                return str(hops[-trusted])[:45]
    return request.client.host[:45] if request.client else None


def client_context(request: Request) -> ClientContext:
    agent = request.headers.get("user-agent")
    return ClientContext(
        ip_address=client_ip(request),
        user_agent=agent[:500] if agent else None,
        request_id=getattr(request.state, "request_id", None),
    )


async def get_client_context(request: Request) -> ClientContext:
    return client_context(request)


ClientContextDep = Annotated[ClientContext, Depends(get_client_context)]
