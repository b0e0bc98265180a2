// Reads an strace log of `npm ci` (connect, sendto, sendmmsg) and fails when a DNS query names a
// host other than the allowed ones, or a TCP connection goes to an address none of them resolved to.
// Usage: node scripts/install-network-report.mjs <trace> <allowed host>...
import { readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';

const [tracePath, ...allowedHosts] = process.argv.slice(2);
const trace = readFileSync(tracePath, 'utf8');

/** DNS question names in strace's escaped buffers: "\3api\5nuget\3org\0" -> api.nuget.org. */
function dnsNames(text) {
  const names = new Set();
  for (const m of text.matchAll(/iov_base="((?:[^"\\]|\\.)*)"/g)) {
    const bytes = unescapeStrace(m[1]);
    if (bytes.length < 13) continue;
    const labels = [];
    let at = 12;
    while (at < bytes.length && bytes[at] > 0 && bytes[at] < 64) {
      labels.push(Buffer.from(bytes.slice(at + 1, at + 1 + bytes[at])).toString('latin1'));
      at += 1 + bytes[at];
    }
    if (labels.length > 0 && bytes[at] === 0) names.add(labels.join('.').toLowerCase());
  }
  return names;
}

function unescapeStrace(s) {
  const out = [];
  for (let i = 0; i < s.length; i += 1) {
    if (s[i] !== '\\') {
      out.push(s.charCodeAt(i));
      continue;
    }
    const next = s[i + 1];
    const oct = /^[0-7]{1,3}/.exec(s.slice(i + 1));
    if (oct) {
      out.push(parseInt(oct[0], 8));
      i += oct[0].length;
    } else {
      out.push({ n: 10, r: 13, t: 9, v: 11, f: 12, '"': 34, '\\': 92 }[next] ?? next.charCodeAt(0));
      i += 1;
    }
  }
  return out;
}

const allowed = new Set(allowedHosts.map((h) => h.toLowerCase()));
const allowedAddresses = new Set(['127.0.0.1', '::1']);
for (const host of allowed) {
  for (const { address } of await lookup(host, { all: true }).catch(() => [])) allowedAddresses.add(address);
}
const nameservers = new Set(
  readFileSync('/etc/resolv.conf', 'utf8')
    .split('\n')
    .map((l) => /^nameserver\s+(\S+)/.exec(l)?.[1])
    .filter(Boolean),
);

const problems = [];
for (const name of dnsNames(trace)) {
  if (!allowed.has(name) && !name.endsWith('.localhost') && name !== 'localhost') problems.push(`looked up ${name}`);
}
for (const m of trace.matchAll(
  /connect\(\d+, \{sa_family=AF_INET6?, sin6?_port=htons\((\d+)\), (?:sin_addr=inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"[^)]*\))/g,
)) {
  const port = Number(m[1]);
  const address = m[2] ?? m[3];
  if (port === 53 && nameservers.has(address)) continue;
  if (!allowedAddresses.has(address) && !address.startsWith('127.')) problems.push(`connected to ${address}:${port}`);
}
const unique = [...new Set(problems)];
if (unique.length > 0) {
  console.error(`[install-check] npm ci reached beyond the registry (${[...allowed].join(', ')}):\n  ${unique.join('\n  ')}`);
  process.exit(1);
}
console.log(`[install-check] npm ci talked only to ${[...allowed].join(', ')} (and loopback)`);
