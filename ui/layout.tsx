// The one page frame: header with navigation, the service's tabs when on a service, a flash
// message, the page. Scripts are external (the CSP allows no inline script).
import type { Child } from 'hono/jsx';
import { CSRF_FIELD } from './session.ts';
import { ASSET_VERSION } from './static/assets.ts';

export interface PageChrome {
  csrf: string;
  tokenName: string;
  flash?: string | null;
}

export type NavKey = 'services' | 'deploy' | 'usage' | 'tokens' | null;
/** the service's tabs; 'deployment' is a page under the service that no tab names */
export type ServiceTab = 'overview' | 'deploy' | 'env' | 'domains' | 'observability' | 'git' | 'cron' | 'tasks' | 'settings' | 'deployment';

export function Layout(props: {
  title: string;
  chrome: PageChrome | null;
  nav?: NavKey;
  service?: { name: string; tab: ServiceTab };
  children?: Child;
}) {
  const { chrome } = props;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title} · cellhost</title>
        <link rel="icon" href="/static/icon.svg" type="image/svg+xml" />
        <link rel="stylesheet" href={`/static/app.css?v=${ASSET_VERSION}`} />
        <script src={`/static/app.js?v=${ASSET_VERSION}`} defer></script>
      </head>
      <body>
        <header class="top">
          <a class="brand" href="/services">
            cellhost
          </a>
          {chrome ? (
            <nav class="main-nav">
              <a href="/services" aria-current={props.nav === 'services' ? 'page' : undefined}>
                Services
              </a>
              <a href="/deploy" aria-current={props.nav === 'deploy' ? 'page' : undefined}>
                Manual Deploy
              </a>
              <a href="/usage" aria-current={props.nav === 'usage' ? 'page' : undefined}>
                Usage
              </a>
              <a href="/tokens" aria-current={props.nav === 'tokens' ? 'page' : undefined}>
                Tokens
              </a>
            </nav>
          ) : null}
          {chrome ? (
            <form class="logout" method="post" action="/logout">
              <CsrfField token={chrome.csrf} />
              <span class="who" title="the API token this session logged in with">
                {chrome.tokenName}
              </span>
              <button type="submit" class="link">
                Log out
              </button>
            </form>
          ) : null}
        </header>
        <main>
          {props.service ? <ServiceTabs name={props.service.name} tab={props.service.tab} /> : null}
          {chrome?.flash ? (
            <p class="flash" role="status">
              {chrome.flash}
            </p>
          ) : null}
          {props.children}
        </main>
      </body>
    </html>
  );
}

function ServiceTabs(props: { name: string; tab: ServiceTab }) {
  const base = `/services/${encodeURIComponent(props.name)}`;
  const tabs: [ServiceTab, string, string][] = [
    ['overview', 'Overview', base],
    ['deploy', 'Deploy', `/deploy?service=${encodeURIComponent(props.name)}`],
    ['env', 'Environment', `${base}/env`],
    ['domains', 'Domains', `${base}/domains`],
    ['observability', 'Observability', `${base}/observability`],
    ['git', 'Git', `${base}/git`],
    ['cron', 'Cron', `${base}/cron`],
    ['tasks', 'Tasks', `${base}/tasks`],
    ['settings', 'Settings', `${base}/settings`],
  ];
  return (
    <div class="service-head">
      <h1>
        <a href={base}>{props.name}</a>
      </h1>
      <nav class="tabs">
        {tabs.map(([key, label, href]) => (
          <a href={href} aria-current={key === props.tab ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
    </div>
  );
}

export function CsrfField(props: { token: string }) {
  return <input type="hidden" name={CSRF_FIELD} value={props.token} />;
}
