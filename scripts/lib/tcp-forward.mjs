// Forwards TCP connections: node scripts/lib/tcp-forward.mjs LISTEN_HOST:PORT TARGET_HOST:PORT
// The local test node (scripts/kube-env up --node) has no kube-proxy; this carries pods'
// connections to the `kubernetes` Service address to the API server on loopback, without NAT
// (so without connection tracking on the machine).
import { connect, createServer } from 'node:net';

function endpoint(text) {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

const [listen, target] = process.argv.slice(2).map(endpoint);
if (!listen || !target) {
  console.error('usage: tcp-forward.mjs LISTEN_HOST:PORT TARGET_HOST:PORT');
  process.exit(2);
}
const server = createServer((client) => {
  const upstream = connect(target.port, target.host);
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(listen.port, listen.host, () => console.error(`forwarding ${listen.host}:${listen.port} to ${target.host}:${target.port}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
