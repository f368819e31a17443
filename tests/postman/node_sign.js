// Runs the collection's crypto under plain node: argv[2] is the script, argv[3] crypto-js.
// stdin: {"pem": ..., "messages": [base64...], "pops": [{"pairs", "now", "jti"}], "uris": [[path, query]]}
// stdout: {"signatures": [base64...], "pops": [token...], "uris": [uri or {"error": message}]}
global.CryptoJS = require(process.argv[3]);
const taap = require(process.argv[2]);

let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const job = JSON.parse(input);
  const out = { signatures: [], pops: [], uris: [] };
  let key = null;
  try {
    key = job.pem === undefined ? null : taap.pemToKey(job.pem);
  } catch (error) {
    out.key_error = error.message;
  }
  for (const message of job.messages || []) {
    const bytes = Uint8Array.from(Buffer.from(message, 'base64'));
    out.signatures.push(Buffer.from(taap.rs256Sign(key, bytes)).toString('base64'));
  }
  for (const pop of job.pops || []) {
    out.pops.push(taap.buildPopToken(pop.pairs, key, { now: pop.now, jti: pop.jti }));
  }
  for (const [path, query] of job.uris || []) {
    try {
      out.uris.push(taap.canonicalUri(path, query));
    } catch (error) {
      out.uris.push({ error: error.message });
    }
  }
  process.stdout.write(JSON.stringify(out));
});
