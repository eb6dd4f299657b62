// Telemetry dashboard: reads /api/sensors, /api/stats and /api/series from this origin and
// draws a table, the statistics and an SVG chart. Plain JavaScript, no dependencies.
//
// Sensor ids and values are client-supplied strings: they only ever reach the page through
// textContent or attributes set with setAttribute, never as HTML.
"use strict";

(() => {
  const REFRESH_MS = 5000;
  const FETCH_TIMEOUT_MS = 8000;
  const TOKEN_KEY = "telemetry.readToken";
  const SENSOR_PAGE_LIMIT = 1000;
  const MAX_SENSOR_PAGES = 20;
  const MAX_ROWS = 500;
  const MAX_POINTS = 800;
  const MAX_BUCKETS = 10000;
  const MINUTE = 60e3;
  const HOUR = 60 * MINUTE;
  const DAY = 24 * HOUR;
  const RANGES = { "1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY };
  const STEPS = [
    { name: "1m", ms: MINUTE, label: "1 minute" },
    { name: "5m", ms: 5 * MINUTE, label: "5 minutes" },
    { name: "15m", ms: 15 * MINUTE, label: "15 minutes" },
    { name: "1h", ms: HOUR, label: "1 hour" },
    { name: "6h", ms: 6 * HOUR, label: "6 hours" },
    { name: "1d", ms: DAY, label: "1 day" },
  ];
  const SVG_NS = "http://www.w3.org/2000/svg";

  const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  const count = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
  const collator = new Intl.Collator(undefined, { numeric: true });

  const $ = (id) => document.getElementById(id);

  const state = {
    range: "24h",
    custom: null, // { from: Date, to: Date } once applied
    sensor: null, // selected sensor id, or null for all sensors
    sensors: [],
    sensorsComplete: true,
    sort: { key: "sensorID", dir: 1 },
    filter: "",
    series: null,
    window: null,
    cursor: null, // index of the bucket the tooltip shows
    timer: null,
    busy: false,
    again: false,
    waitingForToken: false,
    lastSuccess: null,
  };

  // ---- the API -------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  function readToken() {
    try {
      return window.localStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  }

  async function api(path) {
    const headers = { Accept: "application/json" };
    const token = readToken();
    if (token) headers.Authorization = "Bearer " + token;
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    const route = path.split("?")[0];
    let response;
    try {
      response = await fetch(path, {
        headers,
        signal: controller.signal,
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      throw new ApiError("The service is unreachable (" + route + " got no answer).", 0);
    } finally {
      clearTimeout(timeout);
    }
    if (response.status === 401 || response.status === 403) {
      throw new ApiError(token ? "The read token was refused." : "A read token is needed.", response.status);
    }
    if (!response.ok) {
      let detail = "";
      try {
        const problem = await response.json();
        detail = problem.detail || problem.title || "";
      } catch {
        // not a problem body: the status says enough
      }
      throw new ApiError(
        "The service answered " + response.status + " for " + route + (detail ? ": " + String(detail).replace(/[.\s]*$/, "") : "") + ".",
        response.status,
      );
    }
    try {
      return await response.json();
    } catch {
      throw new ApiError("The service sent an unreadable answer for " + route + ".", response.status);
    }
  }

  async function loadSensors() {
    const sensors = [];
    let cursor = null;
    for (let page = 0; page < MAX_SENSOR_PAGES; page++) {
      let path = "/api/sensors?limit=" + SENSOR_PAGE_LIMIT;
      if (cursor) path += "&cursor=" + encodeURIComponent(cursor);
      const body = await api(path);
      for (const sensor of body.sensors || []) sensors.push(sensor);
      cursor = body.next;
      if (!cursor) break;
    }
    return { sensors, complete: !cursor };
  }

  // ---- the time window -----------------------------------------------------------------

  /** The smallest step that keeps the chart at most MAX_POINTS buckets (or null: too long). */
  function stepFor(span) {
    for (const step of STEPS) if (span / step.ms <= MAX_POINTS) return step;
    const widest = STEPS[STEPS.length - 1];
    return span / widest.ms <= MAX_BUCKETS ? widest : null;
  }

  /** The window shown: the picked range, ending at the next step boundary after now. */
  function currentWindow(now) {
    if (state.range === "custom" && state.custom) {
      const { from, to } = state.custom;
      return { from, to, step: stepFor(to - from) };
    }
    const span = RANGES[state.range] || DAY;
    const step = stepFor(span);
    const end = Math.ceil(now / step.ms) * step.ms;
    return { from: new Date(end - span), to: new Date(end), step };
  }

  function windowQuery(win) {
    return "from=" + encodeURIComponent(win.from.toISOString()) + "&to=" + encodeURIComponent(win.to.toISOString());
  }

  // ---- refreshing ----------------------------------------------------------------------

  function selectionKey() {
    return [state.range, state.custom && state.custom.from.getTime(), state.custom && state.custom.to.getTime(), state.sensor].join("|");
  }

  async function refresh() {
    if (state.busy) {
      state.again = true;
      return;
    }
    clearTimeout(state.timer);
    state.busy = true;
    const key = selectionKey();
    const win = currentWindow(Date.now());
    const query = windowQuery(win);
    const sensor = state.sensor;
    const sensorQuery = sensor === null ? "" : "&sensorID=" + encodeURIComponent(sensor);
    try {
      // The sensor list first and alone: without a (valid) token that is one refused request
      // a refresh, not one per route (refusals count against the client's failure budget).
      const sensors = await loadSensors();
      const [all, one, series] = await Promise.all([
        api("/api/stats?" + query),
        sensor === null ? null : api("/api/stats?" + query + sensorQuery),
        win.step ? api("/api/series?" + query + "&step=" + win.step.name + sensorQuery) : null,
      ]);
      if (key === selectionKey()) {
        state.sensors = sensors.sensors;
        state.sensorsComplete = sensors.complete;
        state.window = win;
        state.series = series;
        renderWindow(win);
        renderSensors();
        renderStats($("stats-all"), all);
        renderSensorStats(sensor, one);
        renderChart();
      }
      state.lastSuccess = new Date();
      showHealthy();
    } catch (error) {
      showFailure(error);
    } finally {
      state.busy = false;
      if (state.again) {
        state.again = false;
        refresh();
      } else if (!state.waitingForToken) {
        state.timer = setTimeout(refresh, REFRESH_MS);
      }
    }
  }

  function showHealthy() {
    $("error").hidden = true;
    document.querySelector("main").classList.remove("stale");
    const status = $("status");
    status.className = "status live";
    status.textContent = "Live, updated " + clock.format(state.lastSuccess) + "; refreshes every " + REFRESH_MS / 1000 + " s";
    $("forget-token").hidden = !readToken();
  }

  function showFailure(error) {
    const status = $("status");
    status.className = "status failed";
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      askForToken(error.message);
      status.textContent = "Waiting for a read token";
      return;
    }
    const message = error instanceof ApiError ? error.message : "The page failed: " + error;
    const since = state.lastSuccess ? " Showing data from " + clock.format(state.lastSuccess) + "." : "";
    const banner = $("error");
    banner.textContent = message + since + " Retrying every " + REFRESH_MS / 1000 + " s.";
    banner.hidden = false;
    document.querySelector("main").classList.add("stale");
    status.textContent = "Not updating";
  }

  function askForToken(message) {
    state.waitingForToken = true;
    $("error").hidden = true;
    $("token-message").textContent = message + " It is kept in this browser's storage only, and sent as a Bearer token.";
    const form = $("token-form");
    if (form.hidden) {
      form.hidden = false;
      $("token").focus();
    }
    $("forget-token").hidden = !readToken();
  }

  // ---- rendering: window, table, statistics --------------------------------------------

  function renderWindow(win) {
    let text = "From " + dateTime.format(win.from) + " to " + dateTime.format(win.to) + " (your time zone)";
    text += win.step ? ", in buckets of " + win.step.label + "." : ".";
    $("window").textContent = text;
  }

  function formatTemperature(value) {
    return value === null || value === undefined ? "–" : number.format(value) + " °C";
  }

  const STAT_FIELDS = [
    ["Count", "Readings"],
    ["Minimum", "Minimum"],
    ["Maximum", "Maximum"],
    ["Average", "Average"],
  ];

  /** The four labelled values of a statistics card, empty until the first answer. */
  function buildStatList(list) {
    for (const [field, label] of STAT_FIELDS) {
      const row = document.createElement("div");
      const term = document.createElement("dt");
      term.textContent = label;
      const value = document.createElement("dd");
      value.dataset.field = field;
      value.textContent = "–";
      row.append(term, value);
      list.append(row);
    }
  }

  function renderStats(card, stats) {
    for (const dd of card.querySelectorAll("dd[data-field]")) {
      const field = dd.dataset.field;
      dd.textContent = field === "Count" ? count.format(stats.Count) : formatTemperature(stats[field]);
    }
  }

  function renderSensorStats(sensor, stats) {
    const card = $("stats-sensor");
    const list = card.querySelector("dl");
    $("stats-sensor-name").textContent = sensor === null ? "(none selected)" : sensor;
    $("stats-sensor-hint").hidden = sensor !== null;
    list.hidden = sensor === null;
    if (stats) renderStats(card, stats);
    else for (const dd of card.querySelectorAll("dd[data-field]")) dd.textContent = "–";
  }

  function sortValue(sensor, key) {
    if (key === "temperature") return sensor.latest ? sensor.latest.temperature : null;
    if (key === "time") return sensor.latest ? sensor.latest.time : null;
    return sensor[key];
  }

  function compareSensors(a, b) {
    const { key, dir } = state.sort;
    const x = sortValue(a, key);
    const y = sortValue(b, key);
    let order;
    if (x === y) order = 0;
    else if (x === null || x === undefined) order = 1;
    else if (y === null || y === undefined) order = -1;
    else if (typeof x === "number" && typeof y === "number") order = x - y;
    else order = collator.compare(String(x), String(y));
    return order * dir || collator.compare(a.sensorID, b.sensorID);
  }

  function renderSensors() {
    const needle = state.filter.trim().toLowerCase();
    const matching = state.sensors.filter((s) => s.sensorID.toLowerCase().includes(needle));
    matching.sort(compareSensors);
    const rows = matching.slice(0, MAX_ROWS).map(sensorRow);
    document.querySelector("#sensors tbody").replaceChildren(...rows);
    let summary = matching.length + " of " + (state.sensorsComplete ? "" : "the first ") + state.sensors.length + " sensors";
    if (matching.length > MAX_ROWS) summary += ", the first " + MAX_ROWS + " shown";
    $("sensor-count").textContent = summary;
    for (const th of document.querySelectorAll("#sensors thead th")) {
      const button = th.querySelector("button");
      if (button.dataset.sort === state.sort.key) th.setAttribute("aria-sort", state.sort.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
  }

  function sensorRow(sensor) {
    const row = document.createElement("tr");
    const selected = sensor.sensorID === state.sensor;
    if (selected) row.className = "selected";
    const head = document.createElement("th");
    head.scope = "row";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "select-sensor";
    button.textContent = sensor.sensorID;
    button.dataset.sensor = sensor.sensorID;
    button.setAttribute("aria-pressed", selected ? "true" : "false");
    head.append(button);
    const latest = cell(formatTemperature(sensor.latest && sensor.latest.temperature), "num latest");
    const at = document.createElement("td");
    at.className = "latest-time";
    if (sensor.latest) {
      const time = document.createElement("time");
      time.dateTime = sensor.latest.time;
      time.textContent = dateTime.format(new Date(sensor.latest.time));
      at.append(time);
    }
    row.append(head, latest, at, cell(count.format(sensor.Count), "num count"));
    return row;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.className = className;
    td.textContent = text;
    return td;
  }

  // ---- the chart -----------------------------------------------------------------------

  function svg(name, attributes, parent) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, String(value));
    if (parent) parent.append(node);
    return node;
  }

  /** About `target` round numbers covering [low, high]. */
  function niceTicks(low, high, target) {
    const raw = (high - low) / target;
    const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || raw;
    const ticks = [];
    for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
    return ticks;
  }

  const TIME_TICKS = [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 365 * DAY];

  /** Tick times at round local times (minutes and hours in the browser's zone, local midnights). */
  function timeTicks(from, to, target) {
    const interval = TIME_TICKS.find((t) => (to - from) / t <= target) || TIME_TICKS[TIME_TICKS.length - 1];
    const ticks = [];
    const start = new Date(from);
    if (interval < DAY) {
      const minutes = interval / MINUTE;
      start.setSeconds(0, 0);
      const ofDay = start.getHours() * 60 + start.getMinutes();
      start.setMinutes(start.getMinutes() + ((minutes - (ofDay % minutes)) % minutes));
      for (let t = start.getTime(); t <= to && ticks.length < 50; t += interval) ticks.push(t);
    } else {
      start.setHours(0, 0, 0, 0);
      const days = Math.round(interval / DAY);
      while (start.getTime() < from) start.setDate(start.getDate() + 1);
      for (; start.getTime() <= to && ticks.length < 50; start.setDate(start.getDate() + days)) ticks.push(start.getTime());
    }
    const format =
      interval < DAY && to - from <= DAY
        ? new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" })
        : interval < DAY
          ? new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "numeric" })
          : new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
    return ticks.map((t) => ({ t, label: format.format(new Date(t)) }));
  }

  /** Consecutive runs of buckets that hold readings; an empty bucket ends a run (a gap). */
  function runsOf(buckets) {
    const runs = [];
    let run = null;
    for (const bucket of buckets) {
      if (bucket.Count > 0 && bucket.Average !== null) {
        if (!run) runs.push((run = []));
        run.push(bucket);
      } else {
        run = null;
      }
    }
    return runs;
  }

  function renderChart() {
    const host = $("chart");
    const tooltip = $("tooltip");
    for (const old of host.querySelectorAll("svg")) old.remove();
    const series = state.series;
    const win = state.window;
    const width = Math.max(280, Math.round(host.clientWidth || 640));
    const height = width < 520 ? 220 : 300;
    const margin = { top: 12, right: 14, bottom: 30, left: 56 };
    const root = svg("svg", { viewBox: "0 0 " + width + " " + height, width, height, role: "img", class: "chart-svg" });
    $("chart-subject").textContent = state.sensor === null ? "all sensors" : "sensor " + state.sensor;
    $("show-all").hidden = state.sensor === null;

    if (!win || !win.step || !series) {
      const message = win && !win.step ? "This range is too long to chart: pick one under " + MAX_BUCKETS + " days." : "Loading…";
      svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, root).textContent = message;
      root.setAttribute("aria-label", message);
      host.prepend(root);
      tooltip.hidden = true;
      return;
    }

    const stepMs = win.step.ms;
    const buckets = (series.buckets || []).map((b) => ({ ...b, t: Date.parse(b.time) }));
    const from = Date.parse(series.from) || win.from.getTime();
    const to = Date.parse(series.to) || win.to.getTime();
    const filled = buckets.filter((b) => b.Count > 0 && b.Average !== null);
    const plot = { x0: margin.left, x1: width - margin.right, y0: height - margin.bottom, y1: margin.top };
    const x = (t) => plot.x0 + ((t - from) / Math.max(1, to - from)) * (plot.x1 - plot.x0);
    // The first and last bucket may be clipped to the window: mark the middle of what is shown.
    const centre = (b) => x((Math.max(b.t, from) + Math.min(b.t + stepMs, to)) / 2);

    let low = Math.min(...filled.map((b) => b.Minimum));
    let high = Math.max(...filled.map((b) => b.Maximum));
    if (!filled.length) {
      low = 0;
      high = 1;
    } else if (low === high) {
      low -= 1;
      high += 1;
    } else {
      const pad = (high - low) * 0.06;
      low -= pad;
      high += pad;
    }
    const yTicks = niceTicks(low, high, height < 260 ? 4 : 6);
    low = Math.min(low, yTicks[0]);
    high = Math.max(high, yTicks[yTicks.length - 1]);
    const y = (v) => plot.y0 - ((v - low) / (high - low)) * (plot.y0 - plot.y1);

    const grid = svg("g", { class: "grid", "aria-hidden": "true" }, root);
    const axis = svg("g", { class: "axis", "aria-hidden": "true" }, root);
    for (const v of yTicks) {
      svg("line", { x1: plot.x0, x2: plot.x1, y1: y(v), y2: y(v) }, grid);
      svg("text", { x: plot.x0 - 6, y: y(v) + 4, "text-anchor": "end" }, axis).textContent = number.format(v) + " °C";
    }
    svg("line", { x1: plot.x0, x2: plot.x1, y1: plot.y0, y2: plot.y0 }, axis);
    for (const tick of timeTicks(from, to, Math.max(2, Math.floor(width / 110)))) {
      const tx = x(tick.t);
      svg("line", { x1: tx, x2: tx, y1: plot.y0, y2: plot.y0 + 4 }, axis);
      svg("text", { x: tx, y: plot.y0 + 18, "text-anchor": "middle" }, axis).textContent = tick.label;
    }

    const runs = runsOf(buckets);
    const band = svg("path", { class: "band", "aria-hidden": "true" }, root);
    const line = svg("path", { class: "line", "aria-hidden": "true" }, root);
    const points = svg("g", { class: "points", "aria-hidden": "true" }, root);
    const radius = filled.length > 200 ? 1.6 : 2.5;
    let bandPath = "";
    let linePath = "";
    for (const run of runs) {
      const top = run.map((b, i) => (i ? "L" : "M") + centre(b).toFixed(1) + " " + y(b.Maximum).toFixed(1));
      const bottom = run.slice().reverse().map((b) => "L" + centre(b).toFixed(1) + " " + y(b.Minimum).toFixed(1));
      bandPath += top.join("") + bottom.join("") + "Z";
      linePath += run.map((b, i) => (i ? "L" : "M") + centre(b).toFixed(1) + " " + y(b.Average).toFixed(1)).join("");
      for (const b of run) svg("circle", { class: "point", cx: centre(b).toFixed(1), cy: y(b.Average).toFixed(1), r: radius }, points);
    }
    band.setAttribute("d", bandPath);
    line.setAttribute("d", linePath);
    line.dataset.runs = String(runs.length);

    const subject = state.sensor === null ? "all sensors" : "sensor " + state.sensor;
    let label;
    if (filled.length) {
      const lowest = Math.min(...filled.map((b) => b.Minimum));
      const highest = Math.max(...filled.map((b) => b.Maximum));
      label =
        "Chart of the average temperature of " + subject + ": " + filled.length + " of " + buckets.length +
        " buckets of " + win.step.label + " hold readings, in " + runs.length + " stretch" + (runs.length === 1 ? "" : "es") +
        "; lowest " + formatTemperature(lowest) + ", highest " + formatTemperature(highest) + ".";
    } else {
      label = "No readings of " + subject + " in this range.";
      svg("text", { x: (plot.x0 + plot.x1) / 2, y: (plot.y0 + plot.y1) / 2, "text-anchor": "middle", class: "empty" }, root).textContent =
        "No readings in this range";
    }
    root.setAttribute("aria-label", label);

    const cursorLine = svg("line", { class: "cursor", y1: plot.y1, y2: plot.y0, visibility: "hidden" }, root);
    const hit = svg("rect", { class: "hit", x: plot.x0, y: plot.y1, width: plot.x1 - plot.x0, height: plot.y0 - plot.y1 }, root);
    const nearest = (clientX) => {
      const box = root.getBoundingClientRect();
      const px = ((clientX - box.left) / box.width) * width;
      const t = from + ((px - plot.x0) / (plot.x1 - plot.x0)) * (to - from);
      let index = Math.floor((t - (buckets[0] ? buckets[0].t : from)) / stepMs);
      return Math.max(0, Math.min(buckets.length - 1, index));
    };
    hit.addEventListener("pointermove", (event) => showBucket(nearest(event.clientX)));
    hit.addEventListener("pointerdown", (event) => showBucket(nearest(event.clientX)));
    hit.addEventListener("pointerleave", () => hideBucket());

    state.chart = { buckets, centre, cursorLine, width, height, root };
    host.prepend(root);
    if (state.cursor !== null && buckets.length) showBucket(Math.min(state.cursor, buckets.length - 1), false);
    else tooltip.hidden = true;
  }

  function showBucket(index, announce = true) {
    const chart = state.chart;
    if (!chart || !chart.buckets.length) return;
    state.cursor = index;
    const bucket = chart.buckets[index];
    const tooltip = $("tooltip");
    const end = new Date(bucket.t + state.window.step.ms);
    const lines = [dateTime.format(new Date(bucket.t)) + " – " + clock.format(end)];
    if (bucket.Count > 0) {
      lines.push("Average " + formatTemperature(bucket.Average));
      lines.push("Minimum " + formatTemperature(bucket.Minimum));
      lines.push("Maximum " + formatTemperature(bucket.Maximum));
      lines.push(count.format(bucket.Count) + " reading" + (bucket.Count === 1 ? "" : "s"));
    } else {
      lines.push("No readings");
    }
    tooltip.replaceChildren(
      ...lines.map((text, i) => {
        const p = document.createElement("p");
        if (i === 0) p.className = "when";
        p.textContent = text;
        return p;
      }),
    );
    const cx = chart.centre(bucket);
    chart.cursorLine.setAttribute("x1", cx.toFixed(1));
    chart.cursorLine.setAttribute("x2", cx.toFixed(1));
    chart.cursorLine.setAttribute("visibility", "visible");
    tooltip.hidden = false;
    const scale = chart.root.getBoundingClientRect().width / chart.width || 1;
    const left = cx * scale;
    const room = $("chart").clientWidth;
    const tipWidth = tooltip.offsetWidth;
    tooltip.style.left = Math.max(0, Math.min(room - tipWidth, left + 12 > room - tipWidth ? left - tipWidth - 12 : left + 12)) + "px";
    tooltip.style.top = "8px";
    if (announce) $("chart-readout").textContent = lines.join(", ");
  }

  function hideBucket() {
    state.cursor = null;
    $("tooltip").hidden = true;
    if (state.chart) state.chart.cursorLine.setAttribute("visibility", "hidden");
  }

  function onChartKey(event) {
    const chart = state.chart;
    if (!chart || !chart.buckets.length) return;
    const last = chart.buckets.length - 1;
    const current = state.cursor === null ? -1 : state.cursor;
    const moves = {
      ArrowRight: Math.min(last, current + 1),
      ArrowLeft: Math.max(0, current === -1 ? last : current - 1),
      Home: 0,
      End: last,
    };
    if (event.key in moves) {
      event.preventDefault();
      showBucket(moves[event.key]);
    } else if (event.key === "Escape") {
      hideBucket();
    }
  }

  // ---- controls ------------------------------------------------------------------------

  function toLocalInput(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function selectSensor(sensor) {
    state.sensor = sensor;
    state.cursor = null;
    renderSensors();
    renderSensorStats(sensor, null);
    refresh();
  }

  function applyCustomRange() {
    const from = new Date($("from").value);
    const to = new Date($("to").value);
    const problem = $("range-error");
    if (isNaN(from) || isNaN(to)) problem.textContent = "Enter both a start and an end.";
    else if (from >= to) problem.textContent = "The start must be before the end.";
    else if (!stepFor(to - from)) problem.textContent = "Pick a range shorter than " + MAX_BUCKETS + " days.";
    else {
      problem.hidden = true;
      state.custom = { from, to };
      state.cursor = null;
      refresh();
      return;
    }
    problem.hidden = false;
  }

  function start() {
    for (const list of document.querySelectorAll("dl.stat-list")) buildStatList(list);
    $("range").addEventListener("change", (event) => {
      state.range = event.target.value;
      state.cursor = null;
      const custom = state.range === "custom";
      $("custom").hidden = !custom;
      if (custom) {
        const win = state.window || currentWindow(Date.now());
        if (!$("from").value) $("from").value = toLocalInput(win.from);
        if (!$("to").value) $("to").value = toLocalInput(win.to);
        if (!state.custom) applyCustomRange();
        else refresh();
      } else {
        $("range-error").hidden = true;
        refresh();
      }
    });
    $("range-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (state.range === "custom") applyCustomRange();
    });
    $("filter").addEventListener("input", (event) => {
      state.filter = event.target.value;
      renderSensors();
    });
    document.querySelector("#sensors thead").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-sort]");
      if (!button) return;
      const key = button.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
      renderSensors();
    });
    document.querySelector("#sensors tbody").addEventListener("click", (event) => {
      const button = event.target.closest("button.select-sensor");
      if (!button) return;
      const sensor = button.dataset.sensor;
      selectSensor(state.sensor === sensor ? null : sensor);
    });
    $("show-all").addEventListener("click", () => selectSensor(null));
    $("refresh").addEventListener("click", () => refresh());
    $("chart").addEventListener("keydown", onChartKey);
    $("chart").addEventListener("blur", () => hideBucket());
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      if (!token) return;
      try {
        window.localStorage.setItem(TOKEN_KEY, token);
      } catch {
        // storage disabled: the token cannot be kept, and the page says so on the next 401
      }
      $("token").value = "";
      $("token-form").hidden = true;
      state.waitingForToken = false;
      refresh();
    });
    $("forget-token").addEventListener("click", () => {
      try {
        window.localStorage.removeItem(TOKEN_KEY);
      } catch {
        // nothing kept
      }
      $("forget-token").hidden = true;
      refresh();
    });
    let pending = false;
    window.addEventListener("resize", () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        renderChart();
      });
    });
    renderChart();
    refresh();
  }

  start();
})();
