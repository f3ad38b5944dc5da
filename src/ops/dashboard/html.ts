/** Minimal server-side HTML: escaping, the page frame, tables, sparklines. */

/** Escapes text for HTML content and attribute values. */
export function esc(v: unknown): string {
  const s = v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : String(v);
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Markup that is already safe (built from esc'd parts). */
export class Html {
  constructor(readonly html: string) {}
  toString(): string {
    return this.html;
  }
}

/** Tagged template: interpolations are escaped unless they are Html (or arrays of Html). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Html(out);
}

function render(v: unknown): string {
  if (v instanceof Html) return v.html;
  if (Array.isArray(v)) return v.map(render).join('');
  return esc(v);
}

export const age = (s: number | null | undefined): string =>
  s === null || s === undefined
    ? '–'
    : s < 120
      ? `${Math.round(s)}s`
      : s < 7200
        ? `${Math.round(s / 60)}m`
        : `${Math.round(s / 3600)}h`;

/** A small inline SVG line of the last values (no library). */
export function sparkline(values: readonly number[], label: string): Html {
  if (values.length < 2) return html`<span class="muted">–</span>`;
  const w = 120;
  const h = 24;
  const max = Math.max(...values, 1);
  const pts = values
    .map(
      (v, i) => `${((i / (values.length - 1)) * w).toFixed(1)},${(h - (v / max) * h).toFixed(1)}`,
    )
    .join(' ');
  return html`<svg
    class="spark"
    width="${w}"
    height="${h}"
    viewBox="0 0 ${w} ${h}"
    role="img"
    aria-label="${label}"
  >
    <polyline fill="none" stroke="currentColor" stroke-width="1.5" points="${pts}" />
  </svg>`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:center}
header a{color:#cfd6e4;text-decoration:none}header a.on,header a:hover{color:#fff}
header strong{font-size:16px;margin-right:12px}
main{padding:16px 20px;max-width:1400px}
h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:20px 0 8px}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:12px}
th,td{padding:5px 8px;border-bottom:1px solid #e3e6eb;text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600;font-size:12px;text-transform:uppercase;color:#4a5263}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:12px}
.card{background:#fff;border:1px solid #e3e6eb;border-radius:6px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:22px}.muted{color:#7a8294}
.badge{padding:1px 6px;border-radius:8px;background:#eef0f4;font-size:12px}
.badge.dead,.badge.retrying,.badge.retry{background:#fde2e1}.badge.running{background:#dff3e4}
.badge.completed{background:#e1ecfd}.badge.lost{background:#fff0d0}
details pre.stack{margin:4px 0;max-height:240px;font-size:12px}
.confirm{background:#fff;border:2px solid #e9a23b;padding:10px 14px;margin-bottom:12px}
pre{background:#fff;border:1px solid #e3e6eb;padding:8px;overflow:auto;max-height:320px}
form.inline{display:inline}input,select,button{font:inherit}
.flash{background:#fff6d6;border:1px solid #e9d48a;padding:6px 10px;margin-bottom:10px}
.ro{color:#7a8294;font-size:12px}.spark{color:#3d6fd6;vertical-align:middle}
code{font-size:12px}`;

// Live refresh: fetch this page again and swap every [data-live] element by id
// (keeping the <details> the reader opened open).
const SCRIPT = `(function(){var ms=Number(document.body.dataset.refreshMs||0);if(!ms)return;
setInterval(function(){fetch(location.href,{credentials:'same-origin',headers:{'x-pgferry-refresh':'1'}}).then(function(r){return r.ok?r.text():null}).then(function(t){if(!t)return;
var d=new DOMParser().parseFromString(t,'text/html');document.querySelectorAll('[data-live]').forEach(function(el){var n=d.getElementById(el.id);if(!n)return;var o=[].map.call(el.querySelectorAll('details[open]'),function(x){return x.id});el.innerHTML=n.innerHTML;o.forEach(function(i){var x=i&&document.getElementById(i);if(x)x.open=true;});});
document.body.dataset.refreshed=String(Number(document.body.dataset.refreshed||0)+1);}).catch(function(){});},ms);})();`;

export interface FrameOptions {
  base: string;
  title: string;
  active: string;
  refreshMs: number;
  writable: boolean;
  flash?: string | undefined;
  installed: { queue: boolean; tasks: boolean; stream: boolean; bus: boolean };
}

export function page(o: FrameOptions, body: Html): string {
  const link = (path: string, name: string, on: boolean) =>
    on
      ? html`<a href="${o.base}${path}" class="${o.active === path ? 'on' : ''}">${name}</a>`
      : html``;
  return `<!doctype html>${
    html`<html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width,initial-scale=1" />
        <title>${o.title} · pgferry</title>
        <style>
          ${new Html(STYLE)}
        </style>
      </head>
      <body data-refresh-ms="${o.refreshMs}" data-refreshed="0">
        <header>
          <strong>pgferry</strong
          >${link('', 'Overview', true)}${link('queues', 'Queues', o.installed.queue)}${link('tasks', 'Tasks', o.installed.tasks)}${link('streams', 'Streams', o.installed.stream)}${link('bus', 'Bus', o.installed.bus)}<a
            href="${o.base}metrics"
            >/metrics</a
          >
          <span class="ro">${o.writable ? 'actions enabled' : 'read-only'}</span>
        </header>
        <main>
          ${o.flash ? html`<div class="flash" id="flash">${o.flash}</div>` : html``}
          <h1>${o.title}</h1>
          ${body}
        </main>
        <script>
          ${new Html(SCRIPT)};
        </script>
      </body>
    </html>`.html
  }`;
}

/** A table; `rows` are already Html cells. */
export function table(
  id: string,
  head: readonly string[],
  rows: readonly Html[][],
  live = true,
): Html {
  return html`<table id="${id}" ${new Html(live ? 'data-live' : '')}>
    <thead>
      <tr>
        ${head.map((h) => html`<th>${h}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${
        rows.length
          ? rows.map(
              (r) =>
                html`<tr>
                  ${r}
                </tr>`,
            )
          : html`<tr>
              <td colspan="${head.length}" class="muted">none</td>
            </tr>`
      }
    </tbody>
  </table>`;
}

export const td = (v: unknown): Html => html`<td>${v}</td>`;
export const tn = (v: unknown): Html => html`<td class="n">${v ?? '–'}</td>`;
export const tl = (href: string, v: unknown): Html => html`<td><a href="${href}">${v}</a></td>`;
