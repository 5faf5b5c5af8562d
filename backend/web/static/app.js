// The nlsql try-it page: plain JavaScript over the public /api/v1 endpoints, no build step.
"use strict";

(function () {
  const API = "/api/v1";
  const store = window.sessionStorage;
  const $ = (id) => document.getElementById(id);
  const chatSessions = new Map(); // connection id -> chat session id (this tab only)

  function tokens() {
    const raw = store.getItem("nlsql.tokens");
    return raw ? JSON.parse(raw) : null;
  }

  function saveTokens(pair) {
    if (pair) store.setItem("nlsql.tokens", JSON.stringify(pair));
    else store.removeItem("nlsql.tokens");
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function setStatus(text) {
    $("status").textContent = text || "";
  }

  class ApiError extends Error {
    constructor(status, body) {
      const err = (body && body.error) || {};
      super(err.message || `Request failed (${status}).`);
      this.status = status;
      this.code = err.code || "http_error";
      this.details = err.details || {};
    }
  }

  async function call(method, path, body, retry = true) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const pair = tokens();
    if (pair) headers.Authorization = `Bearer ${pair.access_token}`;
    const response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401 && retry && pair && pair.refresh_token) {
      // The access token expired: rotate the refresh token once, then try again.
      const refreshed = await fetch(`${API}/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ refresh_token: pair.refresh_token }),
      });
      if (refreshed.ok) {
        saveTokens(await refreshed.json());
        return call(method, path, body, false);
      }
      saveTokens(null);
      render();
    }
    if (response.status === 204) return null;
    let payload = null;
    try {
      payload = await response.json();
    } catch (_) {
      payload = null;
    }
    if (!response.ok) throw new ApiError(response.status, payload);
    return payload;
  }

  async function signIn(event) {
    event.preventDefault();
    showError("");
    $("sign-in").disabled = true;
    try {
      const pair = await call("POST", "/auth/login", {
        email: $("email").value.trim(),
        password: $("password").value,
      }, false);
      saveTokens(pair);
      $("password").value = "";
      await render();
    } catch (err) {
      showError(err.message);
    } finally {
      $("sign-in").disabled = false;
    }
  }

  async function signOut() {
    const pair = tokens();
    try {
      if (pair) await call("POST", "/auth/logout", { refresh_token: pair.refresh_token }, false);
    } catch (_) {
      // Signing out locally is enough when the session is already gone.
    }
    saveTokens(null);
    chatSessions.clear();
    $("answer").hidden = true;
    await render();
  }

  async function loadConnections() {
    const select = $("connection");
    const previous = select.value;
    select.replaceChildren();
    let cursor = null;
    do {
      const query = cursor ? `?limit=100&cursor=${encodeURIComponent(cursor)}` : "?limit=100";
      const page = await call("GET", `/connections${query}`);
      for (const connection of page.items) {
        const option = document.createElement("option");
        option.value = connection.id;
        option.textContent = `${connection.connection_name} (${connection.db_type})`;
        select.append(option);
      }
      cursor = page.next_cursor;
    } while (cursor);
    if (previous) select.value = previous;
    if (!select.options.length) {
      setStatus("No connection yet: add one with POST /api/v1/connections (see /docs).");
    }
  }

  async function chatSessionFor(connectionId) {
    if (!chatSessions.has(connectionId)) {
      const created = await call("POST", "/chat/sessions", {
        title: "Browser",
        connection_id: connectionId,
      });
      chatSessions.set(connectionId, created.id);
    }
    return chatSessions.get(connectionId);
  }

  function renderRows(columns, rows, rowCount, truncated) {
    const head = $("rows").tHead;
    const body = $("rows").tBodies[0];
    const headRow = document.createElement("tr");
    for (const column of columns) {
      const th = document.createElement("th");
      th.textContent = column.name;
      headRow.append(th);
    }
    head.replaceChildren(headRow);
    body.replaceChildren(
      ...rows.map((row) => {
        const tr = document.createElement("tr");
        for (const value of row) {
          const td = document.createElement("td");
          td.textContent = value === null ? "NULL" : String(value);
          tr.append(td);
        }
        return tr;
      }),
    );
    const reasons = {
      row_limit: "truncated at the row cap",
      byte_limit: "truncated at the size limit",
      cell_limit: "long values cut",
    };
    const note = truncated ? `, ${reasons[truncated] || "truncated"}` : "";
    $("row-count").textContent = `(${rowCount}${note})`;
  }

  // The answer carries its rows once; the spec names them ("data": {"name": "rows"}) and
  // lists in usermeta.row_fields the field name of each column.
  function withRows(spec, rows) {
    if (!spec.data || spec.data.name !== "rows") return spec;
    const fields = (spec.usermeta && spec.usermeta.row_fields) || [];
    const values = rows.map((row) => {
      const value = {};
      fields.forEach((field, index) => {
        value[field] = row[index];
      });
      return value;
    });
    return { ...spec, data: { values } };
  }

  async function renderChart(spec, rows) {
    const container = $("chart");
    container.replaceChildren();
    container.removeAttribute("data-rendered");
    if (!spec) {
      container.textContent = "No chart for this answer.";
      return;
    }
    const result = await window.vegaEmbed(container, withRows(spec, rows), {
      actions: false,
      renderer: "svg",
    });
    container.dataset.rendered = result.view ? "true" : "false";
  }

  async function ask(event) {
    event.preventDefault();
    showError("");
    const connectionId = $("connection").value;
    const question = $("question").value.trim();
    if (!connectionId || !question) return;
    $("ask").disabled = true;
    setStatus("Thinking…");
    try {
      const sessionId = await chatSessionFor(connectionId);
      const answer = await call("POST", `/chat/sessions/${encodeURIComponent(sessionId)}/ask`, {
        question,
      });
      $("explanation").textContent = answer.explanation;
      $("sql").textContent = answer.sql;
      renderRows(
        answer.columns,
        answer.rows,
        answer.row_count,
        answer.truncated ? answer.truncated_reason || "truncated" : null,
      );
      $("answer").hidden = false;
      setStatus(`${answer.row_count} rows in ${answer.execution_time_ms.toFixed(1)} ms`);
      await renderChart(answer.chart, answer.rows);
    } catch (err) {
      setStatus("");
      if (err instanceof ApiError && err.status === 404) {
        // The chat session may have been deleted elsewhere: start a new one next time.
        chatSessions.delete(connectionId);
      }
      showError(err.message);
    } finally {
      $("ask").disabled = false;
    }
  }

  async function render() {
    const signedIn = tokens() !== null;
    $("login-view").hidden = signedIn;
    $("ask-view").hidden = !signedIn;
    $("whoami").hidden = !signedIn;
    if (!signedIn) return;
    try {
      const me = await call("GET", "/auth/me");
      $("user-email").textContent = me.email;
      await loadConnections();
    } catch (err) {
      showError(err.message);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", signIn);
    $("ask-form").addEventListener("submit", ask);
    $("sign-out").addEventListener("click", signOut);
    render();
  });
})();
