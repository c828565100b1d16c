#!/usr/bin/env node
// Read and write a job's user data through the Weft API, from inside a job. The worker gives every
// job WEFT_URL, WEFT_WORKFLOW_KEY and WEFT_JOB_KEY.
//
//   node examples/scripts/user-data.mjs store NAME JSON   write JSON into the user data NAME this job stores
//   node examples/scripts/user-data.mjs read NAME         print the user data NAME this job consumes
const [, , verb, name, json] = process.argv;
const { WEFT_URL: url, WEFT_WORKFLOW_KEY: wf, WEFT_JOB_KEY: job } = process.env;
if (!url || !wf || !job) {
  console.error('run this inside a Weft job (WEFT_URL, WEFT_WORKFLOW_KEY and WEFT_JOB_KEY are not set)');
  process.exit(2);
}

async function api(method, path, body) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function find(edge) {
  const page = await api('GET', `/workflows/${wf}/jobs/${job}/user_data_${edge}`);
  const doc = page.items.find((d) => d.name === name);
  if (!doc) throw new Error(`this job ${edge === 'stores' ? 'stores' : 'consumes'} no user data named ${name}`);
  return doc;
}

if (verb === 'store') {
  const doc = await find('stores');
  await api('PUT', `/workflows/${wf}/user_data/${doc._key}`, { ...doc, data: JSON.parse(json) });
  console.log(`stored ${name}: ${json}`);
} else if (verb === 'read') {
  const doc = await find('consumes');
  console.log(JSON.stringify(doc.data));
} else {
  console.error('usage: user-data.mjs store NAME JSON | read NAME');
  process.exit(2);
}
