// Development server for the /play page, until (and besides) the Ludus node serving it itself:
// serves server/assets/play/ at /play and passes every other request — lobby calls and WebSocket
// upgrades — through to a running ludus-server, Host header unchanged. The page therefore sees
// one origin, as it will when the node serves it, and the node's default origin policy (Origin
// must name the request's Host) lets its WebSocket in.
//
//   node serve.mjs [--ludus http://127.0.0.1:7878] [--port 8080]

import { createReadStream, existsSync } from "node:fs";
import { createServer, request } from "node:http";
import { connect } from "node:net";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { ludus: { type: "string", default: "http://127.0.0.1:7878" }, port: { type: "string", default: "8080" } },
});
const ludus = new URL(values.ludus);
const assets = join(dirname(fileURLToPath(import.meta.url)), "../../server/assets/play");
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

const server = createServer((req, res) => {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  if (path === "/play" || path.startsWith("/play/")) {
    const file = normalize(join(assets, path === "/play" || path === "/play/" ? "index.html" : path.slice("/play/".length)));
    if (!file.startsWith(assets) || !existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(res);
    return;
  }
  const upstream = request(
    { host: ludus.hostname, port: ludus.port, method: req.method, path: req.url, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on("error", (error) => res.writeHead(502).end(`ludus-server unreachable: ${error.message}`));
  req.pipe(upstream);
});

// WebSocket upgrades: replay the request head to ludus-server, then pipe both ways.
server.on("upgrade", (req, socket, head) => {
  const upstream = connect(Number(ludus.port), ludus.hostname, () => {
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let index = 0; index < req.rawHeaders.length; index += 2) lines.push(`${req.rawHeaders[index]}: ${req.rawHeaders[index + 1]}`);
    upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
    upstream.write(head);
    socket.pipe(upstream).pipe(socket);
  });
  const drop = () => {
    socket.destroy();
    upstream.destroy();
  };
  upstream.on("error", drop);
  socket.on("error", drop);
});

server.listen(Number(values.port), "127.0.0.1", () => {
  console.log(`play: http://127.0.0.1:${server.address().port}/play  (ludus-server at ${ludus.origin})`);
});
