/** Routing, polling and the small components every page uses. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, thumbnailUrl, type ImageStatus, type NeighborsResult } from './api';

export type Page = 'gallery' | 'image' | 'search' | 'label-queue' | 'models';
export const PAGES: Array<{ page: Page; title: string }> = [
  { page: 'gallery', title: 'Gallery' },
  { page: 'search', title: 'Search' },
  { page: 'label-queue', title: 'Label queue' },
  { page: 'models', title: 'Models' },
];

export interface Route {
  page: Page;
  params: URLSearchParams;
}

/** Pages are hash routes (`#/image?key=...`): bookmarkable, reloadable, and never confused with an API path. */
export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?', 2);
  const page = (['gallery', 'image', 'search', 'label-queue', 'models'] as const).find((p) => p === path) ?? 'gallery';
  return { page, params: new URLSearchParams(query) };
}

export function href(page: Page, params: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
  const query = q.toString();
  return `#/${page}${query ? `?${query}` : ''}`;
}

export function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return parseRoute(hash);
}

/** Loads `load()` now and whenever `deps` change; `reload` runs it again. Errors become a message. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data?: T; error?: string; loading: boolean; reload: () => Promise<void> } {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: true });
  const generation = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await load();
      if (mine === generation.current) setState({ data, loading: false });
    } catch (err) {
      if (mine === generation.current) setState((s) => ({ ...s, error: messageOf(err), loading: false }));
    }
  }, deps);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { ...state, reload };
}

/** Calls `tick` every `ms` while the page is visible. */
export function useInterval(tick: () => void, ms: number): void {
  const saved = useRef(tick);
  saved.current = tick;
  useEffect(() => {
    const id = setInterval(() => {
      if (document.visibilityState === 'visible') saved.current();
    }, ms);
    return () => clearInterval(id);
  }, [ms]);
}

export function messageOf(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

export function ErrorBanner({ error }: { error?: string }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

/**
 * A thumbnail in a box of fixed size (no layout shift while it loads). Tiny images (Fashion-MNIST's
 * 28 px) are scaled up with square pixels rather than blurred.
 */
export function Thumb({ imageKey, size, available, version }: { imageKey: string; size: number; available: boolean; version?: string }) {
  const [pixelated, setPixelated] = useState(false);
  return (
    <span class="thumb" style={{ width: `${size}px`, height: `${size}px` }}>
      {available ? (
        <img
          src={thumbnailUrl(imageKey, version)}
          alt={imageKey}
          width={size}
          height={size}
          class={pixelated ? 'pixelated' : undefined}
          onLoad={(e) => setPixelated((e.currentTarget as HTMLImageElement).naturalWidth * 2 < size)}
        />
      ) : (
        <span class="thumb-missing" role="img" aria-label={`${imageKey}: no thumbnail`}>
          no preview
        </span>
      )}
    </span>
  );
}

export function StateBadge({ state, reason }: { state: ImageStatus['state']; reason?: string }) {
  return (
    <span data-testid="image-state" data-state={state} class={`state state-${state}`} title={reason ? `quarantined: ${reason}` : state}>
      {state}
    </span>
  );
}

export function LabelText({ label, pseudoLabel, confidence }: { label?: string; pseudoLabel?: string; confidence?: number }) {
  if (label) return <span class="label">{label}</span>;
  if (pseudoLabel)
    return (
      <span class="pseudo" title="pseudo-label: predicted by the model, not set by a person">
        {pseudoLabel}
        {confidence !== undefined ? ` ${Math.round(confidence * 100)}%` : ''}
      </span>
    );
  return <span class="unlabelled">unlabelled</span>;
}

export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section class="panel" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}

/** The answer of an action (saved, started, failed), announced to screen readers. */
export function StatusMessage({ message }: { message?: { ok: boolean; text: string } }) {
  if (!message) return null;
  return (
    <span role="status" class={message.ok ? 'ok' : 'error'}>
      {message.text}
    </span>
  );
}

/** Neighbours (of an image, or of a searched file) as cards, nearest first; `testid` names the cards for tests. */
export function NeighborGrid({ neighbors, label, testid }: { neighbors: NeighborsResult['neighbors']; label: string; testid: string }) {
  return (
    <ul class="grid" aria-label={label}>
      {neighbors.map((n) => (
        <li key={n.key}>
          <a data-testid={testid} data-key={n.key} class="card" href={href('image', { key: n.key })}>
            <Thumb imageKey={n.key} size={128} available />
            <span class="card-key" title={n.key}>
              {n.key}
            </span>
            <span class="card-meta">
              <span class="distance" title="cosine distance">
                {n.distance.toFixed(3)}
              </span>
              <LabelText label={n.label} pseudoLabel={n.pseudoLabel} confidence={n.confidence} />
            </span>
          </a>
        </li>
      ))}
    </ul>
  );
}
