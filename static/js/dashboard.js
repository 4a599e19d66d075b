// The dashboard's charts: each `.chart[data-series]` is drawn with uPlot from the JSON in that
// attribute (data, never code, so the Content-Security-Policy stays "script-src 'self'"; not a
// <script type="application/json">: htmx under the CSP drops script elements from swapped-in
// content, see search/templatetags/ops_tags.py). Sections are re-fetched by htmx; the
// charts of a swapped-in section are drawn again once it is in the document.
(function () {
  const COLOURS = ["#2456c7", "#d1495b", "#2b7a3d", "#edae49", "#6a4c93", "#00798c", "#8d6a9f", "#3d405b"];

  function draw(el) {
    if (!el.dataset.series || typeof uPlot === "undefined") return;
    const data = JSON.parse(el.dataset.series);
    el.replaceChildren();
    if (!data.x || data.x.length === 0) {
      const empty = document.createElement("p");
      empty.className = "chart-empty";
      empty.textContent = (el.dataset.title || "chart") + ": no data yet";
      el.append(empty);
      return;
    }
    const series = [{}].concat(data.series.map((s, i) => ({
      label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true,
      points: { show: data.x.length < 60 },
    })));
    const scales = { x: { time: true } };
    if (data.y_min !== undefined) scales.y = { range: [data.y_min, data.y_max] };
    const options = {
      title: el.dataset.title || "", width: Math.max(280, el.clientWidth || 520), height: 220,
      series: series, scales: scales, legend: { live: false },
      axes: [{}, { size: 64 }],  // room for "70,000" on the y axis
    };
    const chart = new uPlot(options, [data.x].concat(data.series.map((s) => s.values)), el);
    el.dataset.points = String(data.x.length);  // read by the browser test
    el._chart = chart;
  }

  function drawAll(root) {
    root.querySelectorAll(".chart[data-series]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", () => drawAll(document));
  // htmx:load fires on each piece of new content once it is in the document (afterSettle of
  // an outerHTML swap fires on the element that was replaced, no longer in the document)
  document.addEventListener("htmx:load", (event) => {
    if (event.target !== document.body) drawAll(event.target);
  });
})();
