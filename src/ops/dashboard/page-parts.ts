// What every dashboard page shares: its context, and small building blocks.
import type { BrowseFilter } from '../browse.js';
import type { Ops } from '../ops.js';
import { html, Html } from './html.js';
import type { Series } from './samples.js';

/** What every page needs. */
export interface PageContext {
  ops: Ops;
  /** Base path ending in '/'. */
  base: string;
  writable: boolean;
  csrf: string;
  /** Recent samples per queue (for the sparklines). */
  series: Series;
  /** The page's own live refresh is asking (only its [data-live] parts are used). */
  refresh?: boolean;
}

export interface Rendered {
  title: string;
  active: string;
  body: Html;
}

export const u = (c: PageContext, path: string): string => c.base + path;
export const enc = encodeURIComponent;

export function card(id: string, label: string, value: unknown): Html {
  return html`<div class="card">
    <span class="muted">${label}</span><b id="${id}" data-live>${value}</b>
  </div>`;
}

export function csrfField(c: PageContext): Html {
  return html`<input type="hidden" name="csrf" value="${c.csrf}" />`;
}

export function button(c: PageContext, action: string, label: string): Html {
  return c.writable
    ? html`<button type="submit" name="action" value="${action}" data-action="${action}">
        ${label}
      </button> `
    : html``;
}

export function filterFrom(q: URLSearchParams): BrowseFilter {
  const obj = (key: string): Record<string, unknown> | undefined => {
    const raw = q.get(key)?.trim();
    if (!raw) return undefined;
    const eq = raw.indexOf('=');
    if (eq < 1) return { [raw]: true }; // bare field: nothing sensible; caught as a shape mismatch
    const path = raw.slice(0, eq).split('.');
    let value: unknown = raw.slice(eq + 1);
    try {
      value = JSON.parse(value as string);
    } catch {
      // a bare word
    }
    for (const k of path.reverse()) value = { [k]: value };
    return value as Record<string, unknown>;
  };
  const id = q.get('id') ? Number(q.get('id')) : undefined;
  const after = q.get('after') ? Number(q.get('after')) : undefined;
  const payload = obj('where');
  const headers = obj('header');
  return {
    ...(id !== undefined ? { id } : {}),
    ...(after !== undefined ? { afterId: after } : {}),
    ...(payload ? { payload } : {}),
    ...(headers ? { headers } : {}),
    limit: 100,
  };
}

export function searchForm(q: URLSearchParams, extra: Html = html``): Html {
  return html`<form method="get" id="search">
    id <input name="id" size="6" value="${q.get('id') ?? ''}" /> payload
    <input name="where" placeholder="field.path=value" value="${q.get('where') ?? ''}" /> header
    <input name="header" placeholder="name=value" value="${q.get('header') ?? ''}" />
    ${extra}<button type="submit">search</button>
  </form>`;
}

export function notFound(): Html {
  return html`<p>No such page (or that engine is not installed).</p>`;
}
