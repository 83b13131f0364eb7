// connects dashboard: draws the charts (Chart.js) from JSON the server put in the page.
// Runs on load and again after htmx swaps a section that holds a chart. Also: a channel
// form's target field asks for what the chosen kind needs (an address for e-mail, R47).
(function () {
  "use strict";

  var MARKS = [
    { key: "auto_topup", label: "Auto top-up", color: "#16a34a", style: "triangle", sign: "+" },
    { key: "purchase", label: "Purchase", color: "#2563eb", style: "rectRot", sign: "+" },
    { key: "expire", label: "Expired", color: "#d97706", style: "crossRot", sign: "-" },
  ];

  function css(name, fallback) {
    var v = getComputedStyle(document.body).getPropertyValue(name).trim();
    return v || fallback;
  }

  function shortDay(iso) {
    var d = new Date(iso + "T00:00:00Z");
    return d.toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
  }

  function balanceChart(canvas, data) {
    var pool = css("--pool", "#108a00");
    var datasets = [
      {
        label: "Balance",
        data: data.balance,
        borderColor: pool,
        backgroundColor: pool + "1a",
        fill: true,
        stepped: "after",
        borderWidth: 2,
        pointRadius: 0,
        pointHoverRadius: 3,
        order: 2,
      },
    ];
    MARKS.forEach(function (m) {
      var points = data.balance.map(function (b, i) { return data[m.key][i] ? b : null; });
      if (!points.some(function (p) { return p !== null; })) return;
      datasets.push({
        label: m.label,
        data: points,
        amounts: data[m.key],
        sign: m.sign,
        showLine: false,
        pointStyle: m.style,
        pointRadius: 6,
        pointHoverRadius: 8,
        borderWidth: 2,
        borderColor: m.color,
        backgroundColor: m.color,
        order: 1,
      });
    });
    return new Chart(canvas, {
      type: "line",
      data: { labels: data.labels.map(shortDay), datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { display: false },
          tooltip: {
            filter: function (item) { return item.raw !== null; },
            callbacks: {
              label: function (item) {
                var ds = item.dataset;
                if (ds.amounts) return ds.label + ": " + ds.sign + ds.amounts[item.dataIndex];
                return "Balance: " + item.formattedValue;
              },
            },
          },
        },
        scales: {
          x: { grid: { display: false }, ticks: { maxTicksLimit: 7, maxRotation: 0, autoSkip: true } },
          y: { beginAtZero: true, ticks: { precision: 0 }, grid: { color: "#eef0f3" } },
        },
      },
    });
  }

  function membersChart(canvas, data) {
    var pool = css("--pool", "#108a00");
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Spent this month", data: data.spent, backgroundColor: pool, borderRadius: 4, maxBarThickness: 42 },
          {
            label: "Monthly budget",
            data: data.budget,
            backgroundColor: "rgba(0,0,0,0)",
            borderColor: "#9ca3af",
            borderWidth: 1.5,
            borderDash: [4, 3],
            borderRadius: 4,
            maxBarThickness: 42,
          },
        ],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
        scales: {
          x: { grid: { display: false } },
          y: { beginAtZero: true, ticks: { precision: 0 }, grid: { color: "#eef0f3" } },
        },
      },
    });
  }

  // Results (R39): proposals sent, viewed, interviewed, hired, as falling bars.
  function funnelChart(canvas, data) {
    var pool = css("--pool", "#108a00");
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{ label: "Proposals", data: data.counts, backgroundColor: pool, borderRadius: 4, maxBarThickness: 56 }],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: {
          x: { grid: { display: false } },
          y: { beginAtZero: true, ticks: { precision: 0 }, grid: { color: "#eef0f3" } },
        },
      },
    });
  }

  var KINDS = { balance: balanceChart, members: membersChart, funnel: funnelChart };

  function draw(root) {
    if (typeof Chart === "undefined") return;
    (root || document).querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.source);
      var make = KINDS[canvas.dataset.chart];
      if (!source || !make) return;
      var old = Chart.getChart(canvas);
      if (old) old.destroy();
      make(canvas, JSON.parse(source.textContent));
      canvas.dataset.drawn = "true";
    });
  }

  // The Buy form's running total as the quantity is typed (a preview: the confirm
  // step shows the engine's own price and what pays before anything is charged).
  var SYMBOLS = { USD: "$", EUR: "\u20ac", GBP: "\u00a3" };

  function showTotal(input) {
    var out = document.querySelector("[data-testid=buy-total]");
    if (!out) return;
    var text = input.value.trim();
    if (!/^\d{1,12}$/.test(text)) { out.textContent = "\u2014"; return; }
    var cents = Number(text) * Number(input.dataset.unitCents);
    var amount = (cents / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    var symbol = SYMBOLS[input.dataset.currency];
    out.textContent = symbol ? symbol + amount : amount + " " + input.dataset.currency;
    if (Number(text) > Number(input.dataset.max)) {
      out.textContent += " (more than the " + Number(input.dataset.max).toLocaleString("en-US") + " one purchase may buy)";
    }
  }

  document.addEventListener("input", function (e) {
    if (e.target && e.target.dataset && e.target.dataset.unitCents) showTotal(e.target);
  });

  // The chosen option carries its field's label, placeholder and keyboard (the server
  // renders them for the kind chosen first, so the form works without this too).
  document.addEventListener("change", function (e) {
    var select = e.target;
    if (!select.matches || !select.matches("select[data-target-field]")) return;
    var option = select.options[select.selectedIndex];
    var input = document.getElementById(select.dataset.targetField);
    if (!option || !input) return;
    var label = document.querySelector('label[for="' + input.id + '"]');
    if (label) label.textContent = option.dataset.label;
    input.placeholder = option.dataset.placeholder;
    input.inputMode = option.dataset.inputmode;
  });

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (e) { draw(e.target); });
})();
