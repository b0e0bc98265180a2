/** The console's files on the embedded stack's API server: built by esbuild, same origin, the JSON API untouched. */
import { LocalApiServer } from '../../local/api-server';
import { buildConsoleAssets, type ConsoleAssets } from '../../local/console-assets';

describe('the console on the API server', () => {
  let assets: ConsoleAssets;
  let server: LocalApiServer;
  let base: string;
  const apiCalls: string[] = [];

  beforeAll(async () => {
    assets = await buildConsoleAssets();
    server = await LocalApiServer.start(
      async (event) => {
        apiCalls.push(`${event.httpMethod} ${event.path}`);
        return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{"status":"ok"}' };
      },
      '127.0.0.1',
      0,
      assets,
    );
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server.close();
  });

  it('serves the page at / with a same-origin content security policy, and its script and stylesheet under /console/', async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'.*script-src 'self'/);
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/console/app.js">');
    expect(html).not.toMatch(/https?:\/\//); // nothing from a CDN
    const script = await fetch(`${base}/console/app.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const js = await script.text();
    expect(js.length).toBeGreaterThan(10_000);
    expect(js).not.toMatch(/\bimport\s*["'(]/); // one bundle: no module loaded from elsewhere
    expect((await fetch(`${base}/console/app.css`)).status).toBe(200);
    expect(apiCalls).toEqual([]);
  });

  it('answers 304 to a browser that has the file, 404 for a file it does not have', async () => {
    const first = await fetch(`${base}/console/app.js`);
    const etag = first.headers.get('etag')!;
    expect((await fetch(`${base}/console/app.js`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await fetch(`${base}/console/nope.js`)).status).toBe(404);
  });

  it('leaves every API route to the API handler', async () => {
    apiCalls.length = 0;
    await fetch(`${base}/health`);
    await fetch(`${base}/images?limit=5`);
    await fetch(`${base}/`, { method: 'POST' });
    expect(apiCalls).toEqual(['GET /health', 'GET /images', 'POST /']);
  });
});
