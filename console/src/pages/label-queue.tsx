/**
 * Labelling the images the model is least sure about, from the keyboard: 1-9 picks a class, Enter
 * takes the suggestion (or the typed label), → or s skips, ← goes back, / types a new label.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type LabelQueue } from '../api';
import { ErrorBanner, href, messageOf, Thumb, useLoad } from '../ui';

export function LabelQueuePage() {
  const queue = useLoad(() => api<LabelQueue>('GET', '/label-queue?limit=30'), []);
  const [position, setPosition] = useState(0);
  const [done, setDone] = useState<Record<string, string>>({});
  const [typed, setTyped] = useState('');
  const [error, setError] = useState<string>();
  const listRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const items = queue.data?.items ?? [];
  const current = items[position];
  const classes = queue.data?.classes ?? [];
  const labelled = Object.keys(done).length;
  const retrain = queue.data?.retrain;
  const remaining = retrain?.remaining === null || retrain?.remaining === undefined ? null : Math.max(0, retrain.remaining - labelled);

  // Keyboard first: the list has focus when the page opens (the label box when there are no classes yet).
  useEffect(() => {
    if (!queue.data) return;
    (classes.length > 0 ? listRef.current : inputRef.current)?.focus();
  }, [queue.data]);

  const label = async (value: string) => {
    if (!current || !value.trim()) return;
    setError(undefined);
    try {
      await api('PUT', '/labels', { json: { key: current.key, label: value.trim() } });
      setDone((d) => ({ ...d, [current.key]: value.trim() }));
      setTyped('');
      if (position + 1 < items.length) setPosition(position + 1);
      else {
        // The queue is done: fetch the next one (the model's view changes with every label).
        setPosition(0);
        setDone({});
        await queue.reload();
      }
      listRef.current?.focus();
    } catch (err) {
      setError(messageOf(err));
    }
  };

  const onKey = (e: KeyboardEvent) => {
    if (e.target instanceof HTMLInputElement) return;
    if (/^[1-9]$/.test(e.key) && classes[Number(e.key) - 1]) {
      e.preventDefault();
      void label(classes[Number(e.key) - 1]!);
    } else if (e.key === 'Enter' && current?.suggestion) {
      e.preventDefault();
      void label(current.suggestion);
    } else if (e.key === 'ArrowRight' || e.key === 's') {
      e.preventDefault();
      setPosition(Math.min(items.length - 1, position + 1));
    } else if (e.key === 'ArrowLeft') {
      e.preventDefault();
      setPosition(Math.max(0, position - 1));
    } else if (e.key === '/') {
      e.preventDefault();
      inputRef.current?.focus();
    }
  };

  return (
    <>
      <h1>Label queue</h1>
      <p data-testid="labels-remaining" class="lead">
        {remaining === null
          ? 'The label trigger is off (RETRAIN_MIN_NEW_LABELS=0): start runs from the Models page.'
          : remaining === 0
            ? 'Enough new labels: the next training run starts at the next trigger tick.'
            : `${remaining} more label${remaining === 1 ? '' : 's'} until the next training run.`}{' '}
        {labelled > 0 && `${labelled} labelled here.`}
      </p>
      <p class="hint" id="queue-keys">
        Keys: {classes.length > 0 ? `1-${Math.min(9, classes.length)} pick a class, ` : ''}Enter takes the suggestion, → or s skips, ← goes back, / types a
        label.
      </p>
      {classes.length > 0 && (
        <ul class="classes" aria-label="Classes and their keys">
          {classes.slice(0, 9).map((c, i) => (
            <li key={c}>
              <kbd>{i + 1}</kbd> {c}
            </li>
          ))}
        </ul>
      )}
      <ErrorBanner error={queue.error ?? error} />
      {queue.data && items.length === 0 && (
        <p class="empty">
          Nothing to label: every indexed image has a label. <a href={href('gallery')}>Gallery</a>
        </p>
      )}
      {current && (
        <div
          class="queue-current"
          role="application"
          // biome-ignore lint/a11y/noNoninteractiveTabindex: a keyboard-driven widget: it takes focus to receive its shortcuts.
          tabIndex={0}
          ref={listRef}
          onKeyDown={onKey}
          aria-describedby="queue-keys"
          aria-label={`Image ${position + 1} of ${items.length}: ${current.key}`}
          data-testid="queue-current"
          data-key={current.key}
          data-suggestion={current.suggestion}
        >
          <Thumb imageKey={current.key} size={256} available />
          <div>
            <p class="card-key">
              {position + 1}/{items.length}: <a href={href('image', { key: current.key })}>{current.key}</a>
            </p>
            <p>
              Certainty {Math.round(current.certainty * 100)}%{current.pseudoLabel ? `, pseudo-label ${current.pseudoLabel}` : ''}
              {current.suggestion ? `; suggestion: ${current.suggestion}` : ''}
            </p>
            {current.neighborLabels.length > 0 && <p class="hint">Neighbours: {current.neighborLabels.map((n) => `${n.label} ×${n.votes}`).join(', ')}</p>}
            <form
              class="label-editor"
              onSubmit={(e) => {
                e.preventDefault();
                void label(typed || current.suggestion || '');
              }}
            >
              <label>
                Label
                <input
                  data-testid="label-input"
                  ref={inputRef}
                  value={typed}
                  maxLength={64}
                  placeholder={current.suggestion ?? ''}
                  list="known-classes"
                  onInput={(e) => setTyped((e.currentTarget as HTMLInputElement).value)}
                  onKeyDown={(e) => {
                    if (e.key === 'Escape') listRef.current?.focus();
                  }}
                />
              </label>
              <datalist id="known-classes">
                {classes.map((c) => (
                  <option key={c} value={c} />
                ))}
              </datalist>
              <button data-testid="label-save" type="submit">
                Save label
              </button>
            </form>
          </div>
        </div>
      )}
      {items.length > 0 && (
        <ul class="queue-list" aria-label="Queue">
          {items.map((item, i) => (
            <li key={item.key} class={i === position ? 'active' : done[item.key] ? 'done' : undefined}>
              <button type="button" class="linkish" onClick={() => setPosition(i)}>
                {item.key}
              </button>{' '}
              {done[item.key] ? `→ ${done[item.key]}` : `${Math.round(item.certainty * 100)}%`}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
