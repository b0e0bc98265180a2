/** The CLI against a loopback API that answers as the pipeline's does: commands, --help, --json, exit codes. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { main } from '../../../cli/pipeline';

describe('pipeline CLI', () => {
  let server: Server;
  let api: string;
  const requests: Array<{ method: string; url: string; body: string }> = [];
  let out: string[];
  let err: string[];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        requests.push({ method: req.method!, url: req.url!, body });
        const send = (status: number, json: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
        if (req.url === '/health') return send(200, { status: 'ok', servingModel: 'v1', indexed: 3, pending: 0, quarantined: 1 });
        if (req.url === '/train') return send(409, { error: { code: 'training_running', message: 'a training run is in progress' } });
        if (req.url === '/dead-letters/redrive') return send(200, { redriven: { ingest: 2 } });
        return send(404, { error: { code: 'not_found', message: 'no such route' } });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  beforeEach(() => {
    out = [];
    err = [];
    requests.length = 0;
    jest.spyOn(console, 'log').mockImplementation((line: string) => void out.push(line));
    jest.spyOn(console, 'error').mockImplementation((line: string) => void err.push(line));
  });
  afterEach(() => jest.restoreAllMocks());

  it('lists every command with --help and exits 0', async () => {
    expect(await main(['--help'])).toBe(0);
    for (const c of ['health', 'labels import', 'models', 'models rollback', 'train', 'dead-letters', 'dead-letters redrive', 'console'])
      expect(out.join('\n')).toContain(`  ${c}`);
  });

  it.each([['health'], ['labels', 'import'], ['models'], ['models', 'rollback'], ['train'], ['dead-letters'], ['dead-letters', 'redrive']])(
    'explains %s with --help, without calling the API',
    async (...words) => {
      expect(await main([...words, '--help'])).toBe(0);
      expect(out.join('\n')).toContain(`usage: npm run pipeline -- ${words.join(' ')}`);
      expect(requests).toEqual([]);
    },
  );

  it('prints a summary, or the API answer with --json', async () => {
    expect(await main(['health', '--api', api])).toBe(0);
    expect(out).toEqual(['ok: model v1, 3 indexed, 0 pending, 1 quarantined']);
    out.length = 0;
    expect(await main(['health', '--api', api, '--json'])).toBe(0);
    expect(JSON.parse(out.join('\n'))).toMatchObject({ servingModel: 'v1', indexed: 3 });
  });

  it('exits 1 with the API error when the API refuses', async () => {
    expect(await main(['train', '--max-minutes', '5', '--api', api])).toBe(1);
    expect(requests).toEqual([{ method: 'POST', url: '/train', body: '{"maxMinutes":5}' }]);
    expect(err).toEqual(['error: a training run is in progress (training_running)']);
  });

  it('console needs a deployment (--endpoint): the embedded stack serves the console itself', async () => {
    expect(await main(['console', '--api', api])).toBe(2);
    expect(err.join('\n')).toMatch(/console needs --endpoint .* the embedded stack serves the console at http:\/\/127\.0\.0\.1:3000\//);
    expect(await main(['console', '--endpoint', 'https://abc.execute-api.eu-west-1.amazonaws.com/v1', '--port', 'x'])).toBe(2);
    expect(err.join('\n')).toMatch(/--port must be a port number/);
    expect(requests).toEqual([]);
  });

  it('exits 2 on a wrong command line, before calling the API', async () => {
    expect(await main(['frobnicate', '--api', api])).toBe(2);
    expect(await main(['train', '--max-minutes', 'soon', '--api', api])).toBe(2);
    expect(await main(['models', '--verbose', '--api', api])).toBe(2);
    expect(await main(['dead-letters', 'redrive', 'everything', '--api', api])).toBe(2);
    expect(await main(['labels', 'import', '--api', api])).toBe(2);
    expect(await main([])).toBe(2);
    expect(requests).toEqual([]);
  });

  it('takes boolean flags anywhere and positional arguments after the command', async () => {
    expect(await main(['--json', 'dead-letters', 'redrive', 'ingest', '--api', api])).toBe(0);
    expect(requests).toEqual([{ method: 'POST', url: '/dead-letters/redrive', body: '{"queue":"ingest"}' }]);
    expect(JSON.parse(out.join('\n'))).toEqual({ redriven: { ingest: 2 } });
  });
});
