/* The Try it page (docs/portal.md): runs the four TAAP steps from the browser.
 *
 * Step 1 signs the token request's PoP, step 2 posts it to this server's token endpoint,
 * step 3 signs the API call's PoP over the access token, step 4 calls the sample API; every
 * request is same-origin and carries no cookie. The private key file is read with FileReader
 * into a local variable, imported as a non-extractable WebCrypto key and dropped: no request
 * carries it. The client secret is shown masked in every step. Output is written with
 * textContent only; portal.js's delegated handler serves the Copy buttons. */
(function () {
  'use strict';

  const form = document.querySelector('form[data-try]');
  if (!form || !window.taapPop) return;
  const pop = window.taapPop;
  const MAX_KEY_FILE = 64 * 1024;
  const MAX_SHOWN = 4000;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function explanations() {
    const found = {};
    const list = document.getElementById('try-explanations');
    if (!list) return found;
    for (const term of list.querySelectorAll('dt')) {
      const detail = term.nextElementSibling;
      if (detail) found[term.textContent] = detail.textContent;
    }
    return found;
  }
  const EXPLAIN = explanations();

  function readFile(file) {
    return new Promise((resolve, reject) => {
      if (file.size > MAX_KEY_FILE) {
        reject(new Error('the key file is larger than 64 KiB: is it the right file?'));
        return;
      }
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result));
      reader.onerror = () => reject(new Error('the key file could not be read'));
      reader.readAsText(file);
    });
  }

  function quote(text) {
    return "'" + text.replace(/'/g, "'\\''") + "'";
  }

  function pretty(text) {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch (err) {
      return text;
    }
  }

  function cut(text) {
    return text.length > MAX_SHOWN ? text.slice(0, MAX_SHOWN) + '…' : text;
  }

  function step(n) {
    const region = document.getElementById('step' + n);
    return {
      region: region,
      outcome: region.querySelector('[data-outcome]'),
      body: region.querySelector('[data-body]'),
    };
  }

  function reset() {
    for (const n of [1, 2, 3, 4]) {
      const s = step(n);
      s.region.classList.remove('step-ok', 'step-failed');
      s.outcome.textContent = 'Not run yet.';
      s.body.replaceChildren();
      s.body.hidden = true;
    }
  }

  function finish(n, ok, outcome, blocks) {
    const s = step(n);
    s.region.classList.add(ok ? 'step-ok' : 'step-failed');
    s.outcome.textContent = outcome;
    s.body.replaceChildren();
    for (const block of blocks) s.body.append(block);
    s.body.hidden = !blocks.length;
  }

  function skip(n, why) {
    const s = step(n);
    s.outcome.textContent = 'Not run: ' + why;
  }

  let copies = 0;
  function code(title, text) {
    copies += 1;
    const id = 'try-code-' + copies;
    const box = el('div', 'code-block');
    const pre = el('pre');
    pre.id = id;
    pre.append(el('code', '', text));
    const copy = el('button', 'button button-secondary button-small', 'Copy');
    copy.type = 'button';
    copy.dataset.copy = id;
    copy.setAttribute('aria-label', 'Copy: ' + title);
    box.append(pre, copy);
    const wrap = el('div', 'try-block');
    wrap.append(el('h3', '', title), box);
    return wrap;
  }

  function pairsTable(caption, pairs, mask) {
    const wrap = el('div', 'table-wrap');
    const table = el('table', 'try-pairs');
    table.append(el('caption', '', caption));
    const head = el('thead');
    const row = el('tr');
    for (const name of ['Signed name (ehts)', 'Value']) {
      const th = el('th', '', name);
      th.scope = 'col';
      row.append(th);
    }
    head.append(row);
    const body = el('tbody');
    for (const [name, value] of pairs) {
      const tr = el('tr');
      const th = el('th', 'mono', name);
      th.scope = 'row';
      tr.append(th, el('td', 'mono', cut(mask(value))));
      body.append(tr);
    }
    table.append(head, body);
    wrap.append(table);
    return wrap;
  }

  function popBlocks(label, built, pairs, mask, command) {
    return [
      code('Decoded header', JSON.stringify(built.header, null, 2)),
      code('Decoded claims', JSON.stringify(built.claims, null, 2)),
      pairsTable(label + ': signed values, in order', pairs, mask),
      code('edts (SHA-256 of the values, base64url)', built.claims.edts),
      code('The PoP (X-Authorization)', built.token),
      code('The same from a shell', command),
    ];
  }

  function errorOf(text) {
    try {
      const data = JSON.parse(text);
      if (data && typeof data.error_code === 'string') return data;
    } catch (err) {
      /* not an error body of the protocol */
    }
    return null;
  }

  function answerBlocks(response, text, curl) {
    const blocks = [];
    const error = response.ok ? null : errorOf(text);
    if (error) {
      const box = el('div', 'try-explain');
      box.append(el('p', '', 'Refused: ' + error.error_code));
      const why = EXPLAIN[error.error_code];
      if (why) box.append(el('p', '', why));
      if (error.error_description) box.append(el('p', 'hint', 'Server: ' + error.error_description));
      blocks.push(box);
    }
    const headers = [];
    for (const name of ['content-type', 'www-authenticate', 'retry-after', 'x-request-id']) {
      const value = response.headers.get(name);
      if (value) headers.push(name + ': ' + value);
    }
    const head = 'HTTP ' + response.status + ' ' + response.statusText;
    blocks.push(code('Answer', cut(head + '\n' + headers.join('\n') + '\n\n' + pretty(text))));
    blocks.push(code('The same with curl', curl));
    return blocks;
  }

  function status(text) {
    const live = form.querySelector('[data-try-status]');
    if (live) live.textContent = text;
  }

  async function send(path, method, headers, body) {
    return fetch(path, {
      method: method,
      headers: headers,
      body: body ? body : undefined,
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
    });
  }

  async function run() {
    reset();
    const file = form.querySelector('#field-private_key').files[0];
    const secret = form.querySelector('#field-client_secret').value;
    const option = form.querySelector('#field-call').selectedOptions[0];
    if (!file || !secret || !option) {
      status('Choose the private key file and type the client secret first.');
      return;
    }
    if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
      status('This page needs a secure context (https, or a loopback address) to sign.');
      return;
    }
    const clientId = form.dataset.clientId;
    const call = {
      method: option.dataset.method,
      path: option.dataset.path,
      body: option.dataset.body || '',
      version: option.dataset.version,
    };
    let key;
    try {
      key = await pop.importPrivateKey(await readFile(file));
    } catch (err) {
      finish(1, false, 'The private key could not be used: ' + err.message, []);
      status('Stopped at step 1.');
      return;
    }
    const basic = pop.basicAuthorization(clientId, secret);
    const masked = 'Basic <base64 of client ID:client secret>';
    const mask = (text) => text.split(basic).join(masked).split(secret).join('<client secret>');
    const origin = window.location.origin;
    // The shell lines of the four steps run in order in one shell: each step's variables
    // ($POP, $TOKEN) are the next one's input, and every PoP is built anew (the page's own
    // were spent when it sent them).
    const keyFile = quote(file.name || 'taap-private-key.pem');
    const shellAuth =
      '"Authorization: Basic $(printf \'%s\' "$CLIENT_ID:$CLIENT_SECRET" | base64 | tr -d \'\\n\')"';
    const shellBody =
      'BODY="{\\"client_id\\":\\"$CLIENT_ID\\",\\"client_secret\\":\\"$CLIENT_SECRET\\",' +
      '\\"scope\\":\\"response_mode\\",\\"grant-type\\":\\"client_credentials\\"}"\n';

    // Step 1: the token request's PoP (the default coverage of docs/pop.md; the v6 body
    // carries the secret).
    const tokenPath = '/oauth2/' + call.version + '/tokens';
    const tokenBody =
      call.version === 'v6'
        ? JSON.stringify({
            client_id: clientId,
            client_secret: secret,
            scope: 'response_mode',
            'grant-type': 'client_credentials',
          })
        : '';
    const tokenPairs = [
      ['Content-Type', 'application/json'],
      ['Authorization', basic],
      ['uri', tokenPath],
      ['http-method', 'POST'],
    ];
    if (tokenBody) tokenPairs.push(['body', tokenBody]);
    const first = await pop.buildPop(tokenPairs, key);
    let build1 = 'CLIENT_ID=' + quote(clientId) + '\n';
    build1 += 'CLIENT_SECRET=${CLIENT_SECRET:?export CLIENT_SECRET, the app secret}\n';
    if (tokenBody) build1 += shellBody;
    build1 += 'POP=$(taap pop build --key ' + keyFile + ' --method POST --uri ' + tokenPath;
    build1 += " \\\n  --header 'Content-Type: application/json' \\\n  --header " + shellAuth;
    if (tokenBody) build1 += ' \\\n  --body "$BODY"';
    build1 += ')\n# step 2 sends it: curl … --header "X-Authorization: $POP"';
    finish(1, true, 'Signed: a PoP over ' + tokenPairs.length + ' values, valid 60 seconds.',
      popBlocks('Token request', first, tokenPairs, mask, build1));

    // Step 2: the token request.
    status('Step 2: asking for an access token…');
    const tokenHeaders = {
      'Content-Type': 'application/json',
      Authorization: basic,
      'X-Authorization': first.token,
    };
    let curl2 = 'curl -s --request POST ' + quote(origin + tokenPath) + ' \\\n';
    curl2 += '  --user "$CLIENT_ID:$CLIENT_SECRET" \\\n';
    curl2 += "  --header 'Content-Type: application/json' \\\n";
    curl2 += '  --header "X-Authorization: $POP"';
    if (tokenBody) curl2 += ' \\\n  --data-raw "$BODY"';
    curl2 += ' > token.json\nTOKEN=$(jq -r .access_token token.json)';
    let answer;
    let text;
    try {
      answer = await send(tokenPath, 'POST', tokenHeaders, tokenBody);
      text = await answer.text();
    } catch (err) {
      finish(2, false, 'The token endpoint could not be reached.', [code('The same with curl', curl2)]);
      skip(3, 'step 2 failed.');
      skip(4, 'step 2 failed.');
      status('Stopped at step 2.');
      return;
    }
    const refused = errorOf(text);
    const outcome2 = 'HTTP ' + answer.status + (refused ? ' ' + refused.error_code : '');
    finish(2, answer.ok, outcome2, answerBlocks(answer, text, curl2));
    let token = null;
    if (answer.ok) {
      try {
        token = JSON.parse(text).access_token;
      } catch (err) {
        token = null;
      }
    }
    if (typeof token !== 'string' || !token) {
      skip(3, 'step 2 gave no access token.');
      skip(4, 'step 2 gave no access token.');
      status('Stopped at step 2: ' + outcome2 + '.');
      return;
    }

    // Step 3: the API call's PoP, over the access token.
    const bearer = 'Bearer ' + token;
    const apiPairs = [
      ['Content-Type', 'application/json'],
      ['Authorization', bearer],
      ['uri', call.path],
      ['http-method', call.method],
    ];
    if (call.body) apiPairs.push(['body', call.body]);
    const second = await pop.buildPop(apiPairs, key);
    let build3 = 'POP=$(taap pop build --key ' + keyFile + ' --method ' + call.method;
    build3 += ' --uri ' + quote(call.path) + " \\\n  --header 'Content-Type: application/json'";
    build3 += ' \\\n  --header "Authorization: Bearer $TOKEN"';
    if (call.body) build3 += ' \\\n  --body ' + quote(call.body);
    build3 += ')\n# step 4 sends it: curl … --header "X-Authorization: $POP"';
    finish(3, true, 'Signed: a PoP over ' + apiPairs.length + ' values, valid 60 seconds.',
      popBlocks('API call', second, apiPairs, mask, build3));

    // Step 4: the API call.
    status('Step 4: calling the API…');
    let curl4 = 'curl -i --request ' + call.method + ' ' + quote(origin + call.path) + ' \\\n';
    curl4 += "  --header 'Content-Type: application/json' \\\n";
    curl4 += '  --header "Authorization: Bearer $TOKEN" \\\n';
    curl4 += '  --header "X-Authorization: $POP"';
    if (call.body) curl4 += ' \\\n  --data-raw ' + quote(call.body);
    try {
      answer = await send(
        call.path,
        call.method,
        { 'Content-Type': 'application/json', Authorization: bearer, 'X-Authorization': second.token },
        call.body,
      );
      text = await answer.text();
    } catch (err) {
      finish(4, false, 'The API could not be reached.', [code('The same with curl', curl4)]);
      status('Stopped at step 4.');
      return;
    }
    const refused4 = errorOf(text);
    const outcome4 = 'HTTP ' + answer.status + (refused4 ? ' ' + refused4.error_code : '');
    finish(4, answer.ok, outcome4, answerBlocks(answer, text, curl4));
    status('Done: the API answered ' + outcome4 + '.');
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const button = form.querySelector('[data-try-run]');
    button.disabled = true;
    run()
      .catch((err) => status('Something went wrong in the page: ' + err.message))
      .finally(() => {
        button.disabled = false;
      });
  });
})();
