// The nlsql page: sign in, converse with your databases, and (admins) review what was recorded.
// Plain JavaScript over the public /api/v1 endpoints, no build step.
"use strict";

(function () {
  const API = "/api/v1";
  const store = window.sessionStorage;
  const $ = (id) => document.getElementById(id);
  const fmt = () => window.nlsqlFormat;
  const DECLINED = "question_not_understood";
  const state = { me: null, session: null, sessionsCursor: null };

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node[key] = value;
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

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

  let refreshing = null;

  async function refreshTokens(pair) {
    // One refresh at a time: a rotated refresh token may be used only once.
    if (!refreshing) {
      refreshing = fetch(`${API}/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ refresh_token: pair.refresh_token }),
      })
        .then(async (response) => (response.ok ? response.json() : null))
        .finally(() => {
          refreshing = null;
        });
    }
    return refreshing;
  }

  async function request(method, path, body, { retry = true, raw = false } = {}) {
    const headers = { Accept: raw ? "*/*" : "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const pair = tokens();
    if (pair) headers.Authorization = `Bearer ${pair.access_token}`;
    const response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401 && retry && pair && pair.refresh_token) {
      const renewed = await refreshTokens(pair);
      if (renewed) {
        saveTokens(renewed);
        return request(method, path, body, { retry: false, raw });
      }
      saveTokens(null);
      await render();
      throw new ApiError(401, { error: { message: "Your session ended; sign in again." } });
    }
    if (raw && response.ok) return response;
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

  const call = (method, path, body) => request(method, path, body);

  async function download(path, filename) {
    const response = await request("GET", path, undefined, { raw: true });
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // --- signing in and out ---

  async function signIn(event) {
    event.preventDefault();
    showError("");
    $("sign-in").disabled = true;
    try {
      const pair = await request(
        "POST",
        "/auth/login",
        { email: $("email").value.trim(), password: $("password").value },
        { retry: false },
      );
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
      if (pair) {
        await request("POST", "/auth/logout", { refresh_token: pair.refresh_token }, { retry: false });
      }
    } catch (_) {
      // Signing out locally is enough when the session is already gone.
    }
    saveTokens(null);
    state.me = null;
    state.session = null;
    $("thread").replaceChildren();
    await render();
  }

  // --- connections and conversations ---

  async function loadConnections() {
    const select = $("connection");
    const previous = select.value;
    select.replaceChildren();
    let cursor = null;
    do {
      const query = cursor ? `?limit=100&cursor=${encodeURIComponent(cursor)}` : "?limit=100";
      const page = await call("GET", `/connections${query}`);
      for (const connection of page.items) {
        select.append(el("option", {
          value: connection.id,
          textContent: `${connection.connection_name} (${connection.db_type})`,
        }));
      }
      cursor = page.next_cursor;
    } while (cursor);
    if (previous) select.value = previous;
    if (!select.options.length) {
      setStatus("No connection yet: add one with POST /api/v1/connections (see /docs).");
    }
  }

  async function loadSessions(more = false) {
    const query = more && state.sessionsCursor
      ? `?limit=20&cursor=${encodeURIComponent(state.sessionsCursor)}`
      : "?limit=20";
    const page = await call("GET", `/chat/sessions${query}`);
    const list = $("sessions");
    if (!more) list.replaceChildren();
    for (const chat of page.items) {
      const when = chat.last_message_at || chat.created_at;
      const button = el(
        "button",
        {
          type: "button",
          className: "session",
          dataset: { sessionId: chat.id },
          onclick: () => openSession(chat).catch((err) => showError(err.message)),
        },
        el("span", { className: "title", textContent: chat.title }),
        el("small", {
          textContent: `${chat.message_count} messages · ${fmt().formatValue(when, "TIMESTAMP")}`,
        }),
      );
      if (state.session && state.session.id === chat.id) button.setAttribute("aria-current", "true");
      list.append(el("li", {}, button));
    }
    state.sessionsCursor = page.next_cursor;
    $("more-sessions").hidden = !page.next_cursor;
  }

  function markCurrentSession() {
    for (const button of document.querySelectorAll("#sessions .session")) {
      const current = state.session && button.dataset.sessionId === state.session.id;
      if (current) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
  }

  function newConversation() {
    state.session = null;
    $("thread").replaceChildren();
    markCurrentSession();
    setStatus("");
    $("question").focus();
  }

  async function openSession(chat) {
    showError("");
    state.session = chat;
    markCurrentSession();
    if (chat.connection_id) $("connection").value = chat.connection_id;
    const thread = $("thread");
    thread.replaceChildren();
    const messages = [];
    let cursor = null;
    do {
      const query = cursor ? `?limit=100&cursor=${encodeURIComponent(cursor)}` : "?limit=100";
      const page = await call("GET", `/chat/sessions/${encodeURIComponent(chat.id)}/messages${query}`);
      messages.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    let turn = null;
    for (const message of messages) {
      if (message.message_type === "user") {
        turn = addTurn(message.content);
      } else if (turn) {
        renderStored(turn, message);
        turn = null;
      }
    }
    $("question").focus();
  }

  // --- one question and its answer ---

  function addTurn(question) {
    const body = el("div", { className: "answer-body" });
    const turn = el(
      "article",
      { className: "turn", dataset: { state: "pending" } },
      el("p", { className: "question", textContent: question }),
      el("p", { className: "state", textContent: "Thinking…" }),
      body,
    );
    turn.body = body;
    $("thread").append(turn);
    return turn;
  }

  function setState(turn, name, text) {
    turn.dataset.state = name;
    turn.querySelector(".state").textContent = text;
  }

  function sqlBlock(sql) {
    return el(
      "details",
      { className: "sql-block", open: true },
      el("summary", { textContent: "SQL" }),
      el("pre", { className: "sql", textContent: sql }),
    );
  }

  function resultBlock(turn, result) {
    const count = result.row_count;
    const meta = [`${fmt().formatNumber(count)} row${count === 1 ? "" : "s"}`];
    if (result.truncated) meta.push("more exist: download the CSV for all of them");
    if (typeof result.execution_time_ms === "number") {
      meta.push(`${fmt().formatNumber(result.execution_time_ms)} ms`);
    }
    const chart = el("div", { className: "chart" });
    const actions = el("p", { className: "actions" }, el("span", { textContent: meta.join(" · ") }));
    if (result.query_id && count > 0) {
      actions.append(" ", el("button", {
        type: "button",
        className: "csv",
        textContent: "Download CSV",
        onclick: () => download(
          `/query/${encodeURIComponent(result.query_id)}/export?format=csv`,
          `nlsql-${result.query_id}.csv`,
        ).catch((err) => showError(err.message)),
      }));
    }
    turn.body.append(
      chart,
      el("div", { className: "table-wrap" }, fmt().table(result.columns, result.rows)),
      actions,
    );
    if (result.chart) {
      fmt().renderChart(chart, result.chart, result.columns, result.rows)
        .catch(() => chart.replaceChildren());
    } else {
      chart.remove();
    }
  }

  const GUARD_ERRORS = new Set(["sql_refused", "sql_reads_hidden", "sql_not_parseable"]);
  const MAX_COMMENT_LENGTH = 2000;

  /** Rating buttons 1-5 (keyboard: Tab to a button, Enter or Space to rate), and a disclosure
   * with a comment and a corrected SQL that are sent with the rating. A corrected SQL the guard
   * refuses is shown next to its field. */
  function ratingBlock(messageId, current) {
    const id = String(messageId);
    const path = `/chat/messages/${encodeURIComponent(id)}/feedback`;
    const status = el("span", { className: "rating-status", role: "status" });
    const group = el("div", {
      className: "rating",
      role: "group",
      ariaLabel: "Rate this answer from 1 (wrong) to 5 (right)",
      dataset: { messageId: id },
    }, el("span", { className: "rating-label", textContent: "Rate:" }));
    const comment = el("textarea", {
      id: `feedback-comment-${id}`,
      className: "feedback-comment",
      rows: 2,
      maxLength: MAX_COMMENT_LENGTH,
    });
    const sqlError = el("p", {
      id: `feedback-sql-error-${id}`,
      className: "feedback-error",
      role: "alert",
      hidden: true,
    });
    const correctedSql = el("textarea", {
      id: `feedback-sql-${id}`,
      className: "feedback-sql",
      rows: 3,
      spellcheck: false,
    });
    correctedSql.setAttribute("aria-describedby", sqlError.id);
    const formStatus = el("p", { className: "feedback-status", role: "status" });
    const send = el("button", { type: "submit", className: "send-feedback", textContent: "Send" });
    const buttons = [];
    const show = (rating) => {
      group.dataset.rating = rating ? String(rating) : "";
      for (const button of buttons) {
        button.setAttribute("aria-pressed", String(Number(button.dataset.value) === rating));
      }
      status.textContent = rating ? `You rated this ${rating} of 5.` : "";
    };
    const showSqlError = (message) => {
      sqlError.textContent = message || "";
      sqlError.hidden = !message;
      correctedSql.setAttribute("aria-invalid", String(Boolean(message)));
    };
    const submit = async (rating) => {
      if (!rating) {
        formStatus.textContent = "Choose a rating from 1 to 5 first: it is sent with your words.";
        buttons[0].focus();
        return;
      }
      const body = { rating };
      if (comment.value.trim()) body.comment = comment.value;
      if (correctedSql.value.trim()) body.corrected_sql = correctedSql.value;
      for (const b of [...buttons, send]) b.disabled = true;
      showSqlError("");
      formStatus.textContent = "";
      try {
        const feedback = await call("POST", path, body);
        show(feedback.rating);
        const parts = [feedback.comment ? "comment" : null,
          feedback.corrected_sql ? "corrected SQL" : null].filter(Boolean);
        if (parts.length) {
          formStatus.textContent = `Sent with your ${parts.join(" and ")}.`
            + (feedback.example ? " It is now an example for this connection." : "");
        }
      } catch (err) {
        if (body.corrected_sql && GUARD_ERRORS.has(err.code)) {
          more.open = true;
          showSqlError(`The corrected SQL was not accepted: ${err.message}`);
          correctedSql.focus();
        } else {
          showError(err.message);
        }
      } finally {
        for (const b of [...buttons, send]) b.disabled = false;
      }
    };
    for (let value = 1; value <= 5; value += 1) {
      const button = el("button", {
        type: "button",
        className: "rate",
        textContent: String(value),
        title: value >= 4 ? `${value} of 5: right` : `${value} of 5`,
        ariaLabel: `Rate ${value} of 5`,
        dataset: { value: String(value) },
        onclick: () => submit(value),
      });
      buttons.push(button);
      group.append(button);
    }
    group.append(status);
    const form = el("form", {
      className: "feedback-form",
      onsubmit: (event) => {
        event.preventDefault();
        submit(Number(group.dataset.rating) || null);
      },
    },
    el("label", { htmlFor: comment.id, textContent: "Comment (optional)" }, comment),
    el("label", { htmlFor: correctedSql.id, textContent: "Suggest corrected SQL (optional)" },
      correctedSql),
    sqlError,
    el("p", { className: "actions" }, send,
      el("span", { className: "hint", textContent: "Sent with your rating above." })),
    formStatus);
    let loaded = false;
    const more = el("details", {
      className: "feedback-more",
      ontoggle: async () => {
        if (!more.open || loaded || !group.dataset.rating) return;
        loaded = true;
        try {
          const earlier = await call("GET", path);
          if (!comment.value) comment.value = earlier.comment || "";
          if (!correctedSql.value) correctedSql.value = earlier.corrected_sql || "";
        } catch (_) {
          // No earlier feedback to show: the fields stay empty.
        }
      },
    }, el("summary", { textContent: "Add a comment or a corrected SQL" }), form);
    show(current || null);
    return el("div", { className: "feedback" }, group, more);
  }

  function renderAnswer(turn, answer) {
    turn.body.replaceChildren();
    if (answer.executed === false) {
      setState(turn, "draft", "SQL only: not run yet");
      const run = el("button", {
        type: "button",
        className: "run-draft",
        textContent: "Run this SQL",
        onclick: async () => {
          run.disabled = true;
          try {
            const result = await call("POST", "/query/sql", {
              connection_id: $("connection").value,
              sql: answer.sql,
              message_id: answer.message_id,
            });
            setState(turn, "answered", "Answered");
            run.remove();
            resultBlock(turn, result);
            if (answer.message_id) turn.body.append(ratingBlock(answer.message_id, null));
          } catch (err) {
            run.disabled = false;
            showError(err.message);
          }
        },
      });
      turn.body.append(
        el("p", { className: "explanation", textContent: answer.explanation }),
        sqlBlock(answer.sql),
        el("p", { className: "actions" }, run),
      );
      return;
    }
    setState(turn, "answered", "Answered");
    turn.body.append(
      answer.summary ? el("p", { className: "summary", textContent: answer.summary }) : null,
      el("p", { className: "explanation", textContent: answer.explanation }),
      sqlBlock(answer.sql),
    );
    resultBlock(turn, answer);
    if (answer.message_id) turn.body.append(ratingBlock(answer.message_id, answer.rating));
  }

  function understoodText(recognised) {
    const parts = [];
    for (const [key, value] of Object.entries(recognised || {})) {
      const shown = Array.isArray(value) ? value.join(", ") : typeof value === "object" && value
        ? Object.keys(value).join(", ") : String(value);
      if (shown) parts.push(`${key.replace(/_/g, " ")}: ${shown}`);
    }
    return parts.join("; ");
  }

  const tablesByConnection = new Map();

  async function tableNames(connectionId) {
    if (!tablesByConnection.has(connectionId)) {
      // Suggest only what generators see: never a table the semantic layer hides.
      const schema = await call(
        "GET", `/connections/${encodeURIComponent(connectionId)}/schema?include_hidden=false`,
      );
      tablesByConnection.set(connectionId, (schema.tables || []).map((t) => t.name));
    }
    return tablesByConnection.get(connectionId);
  }

  /** The API's suggestions when it gives some; else questions about the tables it recognised,
   *  else about the connection's first tables. */
  async function suggestionsFor(details) {
    if (Array.isArray(details.suggestions) && details.suggestions.length) {
      return details.suggestions.map((s) => (typeof s === "string" ? s : s.question || String(s)));
    }
    const recognised = details.recognised || {};
    let tables = [].concat(recognised.tables || recognised.table || []).map(String);
    if (!tables.length && $("connection").value) {
      tables = await tableNames($("connection").value).catch(() => []);
    }
    return tables.slice(0, 3).map((table) => `How many ${table} are there?`);
  }

  async function renderDecline(turn, err) {
    setState(turn, "declined", "Not understood");
    turn.body.replaceChildren();
    const understood = understoodText(err.details.recognised);
    const choices = el("div", { className: "suggestions", role: "group", ariaLabel: "Try instead" });
    for (const suggestion of await suggestionsFor(err.details)) {
      choices.append(el("button", {
        type: "button",
        className: "suggestion",
        textContent: suggestion,
        onclick: () => {
          $("question").value = suggestion;
          $("ask-form").requestSubmit();
        },
      }));
    }
    turn.body.append(
      el("p", { className: "decline", textContent: err.message }),
      el("p", {
        className: "understood",
        textContent: understood ? `What I understood: ${understood}.` : "I could not match it to your tables.",
      }),
      el("p", { className: "hint", textContent: "Try one of these:" }),
      choices,
    );
  }

  function renderFailure(turn, err) {
    setState(turn, "failed", "Failed");
    turn.body.replaceChildren(el("p", { className: "failure", textContent: err.message }));
  }

  function renderStored(turn, message) {
    const result = message.query_result || {};
    if (message.message_type === "error") {
      const err = { message: message.content, details: result.details || {} };
      if (result.error_code === DECLINED) renderDecline(turn, err).catch(() => renderFailure(turn, err));
      else renderFailure(turn, err);
      return;
    }
    if (result.executed === false) {
      renderAnswer(turn, {
        executed: false,
        sql: message.sql_query,
        explanation: message.content,
        message_id: message.id,
      });
      return;
    }
    renderAnswer(turn, {
      summary: result.summary,
      explanation: message.content,
      sql: message.sql_query,
      columns: result.columns || [],
      rows: result.rows || [],
      row_count: result.row_count || 0,
      truncated: result.truncated,
      execution_time_ms: message.execution_time,
      // A draft run later keeps the run's own query (its CSV export re-runs that one).
      query_id: result.ran_query_id || message.query_id,
      chart: result.chart || null,
      message_id: message.id,
      rating: message.rating,
    });
  }

  async function ask(event) {
    event.preventDefault();
    showError("");
    const connectionId = $("connection").value;
    const question = $("question").value.trim();
    if (!connectionId || !question) return;
    $("ask").disabled = true;
    const turn = addTurn(question);
    turn.scrollIntoView({ block: "nearest" });
    $("question").value = "";
    try {
      if (!state.session || state.session.connection_id !== connectionId) {
        state.session = await call("POST", "/chat/sessions", {
          title: question.slice(0, 80),
          connection_id: connectionId,
        });
        $("thread").replaceChildren(turn);
      }
      const answer = await call(
        "POST",
        `/chat/sessions/${encodeURIComponent(state.session.id)}/ask`,
        { question, execute: !$("draft-only").checked },
      );
      renderAnswer(turn, answer);
      await loadSessions();
    } catch (err) {
      if (err instanceof ApiError && err.code === DECLINED) await renderDecline(turn, err);
      else renderFailure(turn, err);
      if (err instanceof ApiError && err.status === 404) state.session = null;
    } finally {
      $("ask").disabled = false;
      $("question").focus();
    }
  }

  // --- views ---

  function showView(name) {
    const admin = name === "admin" && state.me && state.me.role === "admin";
    $("ask-view").hidden = admin;
    $("admin-view").hidden = !admin;
    $("tab-chat").setAttribute("aria-pressed", String(!admin));
    $("tab-admin").setAttribute("aria-pressed", String(admin));
    if (admin && window.nlsqlAdmin) {
      window.nlsqlAdmin.open().catch((err) => showError(err.message));
    }
  }

  async function render() {
    const signedIn = tokens() !== null;
    $("login-view").hidden = signedIn;
    $("ask-view").hidden = !signedIn;
    $("admin-view").hidden = true;
    $("whoami").hidden = !signedIn;
    $("tabs").hidden = !signedIn;
    if (!signedIn) return;
    try {
      state.me = await call("GET", "/auth/me");
      $("user-email").textContent = state.me.email;
      $("user-role").textContent = state.me.role;
      $("tab-admin").hidden = state.me.role !== "admin";
      showView("chat");
      await loadConnections();
      await loadSessions();
    } catch (err) {
      showError(err.message);
    }
  }

  window.nlsql = { call, download, showError, el, ApiError };

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", signIn);
    $("ask-form").addEventListener("submit", ask);
    $("sign-out").addEventListener("click", signOut);
    $("new-chat").addEventListener("click", newConversation);
    $("more-sessions").addEventListener("click", () => loadSessions(true));
    $("connection").addEventListener("change", newConversation);
    $("tab-chat").addEventListener("click", () => showView("chat"));
    $("tab-admin").addEventListener("click", () => showView("admin"));
    render();
  });
})();
