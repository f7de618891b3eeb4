"""The small web page served at ``/``: browse collections and run a query (plain HTML + fetch)."""

INDEX_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>hashlearn</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; }
 table { border-collapse: collapse; margin: 0.5em 0; }
 td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
 tr.coll { cursor: pointer; }
 tr.selected { background: #eef; }
 textarea { width: 100%; height: 5em; font-family: monospace; }
 #error { color: #b00; white-space: pre-wrap; }
 label { margin-right: 1em; }
</style>
</head>
<body>
<h1>hashlearn</h1>
<p>
 <label>API key <input id="apikey" type="password" size="40" autocomplete="off"></label>
 <button id="refresh">Load collections</button>
</p>
<div id="error"></div>
<table id="collections">
 <thead><tr><th>name</th><th>points</th><th>dim</th><th>method</th><th>bits</th><th>trained</th></tr></thead>
 <tbody></tbody>
</table>
<h2>Query <span id="selected"></span></h2>
<p>Query vector (JSON list of numbers):</p>
<textarea id="query"></textarea>
<p>
 <label>k <input id="k" type="number" value="10" min="1" max="10000" size="5"></label>
 <label><input id="rerank" type="checkbox"> rerank</label>
 <button id="search">Search</button>
</p>
<table id="results"><thead><tr><th>rank</th><th>id</th><th>distance</th><th>payload</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
let current = null;
const $ = (id) => document.getElementById(id);
function headers() {
  const key = $("apikey").value.trim();
  sessionStorage.setItem("hashlearn-key", key);
  const h = {"Content-Type": "application/json"};
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}
async function call(method, path, body) {
  const resp = await fetch(path, {method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(resp.status + ": " + (data.detail || resp.statusText));
  return data;
}
function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); }
function select(name, tr) {
  current = name;
  $("selected").textContent = "in " + name;
  for (const row of document.querySelectorAll("tr.coll")) row.classList.remove("selected");
  tr.classList.add("selected");
}
async function refresh() {
  $("error").textContent = "";
  const body = $("collections").querySelector("tbody");
  body.innerHTML = "";
  try {
    const data = await call("GET", "/collections");
    for (const c of data.collections) {
      const tr = document.createElement("tr");
      tr.className = "coll";
      tr.dataset.name = c.name;
      for (const v of [c.name, c.points, c.dim, c.method, c.n_bits, c.trained]) cell(tr, String(v));
      tr.addEventListener("click", () => select(c.name, tr));
      body.appendChild(tr);
      if (current === null || current === c.name) select(c.name, tr);
    }
  } catch (e) { $("error").textContent = e.message; }
}
async function search() {
  $("error").textContent = "";
  const body = $("results").querySelector("tbody");
  body.innerHTML = "";
  try {
    if (current === null) throw new Error("select a collection first");
    let vec;
    try { vec = JSON.parse($("query").value); } catch (e) { throw new Error("the query must be a JSON list of numbers"); }
    const req = {vectors: [vec], k: parseInt($("k").value, 10), rerank: $("rerank").checked};
    const res = await call("POST", "/collections/" + encodeURIComponent(current) + "/search", req);
    for (let r = 0; r < res.ids[0].length; r++) {
      const tr = document.createElement("tr");
      tr.className = "result";
      const id = res.ids[0][r];
      cell(tr, String(r + 1)); cell(tr, String(id)); cell(tr, String(res.distances[0][r]));
      let payload = "";
      try { payload = JSON.stringify((await call("GET", "/collections/" + encodeURIComponent(current) + "/points/" + id)).payload); } catch (e) {}
      cell(tr, payload);
      body.appendChild(tr);
    }
    $("results").dataset.done = "1";
  } catch (e) { $("error").textContent = e.message; }
}
$("apikey").value = sessionStorage.getItem("hashlearn-key") || "";
$("refresh").addEventListener("click", refresh);
$("search").addEventListener("click", search);
</script>
</body>
</html>
"""
