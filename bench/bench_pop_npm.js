// Times T-Mobile's npm builder (tmo-poptoken-builder) inside node, for bench/bench_pop.py.
//
// stdin:  {"module": "<poptoken-builder-node.js>", "pem": "<PKCS#8 PEM>", "seconds": 1.0,
//          "rounds": 3, "cases": [{"label": "1 KiB", "pairs": [[name, value], ...]}]}
// stdout: {"<label>": <best tokens/s over the rounds>, ...}
"use strict";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const config = JSON.parse(input);
  const builder = require(config.module);
  const result = {};
  for (const item of config.cases) {
    const map = new Map(item.pairs);
    builder.buildPopToken(map, config.pem); // warm-up: JIT, first key parse
    let best = 0;
    for (let round = 0; round < config.rounds; round++) {
      const budget = config.seconds * 1e9;
      const start = process.hrtime.bigint();
      let count = 0;
      let elapsed = 0;
      do {
        builder.buildPopToken(map, config.pem);
        count++;
        elapsed = Number(process.hrtime.bigint() - start);
      } while (elapsed < budget);
      best = Math.max(best, count / (elapsed / 1e9));
    }
    result[item.label] = best;
  }
  process.stdout.write(JSON.stringify(result));
});
