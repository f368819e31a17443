/* The TAAP PoP builder of the portal's Try it page (docs/pop.md), on WebCrypto.
 *
 * Byte for byte the Python core's build_pop_token: header {"alg":"RS256","typ":"JWT"}, claims
 * edts, v, exp, ehts, iat, jti in that order as compact JSON, unpadded base64url segments, and
 * an RSASSA-PKCS1-v1_5 SHA-256 signature (deterministic, so a fixed clock and jti give the
 * same token in both). The private key is imported non-extractable: once imported, the page
 * itself cannot read it back. Exposed as window.taapPop. */
(function () {
  'use strict';

  const encoder = new TextEncoder();
  const HEADER = '{"alg":"RS256","typ":"JWT"}';
  const ALGORITHM = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const MAX_EHTS = 100;
  const MAX_TTL = 120;
  // Reserved names compare exactly, header names case-insensitively (as the core folds them).
  const RESERVED = new Set(['uri', 'http-method', 'body']);

  function binary(bytes) {
    let text = '';
    for (let i = 0; i < bytes.length; i += 1) text += String.fromCharCode(bytes[i]);
    return text;
  }

  function base64(bytes) {
    return btoa(binary(bytes));
  }

  function base64url(bytes) {
    return base64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function fromBase64(text) {
    const raw = atob(text.replace(/\s+/g, ''));
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function utf8(text) {
    return encoder.encode(text);
  }

  /* "Basic base64(client_id:client_secret)": standard alphabet with padding, UTF-8. */
  function basicAuthorization(clientId, secret) {
    return 'Basic ' + base64(utf8(clientId + ':' + secret));
  }

  async function computeEdts(values) {
    const parts = values.map(utf8);
    const total = parts.reduce((sum, part) => sum + part.length, 0);
    const joined = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      joined.set(part, offset);
      offset += part.length;
    }
    const digest = await crypto.subtle.digest('SHA-256', joined);
    return base64url(new Uint8Array(digest));
  }

  function checkPairs(pairs) {
    if (!pairs.length) throw new Error('nothing to sign: the ehts map is empty');
    if (pairs.length > MAX_EHTS) throw new Error('at most ' + MAX_EHTS + ' names can be signed');
    const seen = new Set();
    for (const [name, value] of pairs) {
      if (typeof name !== 'string' || !name.trim() || name !== name.trim() || name.includes(';')) {
        throw new Error('a signed name is blank, has spaces around it or contains ";"');
      }
      const folded = RESERVED.has(name) ? name : name.toLowerCase();
      if (seen.has(folded)) throw new Error('signed name "' + name + '" appears twice');
      seen.add(folded);
      if (typeof value !== 'string') throw new Error('value of "' + name + '" is not text');
      if (name !== 'body' && !value.trim()) throw new Error('value of "' + name + '" is blank');
    }
  }

  /* pairs: [[name, value], ...] in signing order. options: now (seconds), jti, ttl. */
  async function buildPop(pairs, key, options) {
    const opts = options || {};
    checkPairs(pairs);
    const ttl = opts.ttl === undefined ? 60 : opts.ttl;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL) {
      throw new Error('ttl must be an integer of 1..' + MAX_TTL + ' seconds');
    }
    const iat = Math.floor(opts.now === undefined ? Date.now() / 1000 : opts.now);
    const jti = opts.jti === undefined ? crypto.randomUUID() : opts.jti;
    const edts = await computeEdts(pairs.map((pair) => pair[1]));
    const claims = {
      edts: edts,
      v: '1',
      exp: iat + ttl,
      ehts: pairs.map((pair) => pair[0]).join(';'),
      iat: iat,
      jti: jti,
    };
    const signingInput =
      base64url(utf8(HEADER)) + '.' + base64url(utf8(JSON.stringify(claims)));
    const signature = await crypto.subtle.sign(ALGORITHM, key, utf8(signingInput));
    return {
      token: signingInput + '.' + base64url(new Uint8Array(signature)),
      header: JSON.parse(HEADER),
      claims: claims,
    };
  }

  function derLength(length) {
    if (length < 0x80) return [length];
    const bytes = [];
    for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
    return [0x80 | bytes.length].concat(bytes);
  }

  function der(tag, content) {
    const head = [tag].concat(derLength(content.length));
    const out = new Uint8Array(head.length + content.length);
    out.set(head, 0);
    out.set(content, head.length);
    return out;
  }

  /* PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (WebCrypto imports PKCS#8 only). */
  function pkcs1ToPkcs8(pkcs1) {
    const version = new Uint8Array([0x02, 0x01, 0x00]);
    const rsaEncryption = new Uint8Array([
      0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ]);
    const octets = der(0x04, pkcs1);
    const body = new Uint8Array(version.length + rsaEncryption.length + octets.length);
    body.set(version, 0);
    body.set(rsaEncryption, version.length);
    body.set(octets, version.length + rsaEncryption.length);
    return der(0x30, body);
  }

  const JWK_MEMBERS = ['kty', 'n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'];

  /* A private RSA key from the text of a PEM (PKCS#8 or PKCS#1) or JWK file; non-extractable. */
  async function importPrivateKey(text) {
    const trimmed = String(text || '').trim();
    let format;
    let data;
    if (trimmed.startsWith('{')) {
      let jwk;
      try {
        jwk = JSON.parse(trimmed);
      } catch (err) {
        throw new Error('the file is neither a PEM key nor JSON');
      }
      if (!jwk || jwk.kty !== 'RSA' || !jwk.d) {
        throw new Error('the JWK is not an RSA private key (it has no "d")');
      }
      data = { alg: 'RS256', ext: false };
      for (const name of JWK_MEMBERS) if (name in jwk) data[name] = jwk[name];
      format = 'jwk';
    } else {
      const found = /-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/.exec(trimmed);
      if (!found) throw new Error('the file is not a PEM private key or a JWK');
      const label = found[1];
      if (label === 'ENCRYPTED PRIVATE KEY') {
        throw new Error('the key is encrypted: decrypt it first (openssl pkcs8 -topk8 -nocrypt)');
      }
      if (label !== 'PRIVATE KEY' && label !== 'RSA PRIVATE KEY') {
        throw new Error('the file holds a ' + label.toLowerCase() + ', not a private key');
      }
      let bytes;
      try {
        bytes = fromBase64(found[2]);
      } catch (err) {
        throw new Error('the PEM body is not base64');
      }
      data = label === 'RSA PRIVATE KEY' ? pkcs1ToPkcs8(bytes) : bytes;
      format = 'pkcs8';
    }
    try {
      return await crypto.subtle.importKey(format, data, ALGORITHM, false, ['sign']);
    } catch (err) {
      throw new Error('the browser could not import the key as an RSA signing key');
    }
  }

  window.taapPop = {
    base64url: base64url,
    basicAuthorization: basicAuthorization,
    buildPop: buildPop,
    computeEdts: computeEdts,
    importPrivateKey: importPrivateKey,
  };
})();
