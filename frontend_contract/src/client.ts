/**
 * A small typed client over the generated contract: every request and answer below is checked
 * by `npm run typecheck` against src/api-types.ts, which `npm run generate` writes from
 * openapi.json. When the API changes shape, this file stops compiling.
 */
import type { components, operations, paths } from "./api-types";

type Schemas = components["schemas"];

export type TokenPair = Schemas["TokenPair"];
export type LoginRequest = Schemas["LoginRequest"];
export type ErrorResponse = Schemas["ErrorResponse"];
export type ChatSession = Schemas["ChatSessionRead"];
export type ChatSessionPage = Schemas["Page_ChatSessionRead_"];
export type Connection = Schemas["ConnectionRead"];
export type AskRequest = Schemas["AskRequest"];
export type AskResponse =
  paths["/api/v1/chat/sessions/{session_id}/ask"]["post"]["responses"][200]["content"]["application/json"];
export type ListSessionsQuery = NonNullable<operations["chat-list_sessions"]["parameters"]["query"]>;

/** Every error of the API has one shape: `{"error": {"code", "message", "details"}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorResponse,
  ) {
    super(`${status} ${body.error.code}: ${body.error.message}`);
  }
}

export type Credentials = { accessToken: string } | { apiKey: string } | null;

export class NlsqlClient {
  constructor(
    private readonly baseUrl: string,
    private credentials: Credentials = null,
  ) {}

  private async request<T>(
    method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE",
    path: string,
    body?: unknown,
    query?: Record<string, string | number | boolean | null | undefined>,
  ): Promise<T> {
    const url = new URL(this.baseUrl.replace(/\/$/, "") + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.credentials && "accessToken" in this.credentials) {
      headers["Authorization"] = `Bearer ${this.credentials.accessToken}`;
    } else if (this.credentials && "apiKey" in this.credentials) {
      headers["X-API-Key"] = this.credentials.apiKey;
    }
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new ApiError(response.status, (await response.json()) as ErrorResponse);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  /** POST /api/v1/auth/login; keeps the access token for the next calls. */
  async login(data: LoginRequest): Promise<TokenPair> {
    const tokens = await this.request<TokenPair>("POST", "/api/v1/auth/login", data);
    this.credentials = { accessToken: tokens.access_token };
    return tokens;
  }

  /** POST /api/v1/auth/refresh: the old refresh token is revoked, keep the new one. */
  async refresh(refreshToken: string): Promise<TokenPair> {
    const body: Schemas["RefreshRequest"] = { refresh_token: refreshToken };
    const tokens = await this.request<TokenPair>("POST", "/api/v1/auth/refresh", body);
    this.credentials = { accessToken: tokens.access_token };
    return tokens;
  }

  listConnections(): Promise<Schemas["Page_ConnectionRead_"]> {
    return this.request("GET", "/api/v1/connections");
  }

  createSession(data: Schemas["ChatSessionCreate"]): Promise<ChatSession> {
    return this.request("POST", "/api/v1/chat/sessions", data);
  }

  /** One page of the caller's chat sessions; pass `next_cursor` back as `cursor`. */
  listSessions(query: ListSessionsQuery = {}): Promise<ChatSessionPage> {
    return this.request("GET", "/api/v1/chat/sessions", undefined, query);
  }

  /** Every chat session, page after page, until `next_cursor` is null. */
  async *allSessions(pageSize = 20): AsyncGenerator<ChatSession> {
    let cursor: string | null | undefined = undefined;
    do {
      const page: ChatSessionPage = await this.listSessions({ limit: pageSize, cursor });
      yield* page.items;
      cursor = page.next_cursor;
    } while (cursor);
  }

  ask(sessionId: string, data: AskRequest): Promise<AskResponse> {
    return this.request("POST", `/api/v1/chat/sessions/${encodeURIComponent(sessionId)}/ask`, data);
  }
}

/** The whole flow: sign in, open a session on the first connection, ask, print the answer. */
export async function example(baseUrl: string): Promise<void> {
  const client = new NlsqlClient(baseUrl);
  await client.login({ email: "demo@example.com", password: "demo-password-2024" });
  const connections = await client.listConnections();
  const connection = connections.items[0];
  if (!connection) throw new Error("no connection yet: POST /api/v1/connections first");
  const chat = await client.createSession({ title: "Try it", connection_id: connection.id });
  // execute: false would answer with the checked SQL only, to review before running it.
  const answer = await client.ask(chat.id, { question: "How many customers are there?", execute: true });
  console.log(answer.sql, answer.columns.map((c) => c.name), answer.rows.length, answer.chart_type);
  for await (const session of client.allSessions()) console.log(session.title, session.message_count);
}
