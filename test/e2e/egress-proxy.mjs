#!/usr/bin/env node
// The control plane's egress for cluster traffic (kube-apiserver --egress-selector-config-file):
// an HTTP CONNECT proxy, on a unix socket, that takes the API server to a Service's ClusterIP
// (webhooks, CRD conversion) on the loopback port of the engine behind it. Nothing leaves the host.
// (The API server speaks HTTP CONNECT over TCP with mutual TLS only; over a unix socket, plainly.)
//
//   node egress-proxy.mjs SOCKET ROUTES_JSON   ROUTES_JSON: {"10.0.0.200:443": 41234, ...}
import { createServer } from 'node:http';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';

const [socket, routesJson] = process.argv.slice(2);
const routes = new Map(Object.entries(JSON.parse(routesJson)));

const server = createServer((_, response) => {
  response.writeHead(405).end('CONNECT only\n');
});

server.on('connect', (request, client, head) => {
  const target = routes.get(request.url);
  if (target === undefined) {
    console.log(`refused ${request.url}: no engine behind it`);
    client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
    return;
  }
  const upstream = connect(Number(target), '127.0.0.1', () => {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.on('error', (err) => {
    console.log(`${request.url} -> 127.0.0.1:${target}: ${err.message}`);
    client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
  });
  client.on('error', () => upstream.destroy());
});

rmSync(socket, { force: true });
server.listen(socket, () => console.log(`egress proxy on ${socket}: ${JSON.stringify(Object.fromEntries(routes))}`));
