// Build a PoP with T-Mobile's npm builder: node tmo_pop.js BUILDER_JS KEY_PEM_FILE PAIRS_JSON
const fs = require("fs");
const builder = require(process.argv[2]);
const pem = fs.readFileSync(process.argv[3], "utf8");
const pairs = JSON.parse(process.argv[4]);
process.stdout.write(builder.buildPopToken(new Map(pairs), pem));
