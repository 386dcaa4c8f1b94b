// A stand-in CRM subgraph (Apollo Server + @apollo/subgraph): it extends our Customer with crmTier and
// relationshipManager and logs contacts that reference our Case. Its data is fixed, so tests can assert on it.
//   node tests/gateway/crm.mjs --port 4001
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const typeDefs = parse(readFileSync(new URL('./crm.graphql', import.meta.url), 'utf8'));

const MANAGERS = {
  'RM-7': { id: 'RM-7', name: 'Jan Kowalczyk', email: 'jan.kowalczyk@bank.example' },
};
const CUSTOMERS = {
  'CUST-1': { crmTier: 'GOLD', relationshipManagerId: 'RM-7' },
};
const CONTACTS = [
  { id: 'CRM-C-1', customerId: 'CUST-1', subject: 'Asked about the mortgage decision', at: '2026-11-22T09:00:00Z', caseId: 'CASE-1' },
  { id: 'CRM-C-2', customerId: 'CUST-1', subject: 'Complained about a fee', at: '2026-11-23T14:30:00Z', caseId: 'CASE-2' },
];

// The CRM knows every customer: one it has no record of is STANDARD with no manager.
function customer(id) {
  const record = CUSTOMERS[id] ?? { crmTier: 'STANDARD', relationshipManagerId: null };
  return { id, ...record };
}

const contact = (row) => ({ ...row, case: { id: row.caseId } });

const resolvers = {
  Query: {
    crmContact: (_, { id }) => {
      const row = CONTACTS.find((c) => c.id === id);
      return row ? contact(row) : null;
    },
  },
  Customer: {
    __resolveReference: (reference) => customer(reference.id),
    relationshipManager: (parent) => MANAGERS[parent.relationshipManagerId] ?? null,
    crmContacts: (parent) => CONTACTS.filter((c) => c.customerId === parent.id).reverse().map(contact),
  },
};

const { values } = parseArgs({ options: { port: { type: 'string', default: '4001' }, host: { type: 'string', default: '127.0.0.1' } } });
const server = new ApolloServer({
  schema: buildSubgraphSchema([{ typeDefs, resolvers }]),
  plugins: [ApolloServerPluginInlineTraceDisabled()], // no Apollo Studio here
});
const { url } = await startStandaloneServer(server, { listen: { port: Number(values.port), host: values.host } });
console.log(`crm subgraph ready at ${url}`);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.stop().then(() => process.exit(0)));
}
