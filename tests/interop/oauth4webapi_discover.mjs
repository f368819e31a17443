// Discover a token server with oauth4webapi (panva's strict OAuth 2 / OIDC client for JS).
//
// argv[2]: JSON {"module": "<path to oauth4webapi's build/index.js>",
//                "cases": [{"issuer": "<issuer identifier>", "algorithm": "oauth2" | "oidc"}]}
// stdout:  a JSON array, one entry per case, in order:
//          {"url": <URL fetched>, "status": <HTTP status>, "ok": true, "metadata": {...}}
//          or {"url", "status", "ok": false, "error": "<message>", "code": "<error code>"}
//
// Plain http on loopback: every request passes allowInsecureRequests, which is the only
// check it relaxes (the issuer comparison and the response checks stay strict).
import { pathToFileURL } from "node:url";

const request = JSON.parse(process.argv[2]);
const oauth = await import(pathToFileURL(request.module).href);

const results = [];
for (const { issuer, algorithm } of request.cases) {
  const expected = new URL(issuer);
  let response;
  try {
    response = await oauth.discoveryRequest(expected, {
      algorithm,
      [oauth.allowInsecureRequests]: true,
    });
    const metadata = await oauth.processDiscoveryResponse(expected, response);
    results.push({ url: response.url, status: response.status, ok: true, metadata });
  } catch (error) {
    results.push({
      url: response?.url ?? null,
      status: response?.status ?? null,
      ok: false,
      error: String(error?.message ?? error),
      code: error?.code ?? null,
    });
  }
}
process.stdout.write(JSON.stringify(results));
