// Build PoP tokens with T-Mobile's npm builder (tmo-poptoken-builder), many per process.
//
// stdin:  {"module": "<path to poptoken-builder-node.js>", "pem": "<PKCS#8 PEM>",
//          "jobs": [{"pairs": [[name, value], ...], "now": <epoch s> | null, "jti": "<jti>" | null}]}
// stdout: a JSON array of tokens, one per job, in order.
//
// "now" freezes the clock the builder reads (new Date(), Date.now()) and "jti" replaces the
// module's createGUID, so a token can be compared byte for byte with taap's.
"use strict";

const RealDate = Date;
let frozenMs = null;

class FrozenDate extends RealDate {
  constructor(...args) {
    if (args.length === 0 && frozenMs !== null) {
      super(frozenMs);
    } else {
      super(...args);
    }
  }
  static now() {
    return frozenMs !== null ? frozenMs : RealDate.now();
  }
}
global.Date = FrozenDate;

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const request = JSON.parse(input);
  const builder = require(request.module);
  const realGuid = builder.createGUID;
  const tokens = request.jobs.map((job) => {
    frozenMs = job.now === null || job.now === undefined ? null : job.now * 1000;
    builder.createGUID = job.jti ? () => job.jti : realGuid;
    return builder.buildPopToken(new Map(job.pairs), request.pem);
  });
  process.stdout.write(JSON.stringify(tokens));
});
