// Composes subgraph SDL files into a supergraph with Apollo's composer (@apollo/composition composeServices).
//   node deploy/gateway/compose.mjs --subgraph NAME=URL=SDL_FILE ... [--out FILE]
// Any composition error is printed and the exit code is 1, so a test or `make supergraph` fails on it. Each
// subgraph must link federation 2.9 or older: the Guild composer (Hive Gateway's own) refuses newer versions.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { composeServices } from '@apollo/composition';
import { parse, visit } from 'graphql';

const NEWEST_FEDERATION_FOR_HIVE = [2, 9];
// What a subgraph library adds to the published SDL; the composer adds its own, so an exported schema's copies go.
const SUBGRAPH_PLUMBING_TYPES = new Set(['_Any', '_Entity', '_Service']);
const SUBGRAPH_PLUMBING_FIELDS = new Set(['_entities', '_service']);

function federationVersion(document) {
  let version = null;
  visit(document, {
    Directive(node) {
      if (node.name.value !== 'link') return;
      const url = node.arguments.find((a) => a.name.value === 'url')?.value.value ?? '';
      const match = url.match(/specs\.apollo\.dev\/federation\/v(\d+)\.(\d+)/);
      if (match) version = [Number(match[1]), Number(match[2])];
    },
  });
  return version;
}

function withoutPlumbing(document) {
  return visit(document, {
    ObjectTypeDefinition(node) {
      if (SUBGRAPH_PLUMBING_TYPES.has(node.name.value)) return null;
      if (node.name.value !== 'Query') return undefined;
      return { ...node, fields: node.fields.filter((f) => !SUBGRAPH_PLUMBING_FIELDS.has(f.name.value)) };
    },
    UnionTypeDefinition: (node) => (SUBGRAPH_PLUMBING_TYPES.has(node.name.value) ? null : undefined),
    ScalarTypeDefinition: (node) => (SUBGRAPH_PLUMBING_TYPES.has(node.name.value) ? null : undefined),
  });
}

function subgraph(argument) {
  const [name, ...rest] = argument.split('=');
  const file = rest.pop();
  const url = rest.join('=');
  if (!name || !url || !file) throw new Error(`--subgraph takes NAME=URL=SDL_FILE, got ${argument}`);
  const document = parse(readFileSync(file, 'utf8'));
  const version = federationVersion(document);
  if (version === null) throw new Error(`${name} (${file}) links no federation 2 spec: add @link(url: "https://specs.apollo.dev/federation/v2.5")`);
  const [newestMajor, newestMinor] = NEWEST_FEDERATION_FOR_HIVE;
  if (version[0] > newestMajor || (version[0] === newestMajor && version[1] > newestMinor)) {
    throw new Error(`${name} links federation v${version.join('.')}; Hive Gateway's composer accepts up to v${newestMajor}.${newestMinor}`);
  }
  return { name, url, typeDefs: withoutPlumbing(document) };
}

const { values } = parseArgs({ options: { subgraph: { type: 'string', multiple: true }, out: { type: 'string' } } });
try {
  const result = composeServices((values.subgraph ?? []).map(subgraph));
  if (result.errors) {
    for (const error of result.errors) console.error(`composition error: ${error.message}`);
    process.exit(1);
  }
  if (values.out) writeFileSync(values.out, result.supergraphSdl);
  else process.stdout.write(result.supergraphSdl);
} catch (error) {
  console.error(`composition error: ${error.message}`);
  process.exit(1);
}
