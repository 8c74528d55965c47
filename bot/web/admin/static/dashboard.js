// Draws each <figure data-chart> with Chart.js (served from this app), then writes the
// numbers it drew into data-drawn, so what is on screen can be checked against the data.
"use strict";

const COLOURS = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed"];

function drawChart(figure) {
  const spec = JSON.parse(figure.dataset.chart);
  const canvas = figure.querySelector("canvas");
  const whole = spec.series.every((s) => s.values.every((v) => v === null || Number.isInteger(v)));
  const chart = new Chart(canvas, {
    type: spec.type,
    data: {
      labels: spec.labels.map((label) => (label.length === 10 ? label.slice(5) : label)),
      datasets: spec.series.map((series, i) => ({
        label: series.label,
        data: series.values,
        backgroundColor: COLOURS[i % COLOURS.length],
        borderColor: COLOURS[i % COLOURS.length],
        tension: 0.2,
      })),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: spec.series.length > 1, position: "bottom" } },
      scales: {
        y: {
          beginAtZero: true,
          ...(spec.unit === "%" ? { max: 100 } : whole ? { ticks: { precision: 0 } } : {}),
        },
      },
    },
  });
  figure.dataset.drawn = JSON.stringify(chart.data.datasets.map((d) => d.data));
}

document.querySelectorAll("figure[data-chart]").forEach((figure) => {
  try {
    drawChart(figure);
  } catch (error) {
    figure.dataset.drawError = String(error);
  }
});
