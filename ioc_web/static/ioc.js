// The page's only script (no inline scripts: the Content-Security-Policy forbids them).
// Data comes from <script type="application/json"> blocks the server rendered.
"use strict";
(function () {
  var STATUS_COLOUR = {met: "#1b7f3b", below_target: "#c0392b", no_target: "#2c6fbb", no_data: "#8a949e"};

  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function lineOption(trend, target, names, fontSize) {
    var font = fontSize || 12;
    var series = [{name: names.series, type: "line", data: trend, showSymbol: trend.length < 40,
                   lineStyle: {width: 3}, connectNulls: false}];
    if (target !== null) {
      series[0].markLine = {symbol: "none", silent: true, lineStyle: {type: "dashed", color: "#c0392b"},
                            label: {formatter: names.target + " {c}", position: "insideEndTop", fontSize: font},
                            data: [{yAxis: target}]};
    }
    return {animation: false, grid: {left: 30 + 3 * font, right: 30, top: 20 + font, bottom: 20 + font},
            tooltip: {trigger: "axis"}, xAxis: {type: "time", axisLabel: {fontSize: font}},
            yAxis: {type: "value", scale: true, axisLabel: {fontSize: font},
                    max: target !== null ? function (v) { return Math.max(v.max, target); } : null},
            series: series};
  }

  // date selector: show the chosen date at once (the button stays for keyboards without script)
  var select = document.getElementById("date-select");
  if (select) select.addEventListener("change", function () { select.form.submit(); });

  // commune search: filter the table rows by name, accents included as typed
  var search = document.getElementById("commune-search");
  if (search) search.addEventListener("input", function () {
    var q = search.value.trim().toLowerCase();
    document.querySelectorAll("#commune-table tbody tr").forEach(function (tr) {
      tr.hidden = q !== "" && tr.getAttribute("data-name").indexOf(q) === -1;
    });
  });

  // indicator page: province trend with the target line, communes ranked in bars
  var chart = data("chart-data");
  if (chart && window.echarts) {
    var trendEl = document.getElementById("trend-chart");
    if (trendEl) echarts.init(trendEl).setOption(lineOption(chart.trend, chart.target,
                                                             {series: chart.series_name, target: chart.target_name}));
    var rankEl = document.getElementById("ranking-chart");
    if (rankEl && chart.names.length) {
      rankEl.style.height = Math.max(300, chart.names.length * 18 + 60) + "px";
      echarts.init(rankEl).setOption({
        animation: false, grid: {left: 160, right: 40, top: 10, bottom: 30}, tooltip: {trigger: "axis"},
        xAxis: {type: "value", max: chart.unit === "percent" ? 100 : null},
        yAxis: {type: "category", inverse: true, data: chart.names, axisLabel: {interval: 0}},
        series: [{type: "bar", data: chart.values.map(function (v, i) {
                    return {value: v, itemStyle: {color: STATUS_COLOUR[chart.status[i]]}}; }),
                  markLine: chart.target === null ? undefined : {symbol: "none", silent: true,
                    lineStyle: {type: "dashed", color: "#c0392b"}, data: [{xAxis: chart.target}]}}]
      });
    }
  }

  // wall view: one indicator at a time, the next every `rotate` seconds
  var wall = data("wall-data");
  if (wall && wall.slides.length) {
    var wallChart = window.echarts ? echarts.init(document.getElementById("wall-chart")) : null;
    var i = 0;
    var text = function (id, value) { document.getElementById(id).textContent = value; };
    var list = function (id, rows) {
      var ol = document.getElementById(id);
      ol.textContent = "";
      rows.forEach(function (r) {
        var li = document.createElement("li");
        li.textContent = r[0] + " — " + r[1];
        ol.appendChild(li);
      });
    };
    var show = function () {
      var s = wall.slides[i];
      var slide = document.getElementById("slide");
      slide.className = "slide status-" + s.status;
      slide.setAttribute("data-indicator", s.code);
      text("slide-name", s.name);
      text("slide-value", s.value_text);
      text("slide-status", s.status_text);
      document.getElementById("slide-status").className = "status status-" + s.status;
      text("slide-target", wall.labels.target + ": " + s.target_text);
      text("slide-change", wall.labels.change_7 + ": " + s.week_text + " · " + wall.labels.change_30 + ": " + s.month_text);
      text("slide-met", s.met ? wall.labels.communes_met + ": " + s.met : "");
      text("slide-flags", s.flags.join(" · "));
      list("slide-top", s.top);
      list("slide-bottom", s.bottom);
      text("slide-pos", (i + 1) + " / " + wall.slides.length);
      if (wallChart) wallChart.setOption(lineOption(s.trend, s.target,
                                                    {series: wall.labels.province, target: wall.labels.target}, 22), true);
    };
    show();
    setInterval(function () { i = (i + 1) % wall.slides.length; show(); }, wall.rotate * 1000);
  }
})();
