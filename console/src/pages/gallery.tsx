/** The newest images with their state and labels, filtered and paged; the first page follows uploads live. */
import { useEffect } from 'preact/hooks';
import { api, type Health, type ImageList } from '../api';
import { ErrorBanner, href, LabelText, StateBadge, Thumb, useLoad } from '../ui';

const PAGE_SIZE = 48;

export function Gallery({ params, health }: { params: URLSearchParams; health?: Health }) {
  const filters = { state: params.get('state') ?? '', label: params.get('label') ?? '', prefix: params.get('prefix') ?? '' };
  const cursor = params.get('cursor') ?? '';
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const [k, v] of Object.entries({ ...filters, cursor })) if (v) query.set(k, v);
  const path = `/images?${query}`;
  const { data, error, reload } = useLoad(() => api<ImageList>('GET', path), [path]);

  // The first page follows the pipeline: new uploads appear, pending images turn indexed.
  useEffect(() => {
    if (!cursor) void reload();
  }, [health?.indexed, health?.pending, health?.quarantined]);

  const onFilter = (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    location.hash = href('gallery', {
      state: String(form.get('state') ?? ''),
      label: String(form.get('label') ?? ''),
      prefix: String(form.get('prefix') ?? ''),
    });
  };

  return (
    <>
      <h1>Gallery</h1>
      <form class="filters" onSubmit={onFilter} aria-label="Filter images">
        <label>
          State
          <select name="state" value={filters.state}>
            <option value="">any</option>
            <option value="indexed">indexed</option>
            <option value="pending">pending</option>
            <option value="quarantined">quarantined</option>
          </select>
        </label>
        <label>
          Label
          <input name="label" value={filters.label} placeholder="label or pseudo-label" size={14} />
        </label>
        <label>
          Key prefix
          <input name="prefix" value={filters.prefix} placeholder="e.g. photos/" size={14} />
        </label>
        <button type="submit">Filter</button>
        {(filters.state || filters.label || filters.prefix) && <a href={href('gallery')}>Clear</a>}
      </form>
      <ErrorBanner error={error} />
      {data && data.items.length === 0 && (
        <p class="empty">
          {cursor ? 'No more images here.' : 'No images yet. Drop some into the images bucket:'}{' '}
          {!cursor && <code>aws --endpoint-url http://127.0.0.1:4566 s3 cp ./pics s3://images/ --recursive</code>}
        </p>
      )}
      <ul class="grid" aria-label="Images, newest first">
        {data?.items.map((item) => (
          <li key={item.key}>
            <a data-testid="gallery-item" data-key={item.key} class="card" href={href('image', { key: item.key })}>
              <Thumb imageKey={item.key} size={128} available={item.thumbnail} version={item.uploadedAt} />
              <span class="card-key" title={item.key}>
                {item.key}
              </span>
              <span class="card-meta">
                <StateBadge state={item.state} reason={item.reason} />
                <LabelText label={item.label} pseudoLabel={item.pseudoLabel} confidence={item.confidence} />
              </span>
              {item.reason && <span class="reason">{item.reason}</span>}
            </a>
          </li>
        ))}
      </ul>
      <nav class="pager" aria-label="Pages">
        {cursor && <a href={href('gallery', filters)}>First page</a>}
        {data?.cursor && (
          <a href={href('gallery', { ...filters, cursor: data.cursor })} rel="next">
            Next page
          </a>
        )}
      </nav>
    </>
  );
}
