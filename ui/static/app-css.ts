// The UI's stylesheet, served as /static/app.css (a string, so the single executable carries
// it). Hand-made: system fonts, one accent colour, readable tables and logs.
export const APP_CSS = `
:root {
  --bg: #f6f7f9; --panel: #fff; --ink: #1d2330; --muted: #667085; --line: #dde1e8;
  --accent: #2459d6; --accent-ink: #fff; --ok: #127a3e; --ok-bg: #e3f5ea; --bad: #b42318; --bad-bg: #fdeceb;
  --wait: #8a5a00; --wait-bg: #fff3d6; --info: #1f5fa8; --info-bg: #e4eefb; --code-bg: #10141c; --code-ink: #d7dde8;
  --radius: 6px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
  font-size: 15px; line-height: 1.45; color: var(--ink); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
h1 { font-size: 1.5rem; margin: 0 0 .8rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .6rem; }
h2 .small { font-weight: normal; margin-left: .6rem; }
.mono, code, pre, .logview { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.small { font-size: .85rem; }
.muted { color: var(--muted); }
.num { text-align: right; font-variant-numeric: tabular-nums; }

header.top { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.5rem; background: #151b26; color: #e9edf5; }
header.top a { color: #c9d3e6; }
.brand { font-weight: 700; font-size: 1.1rem; color: #fff !important; letter-spacing: .02em; }
.main-nav { display: flex; gap: 1.1rem; flex: 1; }
.main-nav a[aria-current="page"] { color: #fff; border-bottom: 2px solid #7ea2ff; padding-bottom: 2px; }
.logout { display: flex; align-items: center; gap: .6rem; margin: 0; }
.logout .who { color: #9aa6bd; font-size: .85rem; }
button.link { background: none; border: 0; color: #c9d3e6; padding: 0; cursor: pointer; font: inherit; }
button.link:hover { text-decoration: underline; }

main { max-width: 1180px; margin: 0 auto; padding: 1.4rem 1.5rem 4rem; }
.page-head { display: flex; align-items: center; justify-content: space-between; gap: 1rem; margin-bottom: .6rem; }
.page-head h1, .page-head h2 { margin: 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); padding: 1rem 1.2rem; margin-bottom: 1rem; }
.flash { background: var(--info-bg); color: var(--info); border: 1px solid #c4d7f2; border-radius: var(--radius); padding: .55rem .9rem; }
.notice { background: var(--panel); border: 1px dashed var(--line); border-radius: var(--radius); padding: .8rem 1rem; color: var(--muted); }
.alert { background: var(--bad-bg); border: 1px solid #f4c7c3; border-radius: var(--radius); padding: .8rem 1rem; margin: .8rem 0; color: #5c1610; }
.alert h2 { margin-top: 0; color: var(--bad); }
.empty { color: var(--muted); font-style: italic; }

.service-head { display: flex; align-items: baseline; gap: 1.4rem; border-bottom: 1px solid var(--line); margin-bottom: 1rem; flex-wrap: wrap; }
.service-head h1 { margin: 0 0 .4rem; }
.service-head h1 a { color: var(--ink); }
.tabs { display: flex; gap: .2rem; }
.tabs a { padding: .45rem .8rem; color: var(--muted); border-bottom: 2px solid transparent; }
.tabs a[aria-current="page"] { color: var(--ink); border-bottom-color: var(--accent); font-weight: 600; }
.seg { display: inline-flex; border: 1px solid var(--line); border-radius: var(--radius); overflow: hidden; background: var(--panel); }
.seg a { padding: .25rem .75rem; color: var(--muted); border-left: 1px solid var(--line); }
.seg a:first-child { border-left: 0; }
.seg a[aria-current="page"] { background: var(--accent); color: var(--accent-ink); }

table.list { width: 100%; border-collapse: collapse; background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); overflow: hidden; }
table.list th, table.list td { padding: .5rem .7rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: middle; }
table.list th { font-size: .78rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); background: #fafbfc; font-weight: 600; }
table.list th.num, table.list td.num { text-align: right; }
table.services td { white-space: nowrap; }
table.list tr:last-child td { border-bottom: 0; }
table.list tr.current td { background: #f3f7ff; }
table.list tfoot th { color: var(--ink); font-size: .9rem; text-transform: none; letter-spacing: 0; }
.row-actions { white-space: nowrap; text-align: right; }
.row-actions > *, .row-actions > form.inline { margin-left: .6rem; }
.cert-error { color: var(--bad); max-width: 32rem; overflow-wrap: anywhere; }
label.check { display: block; margin: .3rem 0 .6rem; font-weight: normal; }
label.check input { width: auto; margin: 0 .4rem 0 0; vertical-align: middle; }
.masked { color: var(--muted); letter-spacing: .1em; }
code.revealed { background: #f1f3f7; padding: .1rem .35rem; border-radius: 4px; word-break: break-all; }

.badge { display: inline-block; padding: .1rem .55rem; border-radius: 999px; font-size: .8rem; font-weight: 600; white-space: nowrap; }
.badge-ok { background: var(--ok-bg); color: var(--ok); }
.badge-bad { background: var(--bad-bg); color: var(--bad); }
.badge-wait { background: var(--wait-bg); color: var(--wait); }
.badge-info { background: var(--info-bg); color: var(--info); }
.badge-muted { background: #eef0f3; color: var(--muted); }
.live-dot { display: inline-block; width: .55rem; height: .55rem; margin-left: .5rem; border-radius: 50%; background: #e0a100; animation: pulse 1.2s infinite; }
@keyframes pulse { 50% { opacity: .25; } }

dl.facts { display: grid; grid-template-columns: 11rem 1fr; gap: .45rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; min-width: 0; }
pre.cmd { margin: 0; background: #f1f3f7; padding: .35rem .6rem; border-radius: 4px; white-space: pre-wrap; }
ul.manifest-settings { margin: .3rem 0 .7rem; padding-left: 1.1rem; }
ul.manifest-settings li.overridden .mono { text-decoration: line-through; }
pre.manifest-text { max-height: 24rem; overflow: auto; }

form.inline { display: inline; margin: 0; }
.field { margin-bottom: .9rem; }
.field label { display: block; font-weight: 600; margin-bottom: .25rem; }
.field .hint { color: var(--muted); font-size: .83rem; margin-top: .25rem; }
.field label.check { display: flex; gap: .45rem; align-items: center; font-weight: 400; }
.field label.check input { width: auto; margin: 0; }
.field-error { color: var(--bad); font-size: .87rem; margin-top: .3rem; font-weight: 500; }
.field.has-error input, .field.has-error textarea, .field.has-error select { border-color: var(--bad); box-shadow: 0 0 0 2px #fbd5d1; }
.form-error { background: var(--bad-bg); color: var(--bad); border-radius: var(--radius); padding: .55rem .8rem; margin-bottom: 1rem; }
input, select, textarea { font: inherit; color: inherit; width: 100%; padding: .45rem .6rem; border: 1px solid #c8ced9; border-radius: var(--radius); background: #fff; }
input[type="file"] { padding: .35rem; background: #fafbfc; }
textarea { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: .9rem; resize: vertical; }
input:focus, select:focus, textarea:focus { outline: 2px solid #9db7f5; outline-offset: 0; border-color: var(--accent); }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 0 1.2rem; }
.grid4 { display: grid; grid-template-columns: 2fr 1fr 1fr 1fr; gap: 0 1rem; }
.range { display: flex; gap: 1rem; align-items: flex-start; flex-wrap: wrap; }
.range .field { width: 15rem; }
.range button { margin-top: 1.75rem; }
fieldset.source { border: 1px solid var(--line); border-radius: var(--radius); padding: .8rem 1rem .2rem; margin: 0 0 1rem; }
fieldset.source legend { font-weight: 600; padding: 0 .3rem; }
.or { color: var(--muted); margin: -.3rem 0 .5rem; font-size: .85rem; text-transform: uppercase; letter-spacing: .06em; }
output { font-weight: 600; color: var(--ink); }
.actions { display: flex; justify-content: flex-end; }

button, .button { display: inline-block; font: inherit; font-weight: 600; padding: .45rem 1rem; border-radius: var(--radius); border: 1px solid #c8ced9; background: #fff; color: var(--ink); cursor: pointer; }
button:hover, .button:hover { background: #f1f4f9; text-decoration: none; }
button.primary, .button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-ink); }
button.primary:hover, .button.primary:hover { background: #1d4bb8; }
button.big { padding: .6rem 2.2rem; font-size: 1.05rem; }
button.small { padding: .2rem .6rem; font-size: .82rem; }
button.danger { color: var(--bad); border-color: #efb7b1; }
button:disabled { opacity: .6; cursor: progress; }
button.danger:disabled { cursor: not-allowed; }
.danger-zone { border-color: #f4c7c3; }
.danger-zone .field { max-width: 24rem; }
.new-token { border-color: #b7dcc4; background: var(--ok-bg); }
.new-token pre.cmd { font-size: 1rem; user-select: all; background: #fff; }

.login { max-width: 26rem; margin: 4rem auto; }

pre.log { background: var(--code-bg); color: var(--code-ink); padding: .9rem 1rem; border-radius: var(--radius); overflow: auto; font-size: .84rem; line-height: 1.4; white-space: pre-wrap; word-break: break-word; margin: 0; }
pre.build-log { max-height: 34rem; min-height: 6rem; }
pre.small-log { max-height: 16rem; }
pre.log .stderr { color: #ffb4a8; }
.a-b { font-weight: 700; } .a-d { opacity: .7; } .a-i { font-style: italic; } .a-u { text-decoration: underline; }
.a-f0 { color: #5c6370; } .a-f1 { color: #f47067; } .a-f2 { color: #6bc46d; } .a-f3 { color: #e0b34d; }
.a-f4 { color: #6ca4f8; } .a-f5 { color: #d38aea; } .a-f6 { color: #4fc1d9; } .a-f7 { color: #d7dde8; }
.a-f8 { color: #8b93a1; } .a-f9 { color: #ff8f85; } .a-f10 { color: #8fe388; } .a-f11 { color: #f5d77a; }
.a-f12 { color: #95bdff; } .a-f13 { color: #f0a6ff; } .a-f14 { color: #7fe3f5; } .a-f15 { color: #ffffff; }
.a-g0 { background: #2b303b; } .a-g1 { background: #7a2620; } .a-g2 { background: #225c2a; } .a-g3 { background: #6b5414; }
.a-g4 { background: #1e3f78; } .a-g5 { background: #5c2a6e; } .a-g6 { background: #175b66; } .a-g7 { background: #6d7585; }
.a-g8 { background: #4b5263; } .a-g9 { background: #a8362c; } .a-g10 { background: #2f7d3a; } .a-g11 { background: #8f7421; }
.a-g12 { background: #2f5bb0; } .a-g13 { background: #84449c; } .a-g14 { background: #228191; } .a-g15 { background: #a9b1bf; }

.log-toolbar { display: flex; justify-content: space-between; align-items: center; margin: .4rem 0; min-height: 1.9rem; }
.tail { display: flex; align-items: center; gap: .6rem; }
.tail[data-state="on"] #tail-note::before { content: ""; display: inline-block; width: .5rem; height: .5rem; border-radius: 50%; background: #22a559; margin-right: .35rem; }
.logview { background: var(--code-bg); color: var(--code-ink); border-radius: var(--radius); font-size: .82rem; max-height: 32rem; overflow: auto; padding: .5rem 0; }
.logline { display: grid; grid-template-columns: 9.5rem 7.5rem 6.5rem 1fr; gap: .6rem; padding: .05rem .9rem; }
.logline:hover { background: #1b2230; }
.logline time { color: #7d8799; }
.logline .stream { color: #8fb3ff; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.logline .inst { color: #7d8799; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.logline .msg { white-space: pre-wrap; word-break: break-word; }
.logline.stderr .msg { color: #ffb4a8; }
.logline.event .stream, .logline.event .msg { color: #f5d77a; }
.logline.fresh { animation: fresh 1.5s ease-out; }
@keyframes fresh { from { background: #2a3550; } to { background: transparent; } }
.logview .empty { padding: .3rem .9rem; color: #7d8799; }

ul.events { list-style: none; margin: 0; padding: 0; background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); }
ul.events li { padding: .4rem .8rem; border-bottom: 1px solid var(--line); font-size: .9rem; }
ul.events li:last-child { border-bottom: 0; }
ul.events time { color: var(--muted); font-variant-numeric: tabular-nums; margin-right: .4rem; font-size: .84rem; }
.ev-name { display: inline-block; min-width: 7.5rem; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .8rem; color: var(--info); }
li.ev-crash .ev-name, li.ev-start_failed .ev-name, li.ev-oom .ev-name, li.ev-deploy_failed .ev-name { color: var(--bad); font-weight: 700; }
li.ev-deploy_live .ev-name, li.ev-cold_start .ev-name { color: var(--ok); }

.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(30rem, 1fr)); gap: 1rem; }
figure.chart { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); padding: .7rem .9rem; }
figure.chart figcaption { display: flex; justify-content: space-between; flex-wrap: wrap; gap: .4rem; margin-bottom: .3rem; }
.chart-title { font-weight: 600; }
.legend { display: flex; gap: .8rem; font-size: .8rem; color: var(--muted); flex-wrap: wrap; }
.legend .key i { display: inline-block; width: .8rem; height: .2rem; vertical-align: middle; margin-right: .3rem; border-radius: 2px; }
figure.chart svg { width: 100%; height: auto; display: block; }
.chart .grid line { stroke: #e8ebf0; stroke-width: 1; }
.chart text { font-size: 11px; fill: #7d8799; }
.chart .nodata { font-size: 13px; fill: #98a2b3; }
.chart .series polyline { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
.s1 polyline, .s1 circle { stroke: #2459d6; } .s1 circle, .key.s1 i { fill: #2459d6; background: #2459d6; }
.s2 polyline, .s2 circle { stroke: #d98a00; } .s2 circle, .key.s2 i { fill: #d98a00; background: #d98a00; }
.s3 polyline, .s3 circle { stroke: #c0392b; } .s3 circle, .key.s3 i { fill: #c0392b; background: #c0392b; }
.s4 polyline, .s4 circle { stroke: #1f8a4c; } .s4 circle, .key.s4 i { fill: #1f8a4c; background: #1f8a4c; }
.chart-data summary { cursor: pointer; color: var(--muted); font-size: .8rem; }
.chart-data table { font-size: .8rem; border-collapse: collapse; margin-top: .3rem; }
.chart-data td, .chart-data th { padding: .1rem .6rem; border-bottom: 1px solid var(--line); }

/* task queue: depth by status */
.queue-stats { display: flex; flex-wrap: wrap; gap: .8rem; margin-bottom: 1rem; }
.queue-stats .stat { margin: 0; min-width: 7rem; text-align: center; color: inherit; }
.stat-value { font-size: 1.5rem; font-weight: 600; }
.stat-label { color: var(--muted); font-size: .8rem; }
table.kv th { text-align: left; width: 10rem; color: var(--muted); font-weight: 500; }

@media (max-width: 800px) {
  .grid2, .grid4 { grid-template-columns: 1fr; }
  dl.facts { grid-template-columns: 1fr; }
  header.top { flex-wrap: wrap; gap: .6rem 1rem; }
  .logline { grid-template-columns: 1fr; gap: 0; padding: .2rem .9rem; }
}
`;
