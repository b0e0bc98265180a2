/** One image: large, its state, its label (editable in place), and its nearest neighbours. */
import { useEffect, useState } from 'preact/hooks';
import { api, type Health, type ImageStatus, type NeighborsResult } from '../api';
import { ErrorBanner, href, LabelText, messageOf, NeighborGrid, StateBadge, StatusMessage, Thumb, useLoad } from '../ui';

export function ImagePage({ params, health }: { params: URLSearchParams; health?: Health }) {
  const key = params.get('key') ?? '';
  const k = params.get('k') ?? '10';
  const labelFilter = params.get('label') ?? '';
  const status = useLoad(() => api<ImageStatus>('GET', `/images?${new URLSearchParams({ key })}`), [key]);
  const indexed = status.data?.state === 'indexed';
  const neighbors = useLoad(async () => {
    if (!indexed) return undefined;
    const q = new URLSearchParams({ key, k });
    if (labelFilter) q.set('label', labelFilter);
    return api<NeighborsResult>('GET', `/neighbors?${q}`);
  }, [key, k, labelFilter, indexed]);

  // A pending image becomes indexed while it is open.
  useEffect(() => {
    if (status.data && status.data.state !== 'indexed') void status.reload();
  }, [health?.indexed, health?.quarantined]);

  if (!key)
    return (
      <p>
        No image chosen: pick one in the <a href={href('gallery')}>gallery</a>.
      </p>
    );
  const s = status.data;
  const onNeighborOptions = (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    location.hash = href('image', { key, k: String(form.get('k') ?? '10'), label: String(form.get('label') ?? '') });
  };

  return (
    <>
      <h1 class="image-title">{key}</h1>
      <ErrorBanner error={status.error} />
      {s && (
        <div class="image-detail">
          <Thumb imageKey={key} size={256} available={indexed} />
          <div class="image-facts">
            <p>
              <StateBadge state={s.state} reason={s.reason} /> {s.modelVersion && <span>embedded by {s.modelVersion}</span>}
            </p>
            {s.reason && <p class="reason">Quarantined: {s.reason}</p>}
            <p>
              <LabelText label={s.label} pseudoLabel={s.pseudoLabel} confidence={s.confidence} />
            </p>
            <LabelEditor imageKey={key} current={s.label} onSaved={() => void status.reload().then(() => neighbors.reload())} />
          </div>
        </div>
      )}
      <h2>Nearest neighbours</h2>
      <form class="filters" onSubmit={onNeighborOptions} aria-label="Neighbour options">
        <label>
          k
          <input name="k" type="number" min={1} max={100} value={k} size={4} />
        </label>
        <label>
          Only label
          <input name="label" value={labelFilter} placeholder="any" size={12} />
        </label>
        <button type="submit">Show</button>
      </form>
      {s && !indexed && (
        <p class="empty">{s.state === 'pending' ? 'Not indexed yet: neighbours appear when it is.' : 'A quarantined image has no neighbours.'}</p>
      )}
      <ErrorBanner error={neighbors.error} />
      {neighbors.data && neighbors.data.neighbors.length === 0 && <p class="empty">No neighbours{labelFilter ? ` labelled ${labelFilter}` : ''}.</p>}
      {neighbors.data && <NeighborGrid neighbors={neighbors.data.neighbors} label="Nearest neighbours, nearest first" testid="neighbor-item" />}
    </>
  );
}

/** Sets or changes an image's label (PUT /labels). */
export function LabelEditor({ imageKey, current, onSaved }: { imageKey: string; current?: string; onSaved: () => void }) {
  const [value, setValue] = useState(current ?? '');
  const [message, setMessage] = useState<{ ok: boolean; text: string }>();
  useEffect(() => setValue(current ?? ''), [current]);
  const save = async (e: Event) => {
    e.preventDefault();
    const label = value.trim();
    if (!label) return setMessage({ ok: false, text: 'Type a label first.' });
    try {
      await api('PUT', '/labels', { json: { key: imageKey, label } });
      setMessage({ ok: true, text: `Saved: ${label}` });
      onSaved();
    } catch (err) {
      setMessage({ ok: false, text: messageOf(err) });
    }
  };
  return (
    <form class="label-editor" onSubmit={save}>
      <label>
        Label
        <input data-testid="label-input" value={value} maxLength={64} onInput={(e) => setValue((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <button data-testid="label-save" type="submit">
        Save label
      </button>
      <StatusMessage message={message} />
    </form>
  );
}
