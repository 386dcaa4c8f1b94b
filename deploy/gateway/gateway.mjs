// Hive Gateway (its runtime, programmatically) in front of a supergraph: queries reach each subgraph over HTTP,
// subscriptions reach the Case Repository over graphql-transport-ws (Hive's default SSE upstream does not work
// with Strawberry). The caller's token goes with every call to the Case Repository, whose policy decides what
// it may see: over HTTP as the Authorization header, over the WebSocket as the connection_init payload.
//   node deploy/gateway/gateway.mjs --supergraph graphql/supergraph.graphql --port 4000
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createGatewayRuntime, getGraphQLWSOptions } from '@graphql-hive/gateway-runtime';
import httpTransport from '@graphql-mesh/transport-http';
import wsTransport from '@graphql-mesh/transport-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({
  options: {
    supergraph: { type: 'string', default: 'graphql/supergraph.graphql' },
    port: { type: 'string', default: '4000' },
    host: { type: 'string', default: '127.0.0.1' },
    // The subgraph name in the supergraph (join__Graph) whose subscriptions go over the WebSocket.
    'ws-subgraph': { type: 'string', default: 'cases' },
  },
});

// A client over HTTP sends the token as a header; one over the WebSocket in its connection_init payload.
function callerAuthorization({ request, context }) {
  return request?.headers.get('authorization') ?? context?.connectionParams?.Authorization ?? undefined;
}

const gateway = createGatewayRuntime({
  supergraph: readFileSync(values.supergraph, 'utf8'),
  transports: { http: httpTransport, ws: wsTransport },
  transportEntries: {
    [values['ws-subgraph']]: {
      options: {
        subscriptions: {
          kind: 'ws',
          // One upstream socket per client socket, authenticated with the client's token. Hive would otherwise
          // multiplex every subscription with the same parameters onto one socket, and Strawberry refuses the
          // 101st operation on a socket ("Subscription limit reached", max_subscriptions_per_connection=100).
          options: {
            connectionParams: {
              Authorization: '{context.connectionParams.Authorization}',
              gatewayConnection: '{context.gatewayConnection}',
            },
          },
        },
      },
    },
  },
  // Only what our server reads: the token, X-Channel (the call's channel when the token names none) and
  // X-Request-Id (kept in our access log and audit records, so one id follows the call through both).
  propagateHeaders: {
    fromClientToSubgraphs: (payload) => {
      const headers = {};
      const authorization = callerAuthorization(payload);
      if (authorization) headers.authorization = authorization;
      for (const name of ['x-channel', 'x-request-id']) {
        const value = payload.request?.headers.get(name);
        if (value) headers[name] = value;
      }
      return headers;
    },
  },
  graphiql: false,
  landingPage: false,
  logging: process.env.GATEWAY_LOG_LEVEL ?? 'warn',
});

const server = createServer(gateway);
const sockets = new WebSocketServer({ server, path: gateway.graphqlEndpoint });
let connections = 0;
const connectionIds = new WeakMap(); // graphql-ws keeps one context object per client socket
function connectionId(ctx) {
  if (!connectionIds.has(ctx)) connectionIds.set(ctx, String(++connections));
  return connectionIds.get(ctx);
}
useServer(getGraphQLWSOptions(gateway, (ctx) => ({
  connectionParams: ctx.connectionParams ?? {},
  gatewayConnection: connectionId(ctx),
})), sockets);

server.listen(Number(values.port), values.host, () => {
  console.log(`gateway ready at http://${values.host}:${values.port}${gateway.graphqlEndpoint}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    sockets.close();
    server.close(() => Promise.resolve(gateway.dispose()).finally(() => process.exit(0)));
    setTimeout(() => process.exit(0), 3000).unref();
  });
}
