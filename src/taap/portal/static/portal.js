/* The portal's only script: copy buttons, in-browser key generation, danger-zone confirmation,
   focus on the error summary. Every page works without it except key generation, which needs
   the browser's WebCrypto. Loaded with `defer` from the package itself (the CSP forbids inline
   script). The generated private key lives only in local variables of one function call: it is
   handed to the user as a download and never sent, logged or stored (no localStorage). */
(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("portal-live");
    if (!region) return;
    region.textContent = "";
    region.classList.remove("toast-shown");
    // A fresh node each time so a screen reader repeats the same word on a second copy.
    window.setTimeout(function () {
      region.textContent = text;
      region.classList.add("toast-shown");
    }, 50);
    window.clearTimeout(announce.timer);
    announce.timer = window.setTimeout(function () {
      region.classList.remove("toast-shown");
    }, 2500);
  }

  function textOf(element) {
    if ("value" in element && typeof element.value === "string" && element.tagName !== "BUTTON") {
      return element.value;
    }
    return element.textContent;
  }

  function copyFallback(element, text) {
    // Clipboard API is missing outside secure contexts (plain http on a non-loopback host).
    var scratch = document.createElement("textarea");
    scratch.value = text;
    scratch.setAttribute("readonly", "");
    scratch.className = "visually-hidden";
    document.body.appendChild(scratch);
    scratch.select();
    var done = false;
    try {
      done = document.execCommand("copy");
    } catch (err) {
      done = false;
    }
    scratch.remove();
    if (element.select) element.select();
    return done;
  }

  function copy(button) {
    var element = document.getElementById(button.getAttribute("data-copy"));
    if (!element) return;
    var text = textOf(element);
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { announce("Copied"); },
        function () { announce(copyFallback(element, text) ? "Copied" : "Copy failed: select the text and copy it"); }
      );
    } else {
      announce(copyFallback(element, text) ? "Copied" : "Copy failed: select the text and copy it");
    }
  }

  function toPem(label, buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i += 1) binary += String.fromCharCode(bytes[i]);
    var base64 = window.btoa(binary);
    var lines = [];
    for (var j = 0; j < base64.length; j += 64) lines.push(base64.slice(j, j + 64));
    return "-----BEGIN " + label + "-----\n" + lines.join("\n") + "\n-----END " + label + "-----\n";
  }

  function download(text, filename) {
    var url = URL.createObjectURL(new Blob([text], { type: "application/x-pem-file" }));
    var link = document.createElement("a");
    link.href = url;
    link.download = filename;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  function keygenStatus(form, text, isError) {
    var status = form.querySelector("[data-keygen-status]");
    if (!status) {
      status = document.createElement("p");
      status.setAttribute("data-keygen-status", "");
      status.setAttribute("role", isError ? "alert" : "status");
      form.appendChild(status);
    }
    status.className = isError ? "error-message" : "hint";
    status.textContent = text;
  }

  function generateKeyPair(form, button) {
    var subtle = window.crypto && window.crypto.subtle;
    var target = form.querySelector('textarea[name="public_key_pem"]');
    if (!subtle || !window.isSecureContext) {
      keygenStatus(form, "Key generation needs a secure connection (https). Generate a key with openssl and upload its public half instead.", true);
      return;
    }
    if (!target) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    keygenStatus(form, "Generating an RSA 2048-bit key pair…", false);
    subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["sign", "verify"]
    ).then(function (pair) {
      return Promise.all([subtle.exportKey("pkcs8", pair.privateKey), subtle.exportKey("spki", pair.publicKey)]);
    }).then(function (exported) {
      download(toPem("PRIVATE KEY", exported[0]), "taap-private-key.pem");
      target.value = toPem("PUBLIC KEY", exported[1]);
      keygenStatus(form, "Private key downloaded as taap-private-key.pem. Registering the public key…", false);
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    }).catch(function () {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      keygenStatus(form, "The browser could not generate a key pair. Upload a public key instead.", true);
    });
  }

  function watchConfirm(form) {
    var expected = form.getAttribute("data-confirm-name");
    var input = form.querySelector("[data-confirm-input]");
    var buttons = form.querySelectorAll('button[type="submit"], button:not([type])');
    if (!input) return;
    function update() {
      var ok = input.value === expected;
      buttons.forEach(function (b) { b.disabled = !ok; });
    }
    input.addEventListener("input", update);
    update();
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    var copyButton = target.closest("[data-copy]");
    if (copyButton) {
      event.preventDefault();
      copy(copyButton);
      return;
    }
    var keygenButton = target.closest("[data-keygen-button]");
    if (keygenButton) {
      var form = keygenButton.closest("form[data-keygen]");
      if (form) {
        event.preventDefault();
        generateKeyPair(form, keygenButton);
      }
    }
  });

  function init() {
    document.querySelectorAll("form[data-confirm-name]").forEach(watchConfirm);
    var summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
