// The admin area of the page: charts and tables from the review API (admins only; the API
// answers 403 to anyone else, and the page shows the tab to admins only).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const api = () => window.nlsql;
  const fmt = () => window.nlsqlFormat;
  const TOP = 10;
  const pages = { audit: null, events: null, users: null, ratings: null };
  let emails = new Map();

  function range() {
    const params = new URLSearchParams();
    const since = $("filter-since").value;
    const until = $("filter-until").value;
    if (since) params.set("since", `${since}T00:00:00Z`);
    if (until) params.set("until", `${until}T23:59:59Z`);
    return params;
  }

  function withParams(path, params) {
    const text = params.toString();
    return text ? `${path}?${text}` : path;
  }

  function summary(groupBy) {
    const params = range();
    params.set("group_by", groupBy);
    return api().call("GET", withParams("/analytics/summary", params));
  }

  function chart(id, spec, values) {
    return fmt().renderChart($(id), { ...spec, data: { values } }, [], []);
  }

  const bar = (x, y, extra = {}) => ({
    mark: { type: "bar", tooltip: true },
    encoding: {
      x: { field: x, type: "nominal", sort: "-y", axis: { labelAngle: -30 } },
      y: { field: y, type: "quantitative" },
      ...extra,
    },
  });

  function label(id) {
    if (!id) return "(none)";
    return emails.get(id) || `${id.slice(0, 8)}…`;
  }

  function totals(report) {
    const t = report.totals;
    const card = (name, value) => window.nlsql.el(
      "div",
      { className: "card" },
      window.nlsql.el("strong", { textContent: value }),
      window.nlsql.el("span", { textContent: name }),
    );
    const rate = t.success_rate === null ? "—" : `${Math.round(t.success_rate * 100)}%`;
    $("admin-totals").replaceChildren(
      card("queries", fmt().formatNumber(t.count)),
      card("succeeded", rate),
      card("p50 ms", t.p50_execution_time_ms === null ? "—" : fmt().formatNumber(t.p50_execution_time_ms)),
      card("p95 ms", t.p95_execution_time_ms === null ? "—" : fmt().formatNumber(t.p95_execution_time_ms)),
      card("tokens", fmt().formatNumber(t.total_tokens)),
      card("cost USD", fmt().formatNumber(t.cost_usd)),
    );
  }

  async function charts() {
    const [days, models, users, connections] = await Promise.all(
      ["day", "model", "user", "connection"].map(summary),
    );
    totals(days);
    const outcomes = days.groups.flatMap((g) => [
      { day: g.key, outcome: "succeeded", count: g.success_count },
      { day: g.key, outcome: "failed", count: g.failure_count },
    ]);
    const latency = days.groups.flatMap((g) => [
      { day: g.key, percentile: "p50", ms: g.p50_execution_time_ms },
      { day: g.key, percentile: "p95", ms: g.p95_execution_time_ms },
    ]).filter((p) => p.ms !== null);
    const top = (report) => [...report.groups].sort((a, b) => b.count - a.count).slice(0, TOP);
    await Promise.all([
      chart("chart-asks", {
        mark: { type: "bar", tooltip: true },
        encoding: {
          x: { field: "day", type: "ordinal" },
          y: { field: "count", type: "quantitative", stack: true },
          color: { field: "outcome", type: "nominal", scale: { domain: ["succeeded", "failed"], range: ["#2f7d4f", "#c0392b"] } },
        },
      }, outcomes),
      chart("chart-latency", {
        mark: { type: "line", point: true, tooltip: true },
        encoding: {
          x: { field: "day", type: "ordinal" },
          y: { field: "ms", type: "quantitative" },
          color: { field: "percentile", type: "nominal" },
        },
      }, latency),
      chart("chart-models", bar("model", "tokens", {
        tooltip: [{ field: "model" }, { field: "tokens", format: "," }, { field: "cost", format: ".4f" }],
      }), models.groups.map((g) => ({ model: g.key || "(offline)", tokens: g.total_tokens, cost: g.cost_usd }))),
      chart("chart-users", bar("user", "queries"), top(users).map((g) => ({ user: label(g.key), queries: g.count }))),
      chart("chart-connections", bar("connection", "queries"),
        top(connections).map((g) => ({ connection: label(g.key), queries: g.count }))),
    ]);
  }

  async function recentQueries() {
    const params = range();
    params.set("limit", "200");
    const [recent, failures] = await Promise.all([
      api().call("GET", withParams("/analytics/queries", params)),
      api().call("GET", withParams("/analytics/queries", new URLSearchParams([...params, ["success", "false"]]))),
    ]);
    const codes = new Map();
    for (const row of failures.items) codes.set(row.error_code || "unknown", (codes.get(row.error_code || "unknown") || 0) + 1);
    await chart("chart-errors", bar("code", "failures"), [...codes].map(([code, failuresCount]) => ({ code, failures: failuresCount })));
    const slowest = recent.items
      .filter((r) => r.execution_time_ms !== null)
      .sort((a, b) => b.execution_time_ms - a.execution_time_ms)
      .slice(0, TOP);
    $("slowest").replaceWith(Object.assign(fmt().table(
      [{ name: "ms", type: "REAL" }, { name: "question or SQL" }, { name: "user" }, { name: "source" }, { name: "when", type: "TIMESTAMP" }],
      slowest.map((r) => [r.execution_time_ms, r.question || r.sql_query, label(r.user_id), r.source, r.timestamp]),
    ), { id: "slowest" }));
  }

  function fillTable(id, columns, rows, append) {
    const fresh = fmt().table(columns, rows, { limit: 1000 });
    fresh.id = id;
    const current = $(id);
    if (append && current.tBodies[0]) {
      current.tBodies[0].append(...fresh.tBodies[0].rows);
    } else {
      current.replaceWith(fresh);
    }
  }

  async function audit(more = false) {
    const params = new URLSearchParams(range());
    params.set("limit", "25");
    const action = $("audit-action").value.trim();
    if (action) params.set("action", action);
    if (more && pages.audit) params.set("cursor", pages.audit);
    const page = await api().call("GET", withParams("/admin/audit-logs", params));
    fillTable("audit", [
      { name: "when", type: "TIMESTAMP" }, { name: "action" }, { name: "user" }, { name: "resource" }, { name: "ok" }, { name: "ip" },
    ], page.items.map((r) => [
      r.timestamp, r.action, label(r.user_id), [r.resource_type, r.resource_id].filter(Boolean).join(" "), r.success, r.ip_address,
    ]), more);
    pages.audit = page.next_cursor;
    $("audit-more").hidden = !page.next_cursor;
  }

  async function ratingsChart() {
    const params = range();
    params.set("group_by", "model");
    const [generators, models] = await Promise.all([
      api().call("GET", withParams("/analytics/feedback/summary", new URLSearchParams([...range(), ["group_by", "generator"]]))),
      api().call("GET", withParams("/analytics/feedback/summary", params)),
    ]);
    const values = [
      ...generators.groups.map((g) => ({ what: `generator ${g.key || "(none)"}`, average: g.average_rating, ratings: g.count })),
      ...models.groups.map((g) => ({ what: `model ${g.key || "(offline)"}`, average: g.average_rating, ratings: g.count })),
    ];
    await chart("chart-ratings", {
      mark: { type: "bar", tooltip: true },
      encoding: {
        x: { field: "what", type: "nominal", sort: "-y", axis: { labelAngle: -30 } },
        y: { field: "average", type: "quantitative", scale: { domain: [0, 5] } },
        tooltip: [{ field: "what" }, { field: "average", format: ".2f" }, { field: "ratings" }],
      },
    }, values);
  }

  async function ratings(more = false) {
    const params = new URLSearchParams(range());
    params.set("limit", "25");
    if (more && pages.ratings) params.set("cursor", pages.ratings);
    const page = await api().call("GET", withParams("/analytics/feedback", params));
    fillTable("ratings", [
      { name: "when", type: "TIMESTAMP" }, { name: "rating", type: "INTEGER" }, { name: "user" }, { name: "generator" },
      { name: "model" }, { name: "comment" }, { name: "corrected SQL" }, { name: "example" },
    ], page.items.map((f) => [
      f.created_at, f.rating, label(f.user_id), f.generator, f.llm_model, f.comment, f.corrected_sql,
      f.example ? (f.example.approved ? "approved" : "pending") : null,
    ]), more);
    pages.ratings = page.next_cursor;
    $("ratings-more").hidden = !page.next_cursor;
  }

  async function verifyChain() {
    const status = $("chain-status");
    status.textContent = "Checking…";
    status.dataset.intact = "";
    const report = await api().call("GET", "/admin/audit-logs/verify");
    status.dataset.intact = String(report.intact);
    status.textContent = report.intact
      ? `Intact: ${fmt().formatNumber(report.checked_rows)} rows checked.`
      : `Broken at row ${report.first_broken_id} (${report.reason}).`;
  }

  async function events(more = false) {
    const params = new URLSearchParams(range());
    params.set("limit", "25");
    if (more && pages.events) params.set("cursor", pages.events);
    const page = await api().call("GET", withParams("/admin/events", params));
    fillTable("events", [{ name: "when", type: "TIMESTAMP" }, { name: "event" }, { name: "user" }, { name: "data" }],
      page.items.map((e) => [e.timestamp, e.event_type, label(e.user_id), JSON.stringify(e.event_data || {}).slice(0, 160)]), more);
    pages.events = page.next_cursor;
    $("events-more").hidden = !page.next_cursor;
  }

  async function changeUser(user, changes) {
    try {
      await api().call("PATCH", `/admin/users/${encodeURIComponent(user.id)}`, changes);
      await users();
    } catch (err) {
      api().showError(err.message);
    }
  }

  async function users(more = false) {
    const query = more && pages.users ? `?limit=50&cursor=${encodeURIComponent(pages.users)}` : "?limit=50";
    const page = await api().call("GET", `/admin/users${query}`);
    for (const user of page.items) emails.set(user.id, user.email);
    const el = api().el;
    const table = fmt().table(
      [{ name: "email" }, { name: "name" }, { name: "role" }, { name: "active" }, { name: "last sign-in", type: "TIMESTAMP" }, { name: "tokens", type: "INTEGER" }],
      page.items.map((u) => [u.email, u.full_name, u.role, u.is_active, u.last_login, u.token_usage]),
      { limit: 1000 },
    );
    table.id = "users";
    [...table.tBodies[0].rows].forEach((row, index) => {
      const user = page.items[index];
      const role = el("select", {
        ariaLabel: `Role of ${user.email}`,
        onchange: () => changeUser(user, { role: role.value }),
      }, el("option", { value: "viewer", textContent: "viewer" }), el("option", { value: "admin", textContent: "admin" }));
      role.value = user.role;
      row.cells[2].replaceChildren(role);
      row.cells[3].replaceChildren(el("button", {
        type: "button",
        className: "toggle-active",
        textContent: user.is_active ? "Deactivate" : "Activate",
        onclick: () => changeUser(user, { is_active: !user.is_active }),
      }));
    });
    if (more) $("users").tBodies[0].append(...table.tBodies[0].rows);
    else $("users").replaceWith(table);
    pages.users = page.next_cursor;
    $("users-more").hidden = !page.next_cursor;
  }

  async function config() {
    const rows = await api().call("GET", "/admin/config");
    fillTable("config", [{ name: "key" }, { name: "value" }, { name: "default" }, { name: "set" }, { name: "description" }],
      rows.map((c) => [c.key, JSON.stringify(c.value), JSON.stringify(c.default), c.is_set, c.description]), false);
  }

  async function open() {
    emails = new Map();
    await users();
    await Promise.all([charts(), recentQueries(), ratingsChart(), ratings(), audit(), events(), config()]);
  }

  function exportLink(event) {
    const link = event.target.closest("a[data-export]");
    if (!link) return;
    event.preventDefault();
    const params = range();
    const path = withParams(link.dataset.export, params);
    api().download(path, `${link.dataset.export.split("/").filter(Boolean).slice(-2).join("-")}.csv`)
      .catch((err) => api().showError(err.message));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const guard = (work) => () => work().catch((err) => api().showError(err.message));
    $("admin-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      guard(open)();
    });
    $("audit-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      guard(() => audit())();
    });
    $("verify-chain").addEventListener("click", guard(verifyChain));
    $("audit-more").addEventListener("click", guard(() => audit(true)));
    $("events-more").addEventListener("click", guard(() => events(true)));
    $("ratings-more").addEventListener("click", guard(() => ratings(true)));
    $("users-more").addEventListener("click", guard(() => users(true)));
    $("admin-view").addEventListener("click", exportLink);
  });

  window.nlsqlAdmin = { open };
})();
