// Usage and cost per service and in total for a period, as GET /api/v1/usage answers it.
import { Hono } from 'hono';
import { parseTime } from '../../runtime/core/time-range.ts';
import { CellhostError } from '../../runtime/core/errors.ts';
import { Empty, Field, type FieldErrors } from '../components.tsx';
import type { UiDeps, UiEnv, UsageReport } from '../deps.ts';
import { formatCost, formatDuration, formatNumber, formatTime } from '../format.ts';
import { Layout, type PageChrome } from '../layout.tsx';
import { chromeFor, enc, sendPage } from '../render.ts';

const PERIODS: Record<string, number> = { '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 };

function UsagePage(props: { chrome: PageChrome; available: boolean; period: string; from: string; to: string; errors: FieldErrors; report: UsageReport | null }) {
  const r = props.report;
  const total = r?.services.reduce(
    (t, s) => ({ requests: t.requests + s.requests, billedMs: t.billedMs + s.billedMs, gbSeconds: t.gbSeconds + s.gbSeconds, coldStarts: t.coldStarts + s.coldStarts, cost: t.cost + s.cost }),
    { requests: 0, billedMs: 0, gbSeconds: 0, coldStarts: 0, cost: 0 },
  );
  return (
    <Layout title="Usage" chrome={props.chrome} nav="usage">
      <div class="page-head">
        <h1>Usage and cost</h1>
        <nav class="seg">
          {Object.keys(PERIODS).map((p) => (
            <a href={`/usage?period=${p}`} aria-current={p === props.period ? 'page' : undefined}>
              {p}
            </a>
          ))}
        </nav>
      </div>
      {!props.available ? (
        <p class="notice" id="usage-unavailable">
          Usage is not available: metering is not wired into this build yet.
        </p>
      ) : (
        <>
          <form method="get" action="/usage" class="card search">
            <div class="range">
              <Field name="from" label="From" errors={props.errors}>
                <input id="f-from" name="from" value={props.from} placeholder="7d or an ISO time" />
              </Field>
              <Field name="to" label="To" errors={props.errors}>
                <input id="f-to" name="to" value={props.to} placeholder="empty: now" />
              </Field>
              <button type="submit">Show</button>
            </div>
          </form>
          {r ? (
            <>
              <p class="muted small">
                {formatTime(r.from)} – {formatTime(r.to)} UTC
              </p>
              {r.services.length === 0 ? (
                <Empty>No usage in this period.</Empty>
              ) : (
                <table class="list usage">
                  <thead>
                    <tr>
                      <th>service</th>
                      <th class="num">requests</th>
                      <th class="num">billed time</th>
                      <th class="num">GB-s</th>
                      <th class="num">cold starts</th>
                      <th class="num">cost</th>
                    </tr>
                  </thead>
                  <tbody>
                    {/* a service's row includes its previews', each listed under it */}
                    {r.services.flatMap((row) => [{ s: row, preview: false }, ...(row.previews ?? []).map((p) => ({ s: p, preview: true }))]).map(({ s, preview }) => (
                      <tr class={preview ? 'preview' : undefined}>
                        <td>
                          {preview ? <span class="muted">↳ preview </span> : null}
                          <a href={`/services/${enc(s.service)}`}>{s.service}</a>
                        </td>
                        <td class="num">{formatNumber(s.requests)}</td>
                        <td class="num">{formatDuration(s.billedMs)}</td>
                        <td class="num">{formatNumber(s.gbSeconds, 3)}</td>
                        <td class="num">{formatNumber(s.coldStarts)}</td>
                        <td class="num">{formatCost(s.cost)}</td>
                      </tr>
                    ))}
                  </tbody>
                  <tfoot>
                    <tr>
                      <th>total</th>
                      <th class="num">{formatNumber(total!.requests)}</th>
                      <th class="num">{formatDuration(total!.billedMs)}</th>
                      <th class="num">{formatNumber(total!.gbSeconds, 3)}</th>
                      <th class="num">{formatNumber(total!.coldStarts)}</th>
                      <th class="num">{formatCost(total!.cost)}</th>
                    </tr>
                  </tfoot>
                </table>
              )}
            </>
          ) : null}
        </>
      )}
    </Layout>
  );
}

export function usagePages(deps: UiDeps) {
  const app = new Hono<UiEnv>();
  app.get('/usage', async (c) => {
    const now = Date.parse(deps.now());
    const period = PERIODS[c.req.query('period') ?? ''] ? c.req.query('period')! : '24h';
    const fromText = c.req.query('from') ?? '';
    const toText = c.req.query('to') ?? '';
    const errors: FieldErrors = {};
    const time = (text: string, field: 'from' | 'to') => {
      try {
        return parseTime(text || undefined, now, field);
      } catch (err) {
        if (!(err instanceof CellhostError)) throw err;
        errors[field] = err.message;
        return undefined;
      }
    };
    const to = time(toText, 'to') ?? now;
    const from = time(fromText, 'from') ?? to - PERIODS[period]!;
    if (!errors.from && from >= to) errors.from = 'from: must be before to';
    const report = deps.usageReport && !Object.keys(errors).length ? await deps.usageReport(from, to) : null;
    return sendPage(
      c,
      <UsagePage chrome={chromeFor(c)} available={!!deps.usageReport} period={fromText || toText ? '' : period} from={fromText} to={toText} errors={errors} report={report} />,
      Object.keys(errors).length ? 400 : 200,
    );
  });
  return app;
}
