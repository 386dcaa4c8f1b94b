// Hive Gateway in front of the Case Repository (deploy/compose.yaml). Queries go to the subgraph over HTTP;
// subscriptions over graphql-transport-ws (the subgraph's SSE is not what Hive's default upstream speaks).
// The caller's Authorization header is passed to every subgraph: the Case Repository applies its own field
// policy to the employee's token, so the gateway never widens what a caller sees.
import { defineConfig } from '@graphql-hive/gateway';

export const gatewayConfig = defineConfig({
  port: 4000,
  transportEntries: {
    '*.http': {
      options: {
        subscriptions: {
          kind: 'ws',
          location: '/graphql',
        },
      },
    },
  },
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) => ({
      authorization: request.headers.get('authorization') ?? '',
      'x-request-id': request.headers.get('x-request-id') ?? '',
    }),
  },
});
