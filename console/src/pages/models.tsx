/** Serving and candidate versions, the rollout, training runs with their curves, and dead letters. */
import { useState } from 'preact/hooks';
import { api, type ModelReport, type ModelsView } from '../api';
import { ErrorBanner, messageOf, Section, StatusMessage, useInterval, useLoad } from '../ui';

type Summary = NonNullable<ModelsView['serving']>;
interface DeadLetters {
  queues: Array<{ queue: string; count: number; messages: Array<{ messageId: string; body: string; error?: string; sentAt?: string }> }>;
}

const METRICS = ['knnAccuracy', 'linearProbeAccuracy', 'pseudoLabelCoverage'];

export function ModelsPage() {
  const models = useLoad(() => api<ModelsView>('GET', '/models'), []);
  const deadLetters = useLoad(() => api<DeadLetters>('GET', '/dead-letters?limit=20'), []);
  useInterval(() => {
    void models.reload();
  }, 2000);
  const view = models.data;
  // The rollout shown: the candidate being backfilled, else the version that serves.
  const rolling = view?.candidate ?? view?.serving ?? undefined;
  return (
    <>
      <h1>Models</h1>
      <ErrorBanner error={models.error} />
      {view && (
        <div class="panels">
          <Section title="Serving" id="serving-title">
            <p class="big">
              <strong data-testid="model-serving-version">{view.serving?.version ?? 'none'}</strong>
              {view.candidate && <span> · candidate {view.candidate.version}</span>}
            </p>
            {view.serving && <Metrics summary={view.serving} />}
            {rolling?.rollout && <RolloutBar version={rolling.version} rollout={rolling.rollout} />}
            <Rollback serving={view.serving} onDone={() => void models.reload()} />
          </Section>
          <Section title="Train" id="train-title">
            <TrainForm onStarted={() => void models.reload()} />
          </Section>
        </div>
      )}
      {view && (
        <Section title="Training runs" id="runs-title">
          {view.runs.length === 0 ? (
            <p class="empty">No runs yet.</p>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Job</th>
                    <th scope="col">State</th>
                    <th scope="col">Phase</th>
                    <th scope="col">Progress</th>
                    <th scope="col">Loss</th>
                    <th scope="col">Version</th>
                    <th scope="col">Started</th>
                  </tr>
                </thead>
                <tbody>
                  {view.runs.map((r) => (
                    <tr key={r.jobId} data-state={r.state}>
                      <td>{r.jobId}</td>
                      <td>{r.state}</td>
                      <td>{r.error ?? r.phase ?? ''}</td>
                      <td>{r.progress !== undefined ? `${Math.round(r.progress * 100)}%` : ''}</td>
                      <td>{r.loss !== undefined ? r.loss.toFixed(3) : ''}</td>
                      <td>{r.version ?? ''}</td>
                      <td>{new Date(r.startedAt).toLocaleString()}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Section>
      )}
      {view && (
        <Section title="Versions" id="history-title">
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Created</th>
                  <th scope="col">Gate</th>
                  <th scope="col">kNN acc.</th>
                  <th scope="col">Rollout</th>
                  <th scope="col">Report</th>
                </tr>
              </thead>
              <tbody>
                {view.history.map((m) => (
                  <VersionRow key={m.version} summary={m} />
                ))}
              </tbody>
            </table>
          </div>
        </Section>
      )}
      <Section title="Dead letters" id="dead-letters-title">
        <DeadLetterList data={deadLetters.data} error={deadLetters.error} onRedriven={() => void deadLetters.reload()} />
      </Section>
    </>
  );
}

function Metrics({ summary }: { summary: Summary }) {
  const shown = METRICS.filter((m) => typeof summary.metrics[m] === 'number');
  if (shown.length === 0) return <p class="hint">No held-out metrics (a version made by init or imported without labels).</p>;
  return (
    <dl class="metrics">
      {shown.map((m) => (
        <div key={m}>
          <dt>{m}</dt>
          <dd>{(summary.metrics[m] as number).toFixed(3)}</dd>
        </div>
      ))}
    </dl>
  );
}

function RolloutBar({ version, rollout }: { version: string; rollout: NonNullable<Summary['rollout']> }) {
  const pct = rollout.total > 0 ? Math.min(100, Math.round((rollout.done / rollout.total) * 100)) : rollout.state === 'backfilling' ? 0 : 100;
  return (
    <div class="rollout">
      <div
        data-testid="rollout-progress"
        data-version={version}
        data-state={rollout.state}
        role="progressbar"
        aria-label={`Rollout of ${version}`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct}
        class="bar"
      >
        <span style={{ width: `${pct}%` }} />
      </div>
      <p class="hint">
        {version} {rollout.state}: {rollout.done}/{rollout.total} images ({pct}%)
      </p>
    </div>
  );
}

function TrainForm({ onStarted }: { onStarted: () => void }) {
  const [minutes, setMinutes] = useState('');
  const [message, setMessage] = useState<{ ok: boolean; text: string }>();
  const start = async (e: Event) => {
    e.preventDefault();
    setMessage(undefined);
    try {
      const body = minutes ? { maxMinutes: Number(minutes) } : {};
      const { jobId } = await api<{ jobId: string }>('POST', '/train', { json: body });
      setMessage({ ok: true, text: `Started ${jobId}.` });
      onStarted();
    } catch (err) {
      setMessage({ ok: false, text: messageOf(err) });
    }
  };
  return (
    <form class="label-editor" onSubmit={start}>
      <label>
        Budget (minutes)
        <input
          type="number"
          min={0.1}
          max={1440}
          step="any"
          value={minutes}
          placeholder="default"
          size={8}
          onInput={(e) => setMinutes((e.currentTarget as HTMLInputElement).value)}
        />
      </label>
      <button data-testid="train-button" type="submit">
        Train now
      </button>
      <StatusMessage message={message} />
    </form>
  );
}

function Rollback({ serving, onDone }: { serving: Summary | null; onDone: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const [message, setMessage] = useState<{ ok: boolean; text: string }>();
  // A version made by init has nothing to go back to.
  if (!serving || serving.parent === null) return null;
  const rollBack = async () => {
    setConfirming(false);
    try {
      await api('POST', '/models/rollback');
      setMessage({ ok: true, text: `Rolled back from ${serving.version}.` });
      onDone();
    } catch (err) {
      setMessage({ ok: false, text: messageOf(err) });
    }
  };
  return (
    <div class="rollback">
      {confirming ? (
        <div role="alertdialog" aria-label="Confirm roll back" class="confirm">
          <span>Serve the previous version instead of {serving.version}?</span>
          <button type="button" class="danger" onClick={() => void rollBack()}>
            Yes, roll back
          </button>
          <button type="button" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </div>
      ) : (
        <button type="button" data-testid="rollback-button" onClick={() => setConfirming(true)}>
          Roll back…
        </button>
      )}
      <StatusMessage message={message} />
    </div>
  );
}

function VersionRow({ summary }: { summary: Summary }) {
  const [report, setReport] = useState<ModelReport>();
  const [error, setError] = useState<string>();
  const knn = summary.metrics.knnAccuracy;
  const load = async () => {
    try {
      setReport(await api<ModelReport>('GET', `/models/report?${new URLSearchParams({ version: summary.version })}`));
    } catch (err) {
      setError(messageOf(err));
    }
  };
  return (
    <>
      <tr>
        <th scope="row">{summary.version}</th>
        <td>{new Date(summary.createdAt).toLocaleString()}</td>
        <td title={summary.gate.reasons.join('\n')}>
          {summary.gate.passed ? 'passed' : 'rejected'}
          {summary.gate.reasons.length > 0 && <span class="hint"> {summary.gate.reasons[0]}</span>}
        </td>
        <td>{typeof knn === 'number' ? knn.toFixed(3) : ''}</td>
        <td>{summary.rollout ? `${summary.rollout.state} ${summary.rollout.done}/${summary.rollout.total}` : ''}</td>
        <td>
          {/* Versions made by init have no report. */}
          {summary.parent !== null && !report && (
            <button type="button" class="linkish" onClick={() => void load()}>
              Curves
            </button>
          )}
        </td>
      </tr>
      {(report || error) && (
        <tr>
          <td colSpan={6}>
            <ErrorBanner error={error} />
            {report && <Curves report={report} />}
          </td>
        </tr>
      )}
    </>
  );
}

/** The report's curves as small line charts (no chart library: a polyline per series). */
function Curves({ report }: { report: ModelReport }) {
  const h = report.history;
  const series: Array<[string, Array<[number, number]>]> = [];
  if (h?.loss.length) series.push(['SimCLR loss', h.loss]);
  if (h?.finetuneLoss?.length) series.push(['fine-tune loss', h.finetuneLoss]);
  for (const [name, points] of Object.entries(h?.accuracy ?? {})) if (points.length) series.push([name, points]);
  if (series.length === 0) return <p class="hint">This version has no training curves (imported, or trained without logging).</p>;
  return (
    <div class="curves">
      {series.map(([name, points]) => (
        <Chart key={name} name={name} points={points} />
      ))}
    </div>
  );
}

function Chart({ name, points }: { name: string; points: Array<[number, number]> }) {
  const W = 280;
  const H = 110;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => (x1 === x0 ? W / 2 : ((x - x0) / (x1 - x0)) * (W - 10) + 5);
  const sy = (y: number) => (y1 === y0 ? H / 2 : H - 5 - ((y - y0) / (y1 - y0)) * (H - 10));
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img" aria-label={`${name}: from ${ys[0]?.toFixed(3)} to ${ys[ys.length - 1]?.toFixed(3)}`}>
        <polyline fill="none" stroke="currentColor" stroke-width="1.5" points={points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')} />
      </svg>
      <figcaption>
        {name}: {y0.toFixed(3)}–{y1.toFixed(3)} over steps {x0}–{x1}
      </figcaption>
    </figure>
  );
}

function DeadLetterList({ data, error, onRedriven }: { data?: DeadLetters; error?: string; onRedriven: () => void }) {
  const [message, setMessage] = useState<{ ok: boolean; text: string }>();
  const total = data?.queues.reduce((n, q) => n + q.count, 0) ?? 0;
  const redrive = async () => {
    try {
      const { redriven } = await api<{ redriven: Record<string, number> }>('POST', '/dead-letters/redrive', { json: {} });
      setMessage({
        ok: true,
        text: `Redriven: ${Object.entries(redriven)
          .map(([q, n]) => `${n} to ${q}`)
          .join(', ')}.`,
      });
      onRedriven();
    } catch (err) {
      setMessage({ ok: false, text: messageOf(err) });
    }
  };
  return (
    <>
      <ErrorBanner error={error} />
      {data && total === 0 && <p class="empty">No dead letters: every message was processed or is still being retried.</p>}
      {data?.queues
        .filter((q) => q.count > 0)
        .map((q) => (
          <div key={q.queue}>
            <h3>
              {q.queue}: {q.count}
            </h3>
            <ul class="dead-letters">
              {q.messages.map((m) => (
                <li key={m.messageId}>
                  <code>{m.body.length > 160 ? `${m.body.slice(0, 160)}…` : m.body}</code>
                  {m.error && <span class="reason"> {m.error}</span>}
                </li>
              ))}
            </ul>
          </div>
        ))}
      {total > 0 && (
        <button type="button" onClick={() => void redrive()}>
          Redrive all
        </button>
      )}
      <StatusMessage message={message} />
    </>
  );
}
