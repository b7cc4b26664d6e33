// The mockbankr dashboard: reads and steers the server through its /__mock endpoints.
// No framework, no build step, nothing fetched from elsewhere. Every value from the
// server is written with textContent, never as HTML.
"use strict";

const TOKEN_KEY = "mockbankr.adminToken";
const POLL_MS = 1000;
const PAGE_SIZE = 50;
const JOURNAL_ROWS = 50;

const state = { offset: 0, total: 0, openJob: null, busy: false, failing: false };

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, data) {
    super((data && data.message) || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function say(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells, attrs) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    tr.append(cell instanceof Node ? cell : el("td", cell));
  }
  for (const [name, value] of Object.entries(attrs || {})) tr.setAttribute(name, value);
  return tr;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function when(iso) {
  if (!iso) return "";
  return iso.replace("T", " ").replace(/(\.\d+)?Z$/, "");
}

// -- clock ------------------------------------------------------------------------

async function refreshClock() {
  const clock = await api("GET", "/__mock/clock");
  $("clock-now").textContent = when(clock.now);
  $("clock-kind").textContent = clock.kind;
  $("clock-speed").textContent = clock.speed === null ? "-" : String(clock.speed);
}

async function changeClock(change) {
  try {
    await api("POST", "/__mock/clock", change);
    say("");
  } catch (error) {
    say(error.message, true);
  }
  await refresh();
}

// -- jobs -------------------------------------------------------------------------

async function refreshJobs() {
  const params = new URLSearchParams({
    order: "newest",
    offset: String(state.offset),
    limit: String(PAGE_SIZE),
  });
  const status = $("jobs-status").value;
  if (status) params.set("status", status);
  const page = await api("GET", "/__mock/jobs?" + params);
  state.total = page.total;
  if (state.offset > 0 && state.offset >= page.total) {
    state.offset = Math.max(0, Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE);
  }
  $("jobs-total").textContent = `(${page.total})`;
  const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
  $("jobs-page").textContent = `page ${Math.floor(state.offset / PAGE_SIZE) + 1} of ${pages}`;
  $("jobs-prev").disabled = state.offset === 0;
  $("jobs-next").disabled = state.offset + PAGE_SIZE >= page.total;
  fill(
    $("jobs-table").tBodies[0],
    page.jobs.map((job) =>
      row(
        [
          el("td", job.jobId, "id"),
          el("td", job.ownerLabel, "owner"),
          el("td", job.category, "category"),
          el("td", job.status, "status status-" + job.status),
          el("td", when(job.schedule.createdAt), "created"),
          el("td", when(job.schedule.startedAt), "started"),
          el("td", when(job.schedule.cancelledAt || job.schedule.finishedAt), "finished"),
          el("td", job.costUsdc, "cost"),
        ],
        { "data-job-id": job.jobId },
      ),
    ),
  );
}

async function refreshJobDetail() {
  if (state.openJob === null) return;
  const job = await api("GET", "/__mock/jobs/" + encodeURIComponent(state.openJob));
  $("job-detail-id").textContent = job.jobId;
  const events = [["submitted", job.schedule.createdAt], ["started", job.schedule.startedAt]];
  for (const update of job.body.statusUpdates || []) {
    events.push([update.message, update.timestamp]);
  }
  if (job.schedule.cancelledAt) events.push(["cancelled", job.schedule.cancelledAt]);
  else if (job.schedule.finishedAt) events.push([job.outcome, job.schedule.finishedAt]);
  events.push(["status now: " + job.status, null]);
  fill(
    $("job-timeline"),
    events.map(([what, at]) => el("li", at ? `${when(at)}  ${what}` : what)),
  );
  $("job-body").textContent = JSON.stringify(job.body, null, 2);
  $("job-detail").hidden = false;
}

async function openJob(jobId) {
  state.openJob = jobId;
  try {
    await refreshJobDetail();
  } catch (error) {
    say(error.message, true);
  }
}

// -- journal ----------------------------------------------------------------------

async function refreshJournal() {
  const params = new URLSearchParams({ limit: String(JOURNAL_ROWS) });
  const path = $("journal-path").value.trim();
  const status = $("journal-status").value.trim();
  if (path) params.set("path", path);
  if (/^[0-9]{1,3}$/.test(status)) params.set("status", status);
  const journal = await api("GET", "/__mock/journal?" + params);
  fill(
    $("journal-table").tBodies[0],
    journal.entries
      .slice()
      .reverse()
      .map((entry) => {
        const tr = row([
          entry.seq,
          when(entry.simTime),
          entry.method,
          entry.path,
          el("td", entry.state === "in-flight" ? "in flight" : entry.status, "status"),
          entry.owner === null ? "" : entry.owner,
          entry.fault === null ? "" : entry.fault,
        ]);
        if (entry.state === "in-flight") tr.className = "in-flight";
        else if (entry.status === 0 || entry.status >= 400) tr.className = "bad";
        return tr;
      }),
  );
}

// -- ledger -----------------------------------------------------------------------

async function refreshLedger() {
  const ledger = await api("GET", "/__mock/ledger");
  $("ledger-count").textContent = ledger.count;
  $("ledger-total").textContent = ledger.totalUsdc;
  $("ledger-duplicates").textContent = ledger.duplicateCount;
  $("ledger-duplicates").className = ledger.duplicateCount ? "fail" : "";
  fill(
    $("ledger-wallets").tBodies[0],
    Object.entries(ledger.byPayer).map(([payer, t]) => row([payer, t.count, t.totalUsdc])),
  );
  fill(
    $("ledger-statuses").tBodies[0],
    Object.entries(ledger.byStatus)
      .filter(([, t]) => t.count > 0)
      .map(([status, t]) => row([status, t.count, t.totalUsdc])),
  );
  fill(
    $("ledger-duplicate-list"),
    ledger.duplicates.map((group) =>
      el(
        "li",
        `${group.payer} paid ${group.count} times for the same prompt` +
          ` (${group.jobIds.join(", ")}): ${group.extraUsdc} USDC extra`,
        "fail",
      ),
    ),
  );
}

// -- rules ------------------------------------------------------------------------

async function refreshRules() {
  const listing = await api("GET", "/__mock/rules");
  fill(
    $("rules-table").tBodies[0],
    listing.rules.map((rule) => {
      const remove = el("button", "delete");
      remove.type = "button";
      remove.addEventListener("click", () => deleteRule(rule.id));
      const cell = el("td");
      cell.append(remove);
      return row(
        [
          rule.id,
          JSON.stringify(rule.match),
          JSON.stringify(rule.action),
          rule.remaining === null ? "∞" : rule.remaining,
          cell,
        ],
        { "data-rule-id": rule.id },
      );
    }),
  );
}

async function addRule() {
  const error = $("rule-error");
  let rule;
  try {
    rule = JSON.parse($("rule-json").value);
  } catch (exc) {
    error.textContent = "not JSON: " + exc.message;
    return;
  }
  try {
    const added = await api("POST", "/__mock/rules", rule);
    error.textContent = "";
    say(`rule ${added.id} added`);
  } catch (exc) {
    error.textContent = exc.message;
  }
  await refresh();
}

async function deleteRule(ruleId) {
  try {
    await api("DELETE", "/__mock/rules/" + encodeURIComponent(ruleId));
    say(`rule ${ruleId} deleted`);
  } catch (error) {
    say(error.message, true);
  }
  await refresh();
}

// -- verdicts ---------------------------------------------------------------------

async function refreshVerdicts() {
  const report = await api("GET", "/__mock/verdicts");
  const clients = report.clients.map((client) => {
    const box = el("div", null, "client");
    box.dataset.owner = client.owner;
    box.append(el("strong", client.owner), el("span", ` · ${client.requests} requests`));
    if (client.usdcWasted !== "0") {
      box.append(el("span", ` · ${client.usdcWasted} USDC wasted`, "fail"));
    }
    const checks = el("div");
    const evidence = el("div");
    for (const [check, verdict] of Object.entries(client.verdicts)) {
      const badge = el("span", `${check}: ${verdict.verdict}`, "check " + verdict.verdict);
      badge.dataset.check = check;
      badge.dataset.verdict = verdict.verdict;
      checks.append(badge);
      for (const incident of verdict.evidence || []) {
        const seen = incident.entries
          .map((e) => `#${e.seq} ${when(e.simTime)} ${e.method} ${e.path} → ${e.status}`)
          .join("; ");
        evidence.append(el("p", `${check}: ${incident.message} (${seen})`, "evidence fail"));
      }
    }
    box.append(checks, evidence);
    return box;
  });
  $("verdicts").replaceChildren(...(clients.length ? clients : [el("p", "no clients yet")]));
}

// -- the loop ---------------------------------------------------------------------

async function refresh() {
  if (state.busy) return;
  state.busy = true;
  try {
    await Promise.all([
      refreshClock(),
      refreshJobs(),
      refreshJobDetail(),
      refreshJournal(),
      refreshLedger(),
      refreshRules(),
      refreshVerdicts(),
    ]);
    if (state.failing) say("");
    state.failing = false;
  } catch (error) {
    state.failing = true;
    say(
      error.status === 401 ? "The server needs its admin token: enter it above" : error.message,
      true,
    );
  } finally {
    state.busy = false;
  }
}

function start() {
  const token = $("token");
  token.value = sessionStorage.getItem(TOKEN_KEY) || "";
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (token.value) sessionStorage.setItem(TOKEN_KEY, token.value);
    else sessionStorage.removeItem(TOKEN_KEY);
    refresh();
  });
  $("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token.value = "";
    refresh();
  });
  for (const button of document.querySelectorAll("[data-advance]")) {
    button.addEventListener("click", () =>
      changeClock({ advance: Number(button.dataset.advance) }),
    );
  }
  $("speed-set").addEventListener("click", () => {
    const speed = Number($("speed-input").value);
    if ($("speed-input").value === "" || !Number.isFinite(speed)) {
      say("speed must be a number", true);
      return;
    }
    changeClock({ speed });
  });
  $("jobs-status").addEventListener("change", () => {
    state.offset = 0;
    refresh();
  });
  $("jobs-prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    refresh();
  });
  $("jobs-next").addEventListener("click", () => {
    state.offset += PAGE_SIZE;
    refresh();
  });
  $("jobs-table").tBodies[0].addEventListener("click", (event) => {
    const tr = event.target.closest("tr[data-job-id]");
    if (tr) openJob(tr.dataset.jobId);
  });
  $("job-detail-close").addEventListener("click", () => {
    state.openJob = null;
    $("job-detail").hidden = true;
  });
  for (const id of ["journal-path", "journal-status"]) $(id).addEventListener("input", refresh);
  $("rule-add").addEventListener("click", addRule);
  refresh();
  setInterval(refresh, POLL_MS);
}

document.addEventListener("DOMContentLoaded", start);
