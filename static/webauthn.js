// The passkey pages' script: it asks the browser for a passkey (WebAuthn Level 2, with the
// Level 3 JSON helpers) and posts the answer in the page's form. The options come from the
// server in the form's data-options attribute; the server keeps the challenge, so nothing
// here is trusted.
"use strict";
(function () {
  var form = document.getElementById("webauthn-form");
  if (!form) {
    return;
  }
  var button = document.getElementById("webauthn-start");
  var status = document.getElementById("webauthn-status");
  function say(text) {
    status.textContent = text;
    status.hidden = false;
  }
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
    button.disabled = true;
    say("This browser cannot use passkeys here. Update it, or use another way to sign in.");
    return;
  }
  async function run() {
    var options = JSON.parse(form.dataset.options).publicKey;
    button.disabled = true;
    status.hidden = true;
    try {
      var credential;
      if (options.rp) {
        var publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
        // A discoverable credential where the authenticator can make one, so the passkey
        // can also sign in without a password; security keys with little room may decline.
        publicKey.authenticatorSelection = Object.assign({}, publicKey.authenticatorSelection, {
          residentKey: "preferred",
          requireResidentKey: false,
        });
        credential = await navigator.credentials.create({ publicKey: publicKey });
      } else {
        credential = await navigator.credentials.get({
          publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
        });
      }
      form.elements.credential.value = JSON.stringify(credential.toJSON());
      form.submit();
    } catch (e) {
      button.disabled = false;
      say(
        e && e.name === "NotAllowedError"
          ? "The passkey request was cancelled or timed out, or your device could not confirm it is you. Try again."
          : "Your browser could not use a passkey: " + (e && e.message ? e.message : e)
      );
    }
  }
  button.addEventListener("click", run);
})();
