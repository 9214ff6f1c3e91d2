// Bootstrap of a JavaScript code-node process: the child half of Sandbox (openify/security/sandbox.py),
// run as `node --experimental-permission --allow-fs-read=<tmp> -e <this source>`.
// Reads one JSON request {code, inputs} from stdin, calls main(inputs), writes one JSON line to stdout:
// {ok: true, result} or {ok: false, kind, error}. Before user code runs it hides `process`, `module`,
// the real `require` and `fetch`, and gives a `require` that refuses network and process modules.
(() => {
  'use strict';
  const fs = require('fs');
  const vm = require('vm');
  const nativeRequire = require;
  const exit = process.exit.bind(process);
  const stringify = JSON.stringify;
  const NETWORK = 'Network access is not allowed in the code sandbox';
  const NET_MODULES = new Set(['net', 'http', 'https', 'http2', 'dgram', 'dns', 'tls', 'undici', 'inspector']);
  const ALLOWED = new Set([
    'assert', 'buffer', 'crypto', 'events', 'fs', 'path', 'querystring', 'string_decoder', 'url', 'util',
    'punycode', 'zlib', 'timers', 'stream',
  ]);

  function sandboxRequire(name) {
    const top = String(name).replace(/^node:/, '').split('/')[0];
    if (NET_MODULES.has(top)) throw new Error(NETWORK);
    if (!ALLOWED.has(top)) throw new Error(`Module ${name} is not allowed in the code sandbox`);
    return nativeRequire(String(name));
  }

  function refuseNetwork() {
    throw new Error(NETWORK);
  }

  function reply(message) {
    let data;
    try {
      data = stringify(message);
    } catch (e) {
      data = stringify({ ok: false, kind: 'invalid_result', error: `The result is not JSON: ${e.message}` });
    }
    const buf = Buffer.from(data, 'utf8');
    let off = 0;
    while (off < buf.length) {
      try {
        off += fs.writeSync(1, buf, off);
      } catch (e) {
        if (e.code !== 'EAGAIN') throw e;
      }
    }
    exit(0);
  }

  function describe(e) {
    if (!(e instanceof Error)) return `Error: ${String(e)}`;
    const text = `${e.name}: ${e.message}`;
    const m = /code\.js:(\d+)/.exec(String(e.stack || ''));
    return m ? `${text} (line ${m[1]})` : text;
  }

  function finish(result) {
    if (Object.prototype.toString.call(result) !== '[object Object]') {
      const got = result === null ? 'null' : Array.isArray(result) ? 'array' : typeof result;
      reply({ ok: false, kind: 'invalid_result', error: `main must return an object, got ${got}` });
    }
    reply({ ok: true, result });
  }

  function fail(e) {
    if (e instanceof RangeError && /allocation failed|Invalid array length|Invalid string length/.test(e.message)) {
      reply({ ok: false, kind: 'memory', error: 'Memory limit exceeded' });
    }
    reply({ ok: false, kind: 'exception', error: describe(e) });
  }

  const request = JSON.parse(fs.readFileSync(0, 'utf8'));
  const noop = () => {};
  const quiet = {};
  for (const k of ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir', 'table', 'time', 'timeEnd', 'assert']) {
    quiet[k] = noop;
  }
  const hide = (name, value) =>
    Object.defineProperty(globalThis, name, { value, writable: false, configurable: false, enumerable: false });
  hide('process', undefined);
  // node's -e runner reassigns these after the script's synchronous part, so they stay writable.
  globalThis.module = undefined;
  globalThis.exports = undefined;
  globalThis.require = sandboxRequire;
  hide('fetch', refuseNetwork);
  hide('WebSocket', refuseNetwork);
  hide('console', quiet);

  let main;
  try {
    main = new vm.Script(`${request.code}\n;typeof main === 'function' ? main : undefined`, {
      filename: 'code.js',
    }).runInThisContext();
  } catch (e) {
    fail(e);
  }
  if (typeof main !== 'function') {
    reply({ ok: false, kind: 'invalid_result', error: 'The code must define a function main' });
  }
  let result;
  try {
    result = main(request.inputs);
  } catch (e) {
    fail(e);
  }
  if (result && typeof result.then === 'function') {
    result.then(finish, fail);
  } else {
    finish(result);
  }
})();
