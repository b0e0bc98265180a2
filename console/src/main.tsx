/** The web console: one page per hash route, the pipeline's counts in the header. */
import { render } from 'preact';
import { useEffect } from 'preact/hooks';
import { api, type Health } from './api';
import { Gallery } from './pages/gallery';
import { ImagePage } from './pages/image';
import { LabelQueuePage } from './pages/label-queue';
import { ModelsPage } from './pages/models';
import { SearchPage } from './pages/search';
import { href, PAGES, useInterval, useLoad, useRoute } from './ui';

const HEALTH_POLL_MS = 1500;

function App() {
  const route = useRoute();
  const health = useLoad(() => api<Health>('GET', '/health'), []);
  useInterval(() => void health.reload(), HEALTH_POLL_MS);
  const h = health.data;
  useEffect(() => {
    const title = PAGES.find((p) => p.page === route.page)?.title ?? (route.page === 'image' ? route.params.get('key') : 'Console');
    document.title = `${title} · image pipeline`;
  }, [route.page, route.params.toString()]);
  return (
    <>
      <button type="button" class="skip" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header class="top">
        <a class="brand" href={href('gallery')}>
          image pipeline
        </a>
        <nav aria-label="Pages">
          {PAGES.map((p) => (
            <a key={p.page} href={href(p.page)} aria-current={route.page === p.page ? 'page' : undefined}>
              {p.title}
            </a>
          ))}
        </nav>
        <p class="counts" data-testid="health-counts" aria-live="polite">
          {h ? (
            <>
              <span>model {h.servingModel ?? 'none'}</span> <span data-testid="count-indexed">{h.indexed} indexed</span>{' '}
              <span data-testid="count-pending">{h.pending} pending</span> <span data-testid="count-quarantined">{h.quarantined} quarantined</span>
            </>
          ) : health.error ? (
            <span class="error">API unreachable</span>
          ) : (
            'connecting…'
          )}
        </p>
      </header>
      <main id="main" tabIndex={-1}>
        {route.page === 'gallery' && <Gallery params={route.params} health={h} />}
        {route.page === 'image' && <ImagePage params={route.params} health={h} />}
        {route.page === 'search' && <SearchPage params={route.params} />}
        {route.page === 'label-queue' && <LabelQueuePage />}
        {route.page === 'models' && <ModelsPage />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
