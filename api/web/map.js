// 路面点検 区間マップ: segments from /api/v1/segments?view=map (the lean copy: the properties the map
// colours and labels by, lines simplified within 0.5 m, as a compact table; gzip, cached by the server
// until the data change) coloured by 診断区分 or an indicator, a side panel with figures, history and frames (from
// /segments/{id}), repair candidates. Every request carries the bearer token typed in the header
// (kept in this browser's localStorage).
"use strict";

const config = JSON.parse(document.getElementById("config").textContent);
const API = "/api/v1";
const $ = (id) => document.getElementById(id);

const CATEGORY_COLOR = { I: "#3cb371", II: "#ffa500", III: "#e02020" };
const UNKNOWN = "#9e9e9e";
// MLIT 舗装点検要領 thresholds (I / II / III) for each indicator; potholes: none / one / more.
const SCALES = {
  crack_ratio_pct: { label: "ひび割れ率 (%)", steps: [20, 40] },
  rut_depth_mm: { label: "わだち掘れ量 (mm)", steps: [20, 40] },
  iri_mm_per_m: { label: "IRI (mm/m)", steps: [3, 8] },
  pothole_count: { label: "ポットホール (箇所)", steps: [1, 2] },
};
const STEP_COLORS = ["#3cb371", "#ffa500", "#e02020"];
const CHANGE_COLOR = { worse: "#e02020", same: "#3c78d8", better: "#3cb371", new: UNKNOWN };
const LABELS = {
  segment_id: "区間", route_no: "路線番号", direction: "上下", kp_km: "距離標 (km)", offset_m: "追加距離 (m)",
  length_m: "延長 (m)", inspection_date: "点検年月日", category: "診断区分", crack_ratio_pct: "ひび割れ率 (%)",
  coverage_pct: "調査範囲 (%)", rut_depth_mm: "わだち掘れ量 (mm)", rut_depth_max_mm: "わだち掘れ量 最大 (mm)",
  iri_mm_per_m: "IRI (mm/m)", iri_uncertainty_mm_per_m: "IRI 不確かさ (mm/m)", pothole_count: "ポットホール (箇所)",
  mci: "MCI", partial: "区間の一部のみ走行", run_id: "走行 (run)", result_version: "解析版 (job)",
};

const map = L.map("map");
if (config.tile_url) {
  L.tileLayer(config.tile_url, { attribution: config.tile_attribution, maxZoom: 18 }).addTo(map);
}
map.setView([40.82, 140.74], 12);
let layer = null;
let legend = null;
let selected = null;

$("token").value = localStorage.getItem("pavementToken") || "";
$("token").addEventListener("change", () => localStorage.setItem("pavementToken", $("token").value.trim()));

function headers() {
  return { Authorization: "Bearer " + $("token").value.trim() };
}

async function api(path, options = {}) {
  const response = await fetch(API + path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response;
}

function status(text) { $("status").textContent = text; }

// Above this many segments the lines are drawn on one canvas: thousands of SVG paths make panning slow.
const CANVAS_ABOVE = 2000;

function filters(year) {
  const params = new URLSearchParams({ view: "map" });
  for (const id of ["route_no", "direction", "category"]) {
    if ($(id).value) params.set(id, $(id).value);
  }
  if (year) params.set("year", year);
  return params;
}

// view=map answers {fields: ["id", "line", ...properties], segments: [[...], ...], repair_candidates:
// [id, ...]}; the line is in integers of 1e-6 degree, the first point's lon, lat, then each next
// point's differences.
function toGeoJSON(answer) {
  const names = answer.fields.slice(2);
  const marked = new Set(answer.repair_candidates);
  const features = answer.segments.map((s) => {
    const line = s[1];
    const coordinates = [];
    let lon = 0, lat = 0;
    for (let i = 0; i + 1 < line.length; i += 2) {
      lon += line[i];
      lat += line[i + 1];
      coordinates.push([lon / 1e6, lat / 1e6]);
    }
    const properties = {};
    names.forEach((name, i) => { properties[name] = s[i + 2]; });
    properties.repair_candidate = marked.has(s[0]);
    return { type: "Feature", id: s[0], geometry: { type: "LineString", coordinates }, properties };
  });
  return { type: "FeatureCollection", features };
}

async function segments(year) {
  return toGeoJSON(await (await api("/segments?" + filters(year))).json());
}

function stepColor(value, steps) {
  if (value === null || value === undefined) return UNKNOWN;
  return STEP_COLORS[steps.filter((s) => value >= s).length];
}

const RANK = { I: 1, II: 2, III: 3 };

function changeOf(now, before) {
  if (!before) return "new";
  const a = RANK[now.category], b = RANK[before.category];
  if (a && b) return a > b ? "worse" : a < b ? "better" : "same";
  if (now.iri_mm_per_m !== null && before.iri_mm_per_m !== null) {
    const d = now.iri_mm_per_m - before.iri_mm_per_m;
    return d > 0.5 ? "worse" : d < -0.5 ? "better" : "same";
  }
  return "same";
}

function colorOf(p, by) {
  if (by === "category") return CATEGORY_COLOR[p.category] || UNKNOWN;
  if (by === "change") return CHANGE_COLOR[p._change];
  return stepColor(p[by], SCALES[by].steps);
}

function drawLegend(by) {
  if (legend) legend.remove();
  legend = L.control({ position: "topright" });
  legend.onAdd = () => {
    const div = L.DomUtil.create("div", "legend");
    let rows;
    if (by === "category") {
      rows = Object.entries(CATEGORY_COLOR).map(([k, c]) => [c, k]).concat([[UNKNOWN, "未評価"]]);
      div.innerHTML = "<b>診断区分</b>";
    } else if (by === "change") {
      rows = [[CHANGE_COLOR.worse, "悪化"], [CHANGE_COLOR.same, "変化なし"], [CHANGE_COLOR.better, "改善"],
              [CHANGE_COLOR.new, "前年データなし"]];
      div.innerHTML = "<b>前年比較</b>";
    } else {
      const [a, b] = SCALES[by].steps;
      rows = [[STEP_COLORS[0], `< ${a}`], [STEP_COLORS[1], `${a} – ${b}`], [STEP_COLORS[2], `≥ ${b}`],
              [UNKNOWN, "未計測"]];
      div.innerHTML = `<b>${SCALES[by].label}</b>`;
    }
    for (const [color, text] of rows) {
      const line = document.createElement("div");
      line.innerHTML = `<i style="background:${color}"></i>`;
      line.append(text);
      div.append(line);
    }
    return div;
  };
  legend.addTo(map);
}

async function load() {
  const by = $("color_by").value;
  if (by === "change" && !$("year").value) {
    status("前年比較: 年を指定してください");
    return;
  }
  status("読み込み中…");
  try {
    const year = $("year").value ? Number($("year").value) : null;
    const data = await segments(year);
    if (by === "change") {
      const lastYear = year ? year - 1 : null;
      const before = lastYear ? await segments(lastYear) : { features: [] };
      const old = new Map(before.features.map((f) => [f.properties.segment_id, f.properties]));
      data.features.forEach((f) => { f.properties._change = changeOf(f.properties, old.get(f.properties.segment_id)); });
    }
    if (layer) layer.remove();
    layer = L.geoJSON(data, {
      renderer: data.features.length > CANVAS_ABOVE ? L.canvas({ tolerance: 4 }) : undefined,
      style: (f) => ({
        color: colorOf(f.properties, by), weight: f.properties.repair_candidate ? 10 : 7, opacity: 0.9,
        dashArray: f.properties.repair_candidate ? "10 6" : null,
      }),
      onEachFeature: (f, l) => {
        const p = f.properties;
        l.bindTooltip(`${p.route_no} ${p.direction} ${p.kp_km}km+${p.offset_m}m`);
        l.on("click", () => openPanel(f.id));
        l.on("add", () => l.getElement()?.setAttribute("data-segment", p.segment_id));
      },
    }).addTo(map);
    drawLegend(by);
    if (data.features.length) map.fitBounds(layer.getBounds(), { padding: [30, 30] });
    status(`${data.features.length} 区間`);
  } catch (e) {
    status("エラー " + e.message);
  }
}

function fmt(v) {
  if (v === null || v === undefined || v === "") return "—";
  if (v === true) return "はい";
  if (v === false) return "いいえ";
  return String(v);
}

function fillTable(table, rows) {
  table.replaceChildren(...rows.map((cells, i) => {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement(i === 0 && table.id === "history" ? "th" : "td");
      td.textContent = fmt(c);
      tr.append(td);
    }
    return tr;
  }));
}

async function openPanel(id) {
  selected = id;
  const detail = await (await api(`/segments/${id}`)).json();
  const p = detail.feature.properties;
  $("panel").hidden = false;
  map.invalidateSize();
  $("panel_title").textContent = `路線 ${p.route_no} ${p.direction} ${p.kp_km} km + ${p.offset_m} m`;
  fillTable($("figures"), Object.entries(LABELS).filter(([k]) => k in p).map(([k, label]) => [label, p[k]]));
  fillTable($("history"), [["点検日", "区分", "ひび割れ率", "わだち", "IRI", "穴"]].concat(
    detail.history.map((h) => [
      h.inspection_date + (h.current ? "" : " (旧版)"), h.category, h.crack_ratio_pct, h.rut_depth_mm,
      h.iri_mm_per_m, h.pothole_count,
    ])));
  const candidate = detail.repair_candidate;
  $("repair_note").value = candidate ? candidate.note : "";
  $("repair_state").textContent = candidate ? `登録済 (${candidate.marked_at.slice(0, 10)})` : "未登録";
  $("repair_unmark").disabled = !candidate;
  $("repair").dataset.key = p.segment_id;
  const frames = $("frames");
  frames.replaceChildren();
  if (!detail.frames.length) frames.textContent = "代表画像なし";
  for (const fr of detail.frames) {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.alt = `写真 ${fr.frame_index}`;
    const caption = document.createElement("figcaption");
    const found = fr.detections.map((d) => `${d.class} ${Math.round(d.score * 100)}%`).join(", ");
    caption.textContent = `写真番号 ${fr.frame_index}  動画 ${fr.video_time_s.toFixed(1)} s  検出: ${found || "なし"}`;
    figure.append(img, caption);
    frames.append(figure);
    // the JPEG needs the bearer token too: fetch it, show it as a blob
    api(fr.url.slice(fr.url.indexOf(API) + API.length))
      .then((r) => r.blob())
      .then((b) => { img.src = URL.createObjectURL(b); })
      .catch((e) => { caption.textContent += ` (画像を読めません: ${e.message})`; });
  }
}

$("repair_mark").addEventListener("click", async () => {
  try {
    await api("/repair-candidates", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ segment: String(selected), note: $("repair_note").value }),
    });
    await openPanel(selected);
    await load();
  } catch (e) { $("repair_state").textContent = e.message; }
});

$("repair_unmark").addEventListener("click", async () => {
  try {
    await api(`/repair-candidates/${encodeURIComponent($("repair").dataset.key)}`, { method: "DELETE" });
    await openPanel(selected);
    await load();
  } catch (e) { $("repair_state").textContent = e.message; }
});

$("close").addEventListener("click", () => { $("panel").hidden = true; map.invalidateSize(); });
$("load").addEventListener("click", load);
$("color_by").addEventListener("change", load);
if ($("token").value) load();
