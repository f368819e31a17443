// The API behind the gateway in the tests: not Python, on purpose. It echoes what it received.
//
// node upstream.js  ->  prints "listening <port>" on stdout, then serves 127.0.0.1:<port>:
//   any path            200 JSON {method, url, headers: [[name, value], ...], body_length,
//                       body_sha256, body_text (the body when it is under 4 KiB)}
//   ...?slow=MS         the same, answered after MS milliseconds
//   ...?stream=MIB      MIB mebibytes of "x" in 64 KiB pieces, chunked, no Content-Length
//   ...?drip=1          64 KiB every 100 ms for a minute, chunked
//   ...?stall=1         a head and a first piece, then nothing (the connection stays open)
//   ...?status=NNN      the echo with status NNN
//   ...?cut=1           a head, some body, then the connection is destroyed
//   ...?eof=1           the echo without length or chunks: the connection's end ends it
//   GET /__seen         the URLs of every request received so far (JSON array)
"use strict";

const http = require("http");
const crypto = require("crypto");

const seen = [];

const server = http.createServer((req, res) => {
  if (req.url === "/__seen") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(seen));
    return;
  }
  seen.push(req.url);
  const pieces = [];
  req.on("data", (chunk) => pieces.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(pieces);
    const query = new URL(req.url, "http://upstream").searchParams;
    if (query.has("stall")) {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.write("first piece");
      return;
    }
    if (query.has("drip")) {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      let left = 600;
      const timer = setInterval(() => {
        res.write(Buffer.alloc(64 * 1024, "d"));
        if (--left === 0) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
      res.on("close", () => clearInterval(timer));
      return;
    }
    if (query.has("stream")) {
      const total = Number(query.get("stream")) * 1024 * 1024;
      const piece = Buffer.alloc(64 * 1024, "x");
      let sent = 0;
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const more = () => {
        while (sent < total) {
          const part = piece.subarray(0, Math.min(piece.length, total - sent));
          sent += part.length;
          if (!res.write(part)) {
            res.once("drain", more);
            return;
          }
        }
        res.end();
      };
      more();
      return;
    }
    const echo = JSON.stringify({
      method: req.method,
      url: req.url,
      headers: pairs(req.rawHeaders),
      body_length: body.length,
      body_sha256: crypto.createHash("sha256").update(body).digest("hex"),
      body_text: body.length < 4096 ? body.toString("utf8") : null,
    });
    const answer = () => {
      if (query.has("cut")) {
        res.writeHead(200, { "content-type": "application/json", "content-length": "100000" });
        res.write(echo);
        setTimeout(() => res.destroy(), 50);
        return;
      }
      if (query.has("eof")) {
        res.useChunkedEncodingByDefault = false;
        res.shouldKeepAlive = false;
      }
      const status = query.has("status") ? Number(query.get("status")) : 200;
      res.writeHead(status, {
        "content-type": "application/json",
        "x-upstream": "node",
        "keep-alive": "timeout=5",
      });
      res.end(echo);
    };
    if (query.has("slow")) {
      setTimeout(answer, Number(query.get("slow")));
    } else {
      answer();
    }
  });
});

function pairs(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

server.keepAliveTimeout = 5000;
server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
