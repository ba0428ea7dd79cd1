// gcx progressive enhancement. Every page works without this file; with it,
// GOV.UK Frontend's components start, and elements marked with data-gcx-*
// attributes get live status and upload progress.
import { initAll } from "/assets/govuk-frontend.min.js";
import { filterAsYouType, liveMarking } from "/assets/gcx-compose.js";

// <form data-gcx-progress="ID">: send with XMLHttpRequest (fetch cannot report upload
// progress), showing progress in <progress id="ID">.
function progressForms() {
  for (const form of document.querySelectorAll("form[data-gcx-progress]")) {
    form.addEventListener("submit", (event) => {
      const bar = document.getElementById(form.dataset.gcxProgress);
      if (!bar || !window.XMLHttpRequest) return;
      event.preventDefault();
      const request = new XMLHttpRequest();
      request.open(form.method, form.action);
      // Tells the server to keep the next page's one-off notice for the real visit below.
      request.setRequestHeader("X-Gcx-Progress", "1");
      bar.hidden = false;
      request.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) {
          bar.max = e.total;
          bar.value = e.loaded;
          bar.textContent = `${Math.round((100 * e.loaded) / e.total)}%`;
        }
      });
      request.addEventListener("load", () => {
        if (request.status < 400 && request.responseURL) {
          // Accepted: go to the page the post ended on, as a plain post would.
          window.location.assign(request.responseURL);
          return;
        }
        // Refused: show this form again with its error summary, then enhance it anew.
        document.open();
        document.write(request.responseText);
        document.close();
        document.body.classList.add("js-enabled", "govuk-frontend-supported");
        enhance();
      });
      request.send(new FormData(form));
    });
  }
}

// <div data-gcx-live="URL" aria-live="polite">: replace the contents every few seconds
// with the HTML fragment at URL, for delivery and transfer status.
function liveRegions() {
  for (const region of document.querySelectorAll("[data-gcx-live]")) {
    let shown = null;
    const refresh = async () => {
      try {
        // Marked as background, so a page left open does not keep its session alive.
        const answer = await fetch(region.dataset.gcxLive, {
          headers: { Accept: "text/html", "X-Gcx-Background": "1" },
        });
        if (answer.redirected) {
          // The session ended: show the sign-in page rather than poll on.
          window.location.reload();
          return;
        }
        if (!answer.ok) return;
        const fresh = await answer.text();
        // Only a change is written, so screen readers announce news, not every poll.
        if (fresh !== shown) {
          region.innerHTML = fresh;
          shown = fresh;
        }
      } catch (_) {
        // Offline for a moment: keep what is shown and try again.
      }
    };
    setInterval(refresh, 3000);
  }
}

// While someone types into a form, tell the server at most every four minutes, so
// that the idle timeout (30 minutes without a request) does not end the session
// under a long message being written.
const KEEP_ALIVE_MS = 4 * 60 * 1000;
let lastKeptAlive = Date.now();
function keepAliveWhileTyping() {
  // Only when signed in: the sign-out form in the account bar holds the session's token.
  const token = document.querySelector("form[action='/sign-out'] input[name=csrf_token]");
  if (!token || document.body.dataset.gcxKeepAlive) return;
  document.body.dataset.gcxKeepAlive = "on";
  document.addEventListener("input", () => {
    if (Date.now() - lastKeptAlive < KEEP_ALIVE_MS) return;
    lastKeptAlive = Date.now();
    fetch("/session/keep-alive", {
      method: "POST",
      headers: { "X-CSRF-Token": token.value },
    }).catch(() => {});
  });
}

function enhance() {
  initAll();
  progressForms();
  liveRegions();
  keepAliveWhileTyping();
  filterAsYouType();
  liveMarking();
}

enhance();
