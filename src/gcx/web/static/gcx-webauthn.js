// Security keys (WebAuthn): registering one under "Your security keys", and using one
// for the second sign-in step. The server makes the options and checks the answers;
// this file only carries them between it and the browser's authenticator.

const supported =
  window.PublicKeyCredential &&
  typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function";

function showError(message) {
  const summary = document.getElementById("key-error");
  document.getElementById("key-error-text").textContent = message;
  summary.hidden = false;
  summary.focus();
}

async function post(url, csrf, body) {
  const answer = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body ?? {}),
  });
  let data = {};
  try {
    data = await answer.json();
  } catch (_) {
    // A refusal page rather than JSON: say what we can.
  }
  if (!answer.ok) {
    throw new Error(data.message || "The service refused the request; reload the page and try again.");
  }
  return data;
}

function problem(error) {
  if (error && error.name === "NotAllowedError") {
    return "The security key was not used, or it timed out. Try again, or enter the code from your authenticator app.";
  }
  return error && error.message ? error.message : "The security key could not be used.";
}

async function register(button) {
  const name = document.getElementById("key-name").value.trim();
  if (!name) {
    showError("Enter a name for the key.");
    return;
  }
  try {
    const options = await post("/account/security-keys/options", button.dataset.csrf);
    const credential = await navigator.credentials.create({
      publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options),
    });
    const done = await post("/account/security-keys", button.dataset.csrf, {
      name,
      credential: credential.toJSON(),
    });
    window.location.assign(done.redirect);
  } catch (error) {
    showError(problem(error));
  }
}

async function signIn(button) {
  try {
    const options = await post("/sign-in/key/options", button.dataset.csrf);
    const credential = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
    });
    const done = await post("/sign-in/key", button.dataset.csrf, {
      credential: credential.toJSON(),
      next: button.dataset.next || "",
    });
    window.location.assign(done.redirect);
  } catch (error) {
    showError(problem(error));
  }
}

if (supported) {
  for (const id of ["key-add", "key-sign-in"]) {
    const block = document.getElementById(id);
    if (block) block.hidden = false;
  }
  const fallback = document.getElementById("key-needs-script");
  if (fallback) fallback.hidden = true;
  for (const button of document.querySelectorAll("[data-gcx-key]")) {
    button.addEventListener("click", () =>
      button.dataset.gcxKey === "register" ? register(button) : signIn(button),
    );
  }
}
