// Formatting for people: numbers and dates by column type, tables, and charts that fill the width.
"use strict";

(function () {
  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
  const NUMERIC = /INT|REAL|FLOAT|DOUBLE|NUMERIC|DECIMAL|NUMBER|MONEY/i;
  const TEMPORAL = /DATE|TIME/i;
  const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
  const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/;

  function formatNumber(value) {
    if (Number.isInteger(value)) return integer.format(value);
    return Math.abs(value) >= 1000 ? integer.format(value) : decimal.format(value);
  }

  function formatValue(value, type) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value === "number") {
      // Years and identifiers read as labels, not amounts.
      if (type && !NUMERIC.test(type) && Number.isInteger(value)) return String(value);
      return formatNumber(value);
    }
    const text = String(value);
    if ((type && TEMPORAL.test(type)) || ISO_DATETIME.test(text)) {
      if (ISO_DATE.test(text)) return text;
      const parsed = new Date(text.replace(" ", "T"));
      if (!Number.isNaN(parsed.getTime())) {
        return parsed.toISOString().replace("T", " ").slice(0, 16);
      }
    }
    return text;
  }

  function isNumeric(type, values) {
    if (type && NUMERIC.test(type)) return true;
    const present = values.filter((v) => v !== null && v !== undefined);
    return present.length > 0 && present.every((v) => typeof v === "number");
  }

  /** A <table> of columns [{name, type}] and rows, values formatted by column type. */
  function table(columns, rows, { limit = 200 } = {}) {
    const element = document.createElement("table");
    const head = element.createTHead().insertRow();
    const numeric = columns.map((c, i) => isNumeric(c.type, rows.map((r) => r[i])));
    columns.forEach((column, i) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = column.name;
      if (numeric[i]) th.className = "num";
      head.append(th);
    });
    const body = element.createTBody();
    for (const row of rows.slice(0, limit)) {
      const tr = body.insertRow();
      row.forEach((value, i) => {
        const td = tr.insertCell();
        td.textContent = formatValue(value, columns[i] && columns[i].type);
        if (numeric[i]) td.className = "num";
      });
    }
    return element;
  }

  /** The spec, filled in from the answer's rows when it names them instead of copying them,
   *  sized to the width of its container. */
  function chartSpec(spec, columns, rows) {
    const full = JSON.parse(JSON.stringify(spec));
    // The spec lists the field name of each column in usermeta.row_fields.
    const fields = (full.usermeta && full.usermeta.row_fields) || columns.map((c) => c.name);
    const records = rows.map((row) => Object.fromEntries(fields.map((f, i) => [f, row[i]])));
    if (!full.data) full.data = { values: records };
    else if (full.data.name && !(full.datasets && full.datasets[full.data.name])) {
      full.datasets = { ...(full.datasets || {}), [full.data.name]: records };
    }
    if (full.mark && (full.mark === "text" || full.mark.type === "text")) return full;
    full.width = "container";
    full.autosize = { type: "fit", contains: "padding" };
    return full;
  }

  async function renderChart(container, spec, columns, rows) {
    container.replaceChildren();
    container.removeAttribute("data-rendered");
    if (!spec || !window.vegaEmbed) return false;
    const result = await window.vegaEmbed(container, chartSpec(spec, columns || [], rows || []), {
      actions: false,
      renderer: "svg",
    });
    container.dataset.rendered = result.view ? "true" : "false";
    return Boolean(result.view);
  }

  window.nlsqlFormat = { formatValue, formatNumber, table, chartSpec, renderChart };
})();
